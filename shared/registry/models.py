"""Pydantic models of the registry entries: departments, staff, micro-grids, grids, towns.

Every model is frozen and forbids unknown fields. Parent entries hand their ids down to
their children before validation, so a YAML file may leave ``town_id``/``grid_id``/``role``
out of nested entries and may write a staff member as a bare id string; whatever is written
explicitly must agree with the parent (checked after validation).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.domain import Category

if TYPE_CHECKING:
    from collections.abc import Iterator

COUNTY_DEPARTMENT_PREFIX: Final = "county."
"""County-level departments are ``county.<slug>`` whatever the county's own id is."""

RESERVED_TOWN_IDS: Final = frozenset({"county"})

_PATTERNS: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "town": (re.compile(r"[a-z][a-z0-9]{1,31}"), "changjia"),
    "county": (re.compile(r"[a-z][a-z0-9]{1,31}"), "qingyun"),
    "grid": (re.compile(r"[a-z][a-z0-9]{1,31}-g[0-9]{3,4}"), "changjia-g017"),
    "micro-grid": (re.compile(r"[a-z][a-z0-9]{1,31}-g[0-9]{3,4}-m[0-9]{1,2}"), "changjia-g017-m1"),
    "department": (re.compile(r"[a-z][a-z0-9]{1,31}\.[a-z][a-z0-9_]{1,47}"), "changjia.civil_affairs"),
    "staff": (re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+){1,6}"), "changjia-g017-leader"),
    "squad": (re.compile(r"[a-z][a-z0-9]{1,31}-g[0-9]{3,4}-s[0-9]{1,2}"), "changjia-g017-s1"),
    "service item": (re.compile(r"[a-z][a-z0-9_]{2,63}"), "minimum_living_allowance"),
    "attribute": (re.compile(r"[a-z][a-z0-9_]{1,47}"), "household_size"),
}


def _id_checker(kind: str) -> AfterValidator:
    pattern, example = _PATTERNS[kind]

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {kind} id (expected the form {example!r})")
        return value

    return AfterValidator(check)


