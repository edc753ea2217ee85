"""The ``Registry``: the county, its towns, and O(1) lookups built once at validation time."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from shared.errors import PermanentError
from shared.registry.models import (
    COUNTY_DEPARTMENT_PREFIX,
    County,
    Department,
    Grid,
    MicroGrid,
    ServiceItem,
    Squad,
    StaffMember,
    StaffRole,
    Town,
    iter_ids,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class UnknownEntity(KeyError, PermanentError):  # noqa: N818 - the name the services use
    """A lookup missed: ``kind`` (``grid``, ``department``, ...) ``entity_id`` is not registered.

    A ``KeyError`` (so ``except KeyError`` works) and a ``PermanentError`` (a message naming an
    unknown grid or department can never succeed: dead-letter it at once).
    """

    def __init__(self, kind: str, entity_id: str, known: Iterable[str] = ()) -> None:
        super().__init__(kind, entity_id)
        self.kind = kind
        self.entity_id = entity_id
        self.suggestions = tuple(difflib.get_close_matches(entity_id, list(known), n=3, cutoff=0.8))

    def __str__(self) -> str:
        text = f"unknown {self.kind} {self.entity_id!r}: not in the registry"
        if self.suggestions:
            text += f" (did you mean {', '.join(repr(s) for s in self.suggestions)}?)"
        return text


@dataclass(frozen=True, slots=True)
class Counts:
    """Head counts of one town (or the whole registry)."""

    grids: int = 0
    village_grids: int = 0
    community_grids: int = 0
    micro_grids: int = 0
    leaders: int = 0
    members: int = 0
    micro_grid_members: int = 0
    instructors: int = 0
    departments: int = 0
    squads: int = 0
    volunteers: int = 0  # people in the volunteer squads
    service_items: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.grids,
            self.village_grids,
            self.community_grids,
            self.micro_grids,
            self.leaders,
            self.members,
            self.micro_grid_members,
            self.instructors,
            self.departments,
            self.squads,
            self.volunteers,
            self.service_items,
        )


def _town_counts(town: Town) -> Counts:
    villages = sum(1 for g in town.grids if g.kind == "village")
    micro = sum(len(g.micro_grids) for g in town.grids)
    return Counts(
        grids=len(town.grids),
        village_grids=villages,
        community_grids=len(town.grids) - villages,
        micro_grids=micro,
        leaders=len(town.grids),
        members=sum(len(g.members) for g in town.grids),
        micro_grid_members=micro,
        instructors=len(town.instructors),
        departments=len(town.departments),
        squads=sum(len(g.squads) for g in town.grids),
        volunteers=sum(g.volunteers for g in town.grids),
        service_items=len(town.service_items),
    )


@dataclass(slots=True)
class _Index:
    towns: dict[str, Town] = field(default_factory=dict)
    grids: dict[str, Grid] = field(default_factory=dict)
    micro_grids: dict[str, MicroGrid] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    staff: dict[str, StaffMember] = field(default_factory=dict)
    squads: dict[str, Squad] = field(default_factory=dict)
    service_items: dict[tuple[str, str], ServiceItem] = field(default_factory=dict)
    town_departments: dict[str, tuple[Department, ...]] = field(default_factory=dict)
    grid_supervisors: dict[str, tuple[StaffMember, ...]] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)
    all_grids: tuple[Grid, ...] = ()
    total: Counts = Counts()


class Registry(BaseModel):
    """Everything the services know about jurisdictions, grids, staff and departments.

    Build it with ``load_registry`` (YAML) or ``Registry.model_validate``; every id is unique
    across the registry. Lookups are dict hits; a miss raises ``UnknownEntity``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    county: County
    towns: tuple[Town, ...] = Field(min_length=1)
    _index: _Index = PrivateAttr(default_factory=_Index)

    @model_validator(mode="after")
    def _check_and_index(self) -> Registry:
        seen: dict[str, str] = {}
        for entity_id, t, entry, label, fld in iter_ids(self.county, self.towns):
            where = entry if t is None else f"towns[{t}]" + (f".{entry}" if entry else "")
            where += f" ({label})"
            if entity_id in seen:
                raise ValueError(f"{where}: {fld}: duplicate id {entity_id!r}, already used by {seen[entity_id]}")
            seen[entity_id] = where
        county_departments = {d.department_id for d in self.county.departments}
        for t, town in enumerate(self.towns):
            for i, item in enumerate(town.service_items):
                if item.department.startswith(COUNTY_DEPARTMENT_PREFIX) and item.department not in county_departments:
                    raise ValueError(
                        f"towns[{t}].service_items[{i}] ({item.code}): department: unknown department "
                        f"{item.department!r} (not a county department)"
                    )
        self._index = self._build_index()
        return self

    def _build_index(self) -> _Index:
        ix = _Index()
        county_departments = self.county.departments
        ix.departments.update((d.department_id, d) for d in county_departments)
        grids: list[Grid] = []
        for town in self.towns:
            ix.towns[town.town_id] = town
            ix.departments.update((d.department_id, d) for d in town.departments)
            ix.town_departments[town.town_id] = (*town.departments, *county_departments)
            for instructor in town.instructors:
                ix.staff[instructor.staff_id] = instructor
            for item in town.service_items:
                ix.service_items[(town.town_id, item.code)] = item
            supervisors: dict[str, list[StaffMember]] = {}
            for instructor in town.instructors:
                for grid_id in instructor.grids:
                    supervisors.setdefault(grid_id, []).append(instructor)
            for grid in town.grids:
                grids.append(grid)
                ix.grids[grid.grid_id] = grid
                ix.grid_supervisors[grid.grid_id] = tuple(supervisors.get(grid.grid_id, ()))
                for person in grid.staff:
                    ix.staff[person.staff_id] = person
                for micro in grid.micro_grids:
                    ix.micro_grids[micro.micro_grid_id] = micro
                for squad in grid.squads:
                    ix.squads[squad.squad_id] = squad
            ix.counts[town.town_id] = _town_counts(town)
        ix.all_grids = tuple(grids)
        ix.total = sum(ix.counts.values(), Counts())
        return ix

    # ------------------------------------------------------------------ lookups
    @property
    def county_id(self) -> str:
        return self.county.county_id

    @property
    def county_departments(self) -> tuple[Department, ...]:
        return self.county.departments

    @property
    def town_ids(self) -> tuple[str, ...]:
        return tuple(self._index.towns)

    def town(self, town_id: str) -> Town:
        try:
            return self._index.towns[town_id]
        except KeyError:
            raise UnknownEntity("town", town_id, self._index.towns) from None

    def grid(self, grid_id: str) -> Grid:
        try:
            return self._index.grids[grid_id]
        except KeyError:
            raise UnknownEntity("grid", grid_id, self._index.grids) from None

    def grid_of_town(self, town_id: str, grid_id: str) -> Grid:
        """The grid, if it is one of the town's: a matter elsewhere is refused for good."""
        grid = self.grid(grid_id)
        if grid.town_id != town_id:
            raise PermanentError(f"grid {grid_id!r} is not in town {town_id!r}")
        return grid

    def micro_grid(self, micro_grid_id: str) -> MicroGrid:
        try:
            return self._index.micro_grids[micro_grid_id]
        except KeyError:
            raise UnknownEntity("micro-grid", micro_grid_id, self._index.micro_grids) from None

    def department(self, department_id: str) -> Department:
        try:
            return self._index.departments[department_id]
        except KeyError:
            raise UnknownEntity("department", department_id, self._index.departments) from None

    def staff(self, staff_id: str) -> StaffMember:
        try:
            return self._index.staff[staff_id]
        except KeyError:
            raise UnknownEntity("staff member", staff_id, self._index.staff) from None

    def squad(self, squad_id: str) -> Squad:
        try:
            return self._index.squads[squad_id]
        except KeyError:
            raise UnknownEntity("squad", squad_id, self._index.squads) from None

    def service_item(self, town_id: str, code: str) -> ServiceItem:
        """One item of the town's service catalogue (codes are unique within a town)."""
        try:
            return self._index.service_items[(town_id, code)]
        except KeyError:
            known = [c for t, c in self._index.service_items if t == town_id]
            raise UnknownEntity("service item", code, known) from None

    def service_catalogue(self, town_id: str) -> tuple[ServiceItem, ...]:
        return self.town(town_id).service_items

    def has_town(self, town_id: str) -> bool:
        return town_id in self._index.towns

    def has_grid(self, grid_id: str) -> bool:
        return grid_id in self._index.grids

    def has_department(self, department_id: str) -> bool:
        return department_id in self._index.departments

    def has_squad(self, squad_id: str) -> bool:
        return squad_id in self._index.squads

    def has_staff(self, staff_id: str) -> bool:
        return staff_id in self._index.staff

    def departments_of_town(self, town_id: str) -> tuple[Department, ...]:
        """The town's own departments, then the county's (the ones its grids may whistle to)."""
        try:
            return self._index.town_departments[town_id]
        except KeyError:
            raise UnknownEntity("town", town_id, self._index.towns) from None

    def all_departments(self) -> tuple[Department, ...]:
        """County departments first, then every town's, in file order."""
        return tuple(self._index.departments.values())

    def all_grids(self) -> tuple[Grid, ...]:
        return self._index.all_grids

    def supervisors_of_grid(self, grid_id: str) -> tuple[StaffMember, ...]:
        """The instructors who supervise ``grid_id`` (may be empty: then the town's supervision queue)."""
        try:
            return self._index.grid_supervisors[grid_id]
        except KeyError:
            raise UnknownEntity("grid", grid_id, self._index.grids) from None

    def staff_of_grid(self, grid_id: str, role: StaffRole | None = None) -> tuple[StaffMember, ...]:
        staff = self.grid(grid_id).staff
        return staff if role is None else tuple(s for s in staff if s.role is role)

    # ------------------------------------------------------------------ counters
    def counts(self, town_id: str | None = None) -> Counts:
        """Head counts of one town, or of the whole registry (county departments included)."""
        if town_id is None:
            total = self._index.total
            return replace(total, departments=total.departments + len(self.county.departments))
        try:
            return self._index.counts[town_id]
        except KeyError:
            raise UnknownEntity("town", town_id, self._index.towns) from None

    def count_grids(self, town_id: str | None = None) -> int:
        return self.counts(town_id).grids

    def count_leaders(self, town_id: str | None = None) -> int:
        return self.counts(town_id).leaders

    def count_members(self, town_id: str | None = None) -> int:
        """Grid members (网格员) only; micro-grid members are ``count_micro_grid_members``."""
        return self.counts(town_id).members

    def count_micro_grids(self, town_id: str | None = None) -> int:
        return self.counts(town_id).micro_grids

    def count_micro_grid_members(self, town_id: str | None = None) -> int:
        return self.counts(town_id).micro_grid_members

    def count_instructors(self, town_id: str | None = None) -> int:
        return self.counts(town_id).instructors
