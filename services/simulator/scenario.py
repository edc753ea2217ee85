"""Scenarios are data (``deploy/scenarios/<name>.yaml``); this module loads and plans them.

A plan is deterministic for a seed: the same scenario and seed give the same matters, in the
same order, with the same fates, so a replay can be repeated exactly.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.simulator.figures import Figure
from shared.domain import Category, Channel, Severity
from shared.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from shared.registry import Registry

SCENARIO_DIR = PROJECT_ROOT / "deploy" / "scenarios"

Fate = Literal["straight", "supervised", "whistled", "unsatisfied_once"]


class ExpectedFigure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    value: float
    figure: Figure


class Fates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    supervised: int = Field(0, ge=0)
    visits: int = Field(0, ge=0, description="Supervision visits that follow the supervised matters up")
    whistled: int = Field(0, ge=0)
    unsatisfied_once: int = Field(0, ge=0)
    squad_assisted: int = Field(0, ge=0, description="Minor micro-grid matters given a volunteer squad")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    registry: Path
    towns: list[str] = Field(default_factory=list)
    matters: int = Field(gt=0)
    categories: dict[Category, int]
    origins: dict[Literal["citizen_request", "grid_inspection", "machine"], int]
    severities: dict[Severity, float]
    channels: dict[Channel, float]
    fates: Fates = Fates()
    service_items: float = Field(0.0, ge=0, le=1, description="Share of matters naming a service item")
    handling: dict[Literal["accept_after", "resolve_after"], tuple[float, float]]
    expected: list[ExpectedFigure] = Field(default_factory=list)

    @model_validator(mode="after")
    def _counts_add_up(self) -> Scenario:
        if sum(self.categories.values()) != self.matters:
            raise ValueError(f"categories add up to {sum(self.categories.values())}, not matters={self.matters}")
        if sum(self.origins.values()) != self.matters:
            raise ValueError(f"origins add up to {sum(self.origins.values())}, not matters={self.matters}")
        special = self.fates.supervised + self.fates.whistled + self.fates.unsatisfied_once
        if special > self.matters:
            raise ValueError(f"fates ({special}) exceed matters ({self.matters})")
        if self.fates.visits > self.fates.supervised:
            raise ValueError(f"visits ({self.fates.visits}) exceed the supervised matters they follow up")
        return self

    def registry_path(self) -> Path:
        return self.registry if self.registry.is_absolute() else PROJECT_ROOT / self.registry


class ScenarioError(Exception):
    pass


def load_scenario(name_or_path: str) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Scenario.model_validate(data)
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(f"no scenario {name_or_path!r} (known: {known})") from None
    except ValidationError as error:
        raise ScenarioError(f"{path}: {error}") from None


@dataclass(frozen=True)
class PlannedMatter:
    index: int
    report_id: str
    town_id: str
    grid_id: str
    micro_grid_id: str
    reporter_id: str
    category: Category
    severity: Severity
    origin: str
    channel: Channel
    fate: Fate
    accept_after: float  # simulated seconds
    resolve_after: float
    service_item: str | None = None
    service_details: tuple[tuple[str, str], ...] = ()  # answers to the item's attributes
    visit: int | None = None  # the supervision visit that follows it up (supervised fate)
    visit_id: str | None = None
    squad_id: str | None = None  # the volunteer squad its micro-grid member asks for help


def _exact_counts(shares: dict[str, float], total: int) -> dict[str, int]:
    """Largest-remainder apportionment: shares become counts that add up to ``total``."""
    weight = sum(shares.values())
    raw = {k: v / weight * total for k, v in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def _bag(counts: dict[str, int], rng: random.Random) -> list[str]:
    items = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(items)
    return items


def plan_scenario(scenario: Scenario, registry: Registry, *, seed: int = 1, run_id: str = "") -> list[PlannedMatter]:
    """The seed decides every matter; ``run_id`` only namespaces the report ids, so the same plan
    can be sent again into the same system as new matters (intake dedupes by report id)."""
    rng = random.Random(seed)
    towns = scenario.towns or list(registry.town_ids)
    grids = [g for g in registry.all_grids() if g.town_id in towns]
    n = scenario.matters
    categories = _bag({k.value: v for k, v in scenario.categories.items()}, rng)
    origins = _bag({str(k): v for k, v in scenario.origins.items()}, rng)
    severities = _bag(_exact_counts({k.value: v for k, v in scenario.severities.items()}, n), rng)
    channels = _bag(_exact_counts({k.value: v for k, v in scenario.channels.items()}, n), rng)
    # Fates: whistles only make sense for grid-tier matters (not urgent); the rest anywhere.
    grid_tier = [i for i in range(n) if severities[i] != Severity.URGENT.value]
    rng.shuffle(grid_tier)
    whistled = set(grid_tier[: scenario.fates.whistled])
    remaining = [i for i in range(n) if i not in whistled]
    rng.shuffle(remaining)
    supervised = set(remaining[: scenario.fates.supervised])
    unsatisfied = set(
        remaining[scenario.fates.supervised : scenario.fates.supervised + scenario.fates.unsatisfied_once]
    )
    lo_a, hi_a = scenario.handling["accept_after"]
    lo_r, hi_r = scenario.handling["resolve_after"]
    tag = hashlib.sha256(f"{scenario.name}:{seed}".encode()).hexdigest()[:8] + (f"-{run_id}" if run_id else "")
    plan: list[PlannedMatter] = []
    for i in range(n):
        grid = grids[rng.randrange(len(grids))]
        micro = grid.micro_grids[rng.randrange(len(grid.micro_grids))]
        channel = Channel(channels[i])
        if channel == Channel.OPEN311 and origins[i] != "citizen_request":
            channel = Channel.APP  # Open311 requests come from citizens by definition
        if channel == Channel.OPEN311 and i in whistled:
            channel = Channel.APP  # an online request for a service goes to its department: nothing to whistle
        fate: Fate = (
            "whistled"
            if i in whistled
            else "supervised"
            if i in supervised
            else "unsatisfied_once"
            if i in unsatisfied
            else "straight"
        )
        plan.append(
            PlannedMatter(
                index=i,
                report_id=f"sim-{scenario.name}-{tag}-{i:06d}",
                town_id=grid.town_id,
                grid_id=grid.grid_id,
                micro_grid_id=micro.micro_grid_id,
                reporter_id=(
                    grid.members[rng.randrange(len(grid.members))].staff_id if grid.members else grid.leader.staff_id
                ),
                category=Category(categories[i]),
                severity=Severity(severities[i]),
                origin=origins[i],
                channel=channel,
                fate=fate,
                accept_after=rng.uniform(lo_a, hi_a),
                resolve_after=rng.uniform(lo_r, hi_r),
            )
        )
    plan = _with_service_items(plan, scenario, registry, rng)
    plan = _with_visits(plan, scenario.fates.visits, registry, tag)
    return _with_squads(plan, scenario.fates.squad_assisted, registry, rng)


def _with_service_items(
    plan: list[PlannedMatter], scenario: Scenario, registry: Registry, rng: random.Random
) -> list[PlannedMatter]:
    """A share of the matters name one of their town's service items of their category, with
    answers to the attributes it requires."""
    out = []
    for m in plan:
        items = [i for i in registry.service_catalogue(m.town_id) if i.category == m.category]
        if not items or rng.random() >= scenario.service_items:
            out.append(m)
            continue
        item = items[rng.randrange(len(items))]
        details = tuple(
            (a.code, a.values[0] if a.values else "3") for a in item.attributes if a.required
        )  # a number attribute gets "3"
        out.append(replace(m, service_item=item.code, service_details=details))
    return out


def _with_visits(plan: list[PlannedMatter], visits: int, registry: Registry, tag: str) -> list[PlannedMatter]:
    """``visits`` supervision visits share the supervised matters, one grid per visit: every grid
    with supervised matters gets one, the rest go where most matters wait per visit; each grid's
    matters are split evenly over its visits (in plan order)."""
    by_grid: dict[str, list[int]] = defaultdict(list)
    for m in plan:
        if m.fate == "supervised":
            by_grid[m.grid_id].append(m.index)
    if not visits or not by_grid:
        return plan
    grids = sorted(by_grid)
    count = dict.fromkeys(grids[:visits], 1)
    while sum(count.values()) < visits:
        room = [g for g in count if count[g] < len(by_grid[g])]
        if not room:
            break
        busiest = max(room, key=lambda g: (len(by_grid[g]) / count[g], g))
        count[busiest] += 1
    visit_of: dict[int, int] = {}
    number = 0
    for grid_id in count:
        indices = by_grid[grid_id]
        for k in range(count[grid_id]):
            for index in indices[k * len(indices) // count[grid_id] : (k + 1) * len(indices) // count[grid_id]]:
                visit_of[index] = number
            number += 1
    return [
        replace(
            m, visit=visit_of[m.index], visit_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/visit/{visit_of[m.index]}"))
        )
        if m.index in visit_of
        else m
        for m in plan
    ]


def _with_squads(
    plan: list[PlannedMatter], assisted: int, registry: Registry, rng: random.Random
) -> list[PlannedMatter]:
    """``assisted`` minor matters (kept by their micro-grid member) get one of their grid's squads."""
    candidates = [
        m.index
        for m in plan
        if m.severity == Severity.MINOR
        and m.fate in ("straight", "unsatisfied_once")
        and m.channel != Channel.OPEN311
        and registry.grid(m.grid_id).squads
    ]
    rng.shuffle(candidates)
    chosen = set(candidates[:assisted])
    out = []
    for m in plan:
        squads = registry.grid(m.grid_id).squads
        out.append(replace(m, squad_id=squads[rng.randrange(len(squads))].squad_id) if m.index in chosen else m)
    return out


def expected_outcome(plan: list[PlannedMatter]) -> dict[str, float]:
    """What the read models must show once the plan is fully replayed and drained (the figures
    the plan decides; structural ones come from the registry, not from a plan)."""
    total = len(plan)
    followed_up = [m for m in plan if m.visit is not None]
    return {
        "reported": total,
        "closed": total,
        "closure_rate": 1.0 if total else 0.0,
        "service_proxy_closed": sum(1 for m in plan if m.category == Category.SERVICE_PROXY),
        "citizen_requests_resolved": sum(1 for m in plan if m.origin == "citizen_request"),
        "supervised_resolved": len(followed_up),
        "visits": len({m.visit for m in followed_up}),
        "squad_assignments": sum(1 for m in plan if m.squad_id is not None),
    }