TownId = Annotated[str, _id_checker("town")]
CountyId = Annotated[str, _id_checker("county")]
GridId = Annotated[str, _id_checker("grid")]
MicroGridId = Annotated[str, _id_checker("micro-grid")]
DepartmentId = Annotated[str, _id_checker("department")]
StaffId = Annotated[str, _id_checker("staff")]
SquadId = Annotated[str, _id_checker("squad")]
ServiceCode = Annotated[str, _id_checker("service item")]
AttributeCode = Annotated[str, _id_checker("attribute")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Categories = tuple[Category, ...]


class StaffRole(StrEnum):
    """What a staff member is in the grid (same values as ``ReporterRole`` where they overlap)."""

    MICRO_GRID_MEMBER = "micro_grid_member"  # 微网格员: small matters
    GRID_MEMBER = "grid_member"  # 网格员: big matters
    GRID_LEADER = "grid_leader"  # 网格长 (village party secretary): hard matters
    INSTRUCTOR = "instructor"  # 网格指导员 (town cadre): supervisor


GridKind = Literal["village", "community"]


def _with_defaults(value: Any, defaults: dict[str, Any], *, id_key: str | None = None) -> Any:
    """A copy of a child entry with ``defaults`` filled in; a bare string becomes ``{id_key: s}``."""
    if isinstance(value, str) and id_key is not None:
        value = {id_key: value}
    if not isinstance(value, dict):
        return value  # let field validation report the wrong type
    filled = dict(value)
    for key, default in defaults.items():
        if default is not None:
            filled.setdefault(key, default)
    return filled


def _check_prefix(data: dict[str, Any], key: str, parent_key: str, what: str) -> None:
    """Fail early (before the parent's ids reach the children) when ``key`` is not under its parent."""
    value, parent = data.get(key), data.get(parent_key)
    if isinstance(value, str) and isinstance(parent, str) and not value.startswith(f"{parent}-"):
        raise ValueError(f"{key}: {value!r} must start with {what} '{parent}-'")


def _fill_list(values: Any, defaults: dict[str, Any], *, id_key: str | None = None) -> Any:
    if not isinstance(values, list | tuple):
        return values
    return [_with_defaults(v, defaults, id_key=id_key) for v in values]


class Department(BaseModel):
    """A town or county office that receives whistled matters (``changjia.civil_affairs``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department_id: DepartmentId
    name: Text
    name_zh: Text
    categories: Categories = Field(default=(), description="Categories it typically handles (informational)")

    @property
    def scope(self) -> str:
        """``county`` or the town id: the part before the dot."""
        return self.department_id.split(".", 1)[0]


class StaffMember(BaseModel):
    """One grid worker or instructor. Ids and roles only: the registry holds no personal names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    staff_id: StaffId
    role: StaffRole
    town_id: TownId
    grid_id: GridId | None = None
    micro_grid_id: MicroGridId | None = None
    grids: tuple[GridId, ...] = Field(default=(), description="Grids an instructor supervises")

    @model_validator(mode="after")
    def _check_role_fields(self) -> StaffMember:
        if self.role is StaffRole.INSTRUCTOR:
            if self.grid_id is not None or self.micro_grid_id is not None:
                raise ValueError("an instructor belongs to the town: no grid_id/micro_grid_id")
            if not self.grids:
                raise ValueError("grids: an instructor must supervise at least one grid")
            if len(set(self.grids)) != len(self.grids):
                raise ValueError("grids: listed twice")
            if not self.staff_id.startswith(f"{self.town_id}-"):
                raise ValueError(f"staff_id: must start with the town id '{self.town_id}-'")
            return self
        if self.grids:
            raise ValueError("grids: only instructors supervise grids")
        if self.grid_id is None:
            raise ValueError(f"grid_id: required for a {self.role.value}")
        if not self.grid_id.startswith(f"{self.town_id}-"):
            raise ValueError(f"grid_id: {self.grid_id!r} is not in town {self.town_id!r}")
        if not self.staff_id.startswith(f"{self.grid_id}-"):
            raise ValueError(f"staff_id: must start with the grid id '{self.grid_id}-'")
        if self.role is StaffRole.MICRO_GRID_MEMBER:
            if self.micro_grid_id is None:
                raise ValueError("micro_grid_id: required for a micro_grid_member")
            if not self.micro_grid_id.startswith(f"{self.grid_id}-"):
                raise ValueError(f"micro_grid_id: {self.micro_grid_id!r} is not in grid {self.grid_id!r}")
        elif self.micro_grid_id is not None:
            raise ValueError(f"micro_grid_id: only a micro_grid_member has one, not a {self.role.value}")
        return self


def _expect(staff: StaffMember, field: str, role: StaffRole, grid_id: str, micro: str | None) -> None:
    if staff.role is not role:
        raise ValueError(f"{field}.role: expected {role.value!r}, got {staff.role.value!r}")
    if staff.grid_id != grid_id:
        raise ValueError(f"{field}.grid_id: {staff.grid_id!r} does not match its grid {grid_id!r}")
    if micro is not None and staff.micro_grid_id != micro:
        raise ValueError(f"{field}.micro_grid_id: {staff.micro_grid_id!r} does not match its micro-grid {micro!r}")


class MicroGrid(BaseModel):
    """A cell of a grid (微网格) with exactly one micro-grid member."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    micro_grid_id: MicroGridId
    grid_id: GridId
    town_id: TownId
    member: StaffMember

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _check_prefix(data, "micro_grid_id", "grid_id", "its grid id")
        if isinstance(data, dict) and "member" in data:
            data = dict(data)
            data["member"] = _with_defaults(
                data["member"],
                {
                    "role": StaffRole.MICRO_GRID_MEMBER.value,
                    "town_id": data.get("town_id"),
                    "grid_id": data.get("grid_id"),
                    "micro_grid_id": data.get("micro_grid_id"),
                },
                id_key="staff_id",
            )
        return data

    @model_validator(mode="after")
    def _check(self) -> MicroGrid:
        if not self.micro_grid_id.startswith(f"{self.grid_id}-"):
            raise ValueError(f"micro_grid_id: {self.micro_grid_id!r} must start with its grid id '{self.grid_id}-'")
        _expect(self.member, "member", StaffRole.MICRO_GRID_MEMBER, self.grid_id, self.micro_grid_id)
        return self


SquadKind = Literal["assault", "vanguard", "reserve"]
"""党员突击队 (party-member assault squad), 党员先锋队 (vanguard squad), 党员预备队 (reserve squad)."""

SQUAD_KIND_NAMES_ZH: Final[dict[str, str]] = {
    "assault": "党员突击队",
    "vanguard": "党员先锋队",
    "reserve": "党员预备队",
}


class Squad(BaseModel):
    """A volunteer squad of a grid: its size only, never the names of its people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    squad_id: SquadId
    grid_id: GridId
    kind: SquadKind
    size: int = Field(ge=1, le=500, description="Volunteers in the squad")

    @model_validator(mode="after")
    def _check(self) -> Squad:
        if not self.squad_id.startswith(f"{self.grid_id}-"):
            raise ValueError(f"squad_id: {self.squad_id!r} must start with its grid id '{self.grid_id}-'")
        return self


class Grid(BaseModel):
    """A basic grid (基础网格): one village or community, one leader, members, micro-grids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid_id: GridId
    town_id: TownId
    kind: GridKind
    name: Text
    name_zh: Text
    leader: StaffMember
    members: tuple[StaffMember, ...] = ()
    micro_grids: tuple[MicroGrid, ...] = Field(min_length=1)
    squads: tuple[Squad, ...] = Field(default=(), description="Volunteer squads backing the grid's staff")

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        _check_prefix(data, "grid_id", "town_id", "its town id")
        data = dict(data)
        parent = {"town_id": data.get("town_id"), "grid_id": data.get("grid_id")}
        if "leader" in data:
            data["leader"] = _with_defaults(
                data["leader"], {"role": StaffRole.GRID_LEADER.value, **parent}, id_key="staff_id"
            )
        if "members" in data:
            data["members"] = _fill_list(
                data["members"], {"role": StaffRole.GRID_MEMBER.value, **parent}, id_key="staff_id"
            )
        if "micro_grids" in data:
            data["micro_grids"] = _fill_list(data["micro_grids"], parent)
        if "squads" in data:
            data["squads"] = _fill_list(data["squads"], {"grid_id": data.get("grid_id")})
        return data

    @model_validator(mode="after")
    def _check(self) -> Grid:
        if not self.grid_id.startswith(f"{self.town_id}-"):
            raise ValueError(f"grid_id: {self.grid_id!r} must start with its town id '{self.town_id}-'")
        _expect(self.leader, "leader", StaffRole.GRID_LEADER, self.grid_id, None)
        for i, member in enumerate(self.members):
            _expect(member, f"members[{i}]", StaffRole.GRID_MEMBER, self.grid_id, None)
        for i, micro in enumerate(self.micro_grids):
            if micro.grid_id != self.grid_id:
                raise ValueError(f"micro_grids[{i}].grid_id: {micro.grid_id!r} does not match {self.grid_id!r}")
        for i, squad in enumerate(self.squads):
            if squad.grid_id != self.grid_id:
                raise ValueError(f"squads[{i}].grid_id: {squad.grid_id!r} does not match {self.grid_id!r}")
        return self

    @property
    def volunteers(self) -> int:
        """People in the grid's volunteer squads."""
        return sum(s.size for s in self.squads)

    @property
    def staff(self) -> tuple[StaffMember, ...]:
        """Leader, members, then micro-grid members."""
        return (self.leader, *self.members, *(m.member for m in self.micro_grids))


class TownFacts(BaseModel):
    """Static figures of a town: the overall grids (总网格) it is (the town itself, normally 1).

    Volunteers and service items are no facts any more: they are counted from the grids'
    ``squads`` and the town's ``service_items``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    overall_grids: int = Field(1, ge=0)


AttributeType = Literal["string", "number", "text", "singlevaluelist"]


class ServiceAttribute(BaseModel):
    """One thing a service item asks for (an Open311 attribute). Never personal data: who the
    citizen is travels in the report's contact, not here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: AttributeCode
    description: Text
    datatype: AttributeType = "string"
    required: bool = False
    values: tuple[Text, ...] = Field(default=(), description="The allowed values of a singlevaluelist")

    @model_validator(mode="after")
    def _check(self) -> ServiceAttribute:
        if (self.datatype == "singlevaluelist") != bool(self.values):
            raise ValueError("values: required for a singlevaluelist, and only for it")
        return self


class ServiceItem(BaseModel):
    """One of the town's service items (服务项目): what a citizen may ask for, the category it
    is counted under, the department that handles it by default, its deadlines and what it asks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ServiceCode
    name: Text
    name_zh: Text
    category: Category
    department: DepartmentId
    accept_hours: int = Field(24, ge=1, le=720, description="Accept within this many hours")
    resolve_days: int = Field(5, ge=1, le=90, description="Resolve within this many days")
    attributes: tuple[ServiceAttribute, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ServiceItem:
        codes = [a.code for a in self.attributes]
        if len(set(codes)) != len(codes):
            raise ValueError("attributes: an attribute code is listed twice")
        return self


class Town(BaseModel):
    """A town (镇): its departments, grid instructors (supervisors) and basic grids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    town_id: TownId
    name: Text
    name_zh: Text
    facts: TownFacts = TownFacts()
    departments: tuple[Department, ...] = ()
    instructors: tuple[StaffMember, ...] = ()
    service_items: tuple[ServiceItem, ...] = Field(default=(), description="The town's service catalogue")
    grids: tuple[Grid, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _fill(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        parent = {"town_id": data.get("town_id")}
        if "grids" in data:
            data["grids"] = _fill_list(data["grids"], parent)
        if "instructors" in data:
            data["instructors"] = _fill_list(data["instructors"], {"role": StaffRole.INSTRUCTOR.value, **parent})
        return data

    @model_validator(mode="after")
    def _check(self) -> Town:
        if self.town_id in RESERVED_TOWN_IDS:
            raise ValueError(f"town_id: {self.town_id!r} is reserved")
        for i, dept in enumerate(self.departments):
            if dept.scope != self.town_id:
                raise ValueError(
                    f"departments[{i}].department_id: {dept.department_id!r} must start with '{self.town_id}.'"
                )
        grid_ids = {g.grid_id for g in self.grids}
        for i, grid in enumerate(self.grids):
            if grid.town_id != self.town_id:
                raise ValueError(f"grids[{i}].town_id: {grid.town_id!r} does not match {self.town_id!r}")
        for i, instructor in enumerate(self.instructors):
            if instructor.role is not StaffRole.INSTRUCTOR:
                raise ValueError(f"instructors[{i}].role: expected 'instructor'")
            if instructor.town_id != self.town_id:
                raise ValueError(f"instructors[{i}].town_id: does not match {self.town_id!r}")
            unknown = [g for g in instructor.grids if g not in grid_ids]
            if unknown:
                raise ValueError(f"instructors[{i}].grids: not grids of this town: {', '.join(unknown)}")
        own = {d.department_id for d in self.departments}
        seen: set[str] = set()
        for i, item in enumerate(self.service_items):
            if item.code in seen:
                raise ValueError(f"service_items[{i}].code: duplicate service item code {item.code!r}")
            seen.add(item.code)
            if item.department.startswith(COUNTY_DEPARTMENT_PREFIX):
                continue  # the county's departments are known only to the whole registry (checked there)
            if item.department not in own:
                raise ValueError(
                    f"service_items[{i}].department: unknown department {item.department!r} for town {self.town_id!r}"
                )
        return self

    @property
    def supervisors(self) -> tuple[StaffMember, ...]:
        """The grid instructors: they receive overdue and returned matters."""
        return self.instructors


class County(BaseModel):
    """The county (县) and its county-level departments (``county.<slug>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    county_id: CountyId
    name: Text
    name_zh: Text
    departments: tuple[Department, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> County:
        for i, dept in enumerate(self.departments):
            if not dept.department_id.startswith(COUNTY_DEPARTMENT_PREFIX):
                raise ValueError(
                    f"departments[{i}].department_id: {dept.department_id!r} must start with "
                    f"{COUNTY_DEPARTMENT_PREFIX!r}"
                )
        return self


IdEntry = tuple[str, int | None, str, str, str]
"""(id, town index or None for the county, entry path inside the town, entry label, field)."""


def iter_ids(county: County, towns: tuple[Town, ...] | list[Town]) -> Iterator[IdEntry]:
    """Every id the registry defines and where (for the registry-wide uniqueness check)."""
    yield county.county_id, None, "county", county.county_id, "county_id"
    for i, dept in enumerate(county.departments):
        yield dept.department_id, None, f"county.departments[{i}]", dept.department_id, "department_id"
    for t, town in enumerate(towns):
        yield town.town_id, t, "", town.town_id, "town_id"
        for i, dept in enumerate(town.departments):
            yield dept.department_id, t, f"departments[{i}]", dept.department_id, "department_id"
        for i, instructor in enumerate(town.instructors):
            yield instructor.staff_id, t, f"instructors[{i}]", instructor.staff_id, "staff_id"
        for g, grid in enumerate(town.grids):
            here, label = f"grids[{g}]", grid.grid_id
            yield grid.grid_id, t, here, label, "grid_id"
            yield grid.leader.staff_id, t, here, label, "leader.staff_id"
            for i, member in enumerate(grid.members):
                yield member.staff_id, t, here, label, f"members[{i}].staff_id"
            for m, micro in enumerate(grid.micro_grids):
                micro_here = f"{here}.micro_grids[{m}]"
                yield micro.micro_grid_id, t, micro_here, micro.micro_grid_id, "micro_grid_id"
                yield micro.member.staff_id, t, micro_here, micro.micro_grid_id, "member.staff_id"
            for s, squad in enumerate(grid.squads):
                yield squad.squad_id, t, f"{here}.squads[{s}]", squad.squad_id, "squad_id"
