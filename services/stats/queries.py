"""Read-only queries over the read models (the HTTP API and the metrics snapshot use these).

Costs (n = documents in the collection):
- a matter: one ``_id`` lookup, O(log n);
- town / grid figures: the town's day buckets in the range, O(days) via the ``(town_id, day)`` index;
- department figures: the day buckets of the towns it serves (its own town, or every town for a
  county department), O(towns x days), projected to that department's sub-document; plus its open
  matters, O(open matters of the department) via the ``(open_departments, open_since)`` index;
- backlog: the open matters only, O(open matters) via the ``in_backlog`` index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from services.stats.effects import (
    DEPARTMENT_FIGURES,
    INSTRUCTOR_FIGURES,
    MATTER_FIGURES,
    department_id_of,
    department_key,
)
from shared.read_models import COUNTERS, MATTERS

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc
    from shared.registry import Registry

LATENESS = ("on_time", "overdue_l1", "overdue_l2", "overdue_l3")


def lateness_label(level: int) -> str:
    return LATENESS[max(0, min(level, 3))]


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _mean_seconds(total_ms: int, count: int) -> float | None:
    return round(total_ms / count / 1000, 3) if count else None


def kpis(figures: Counter[str]) -> dict[str, float | int | None]:
    """The headline figures, rates and means (None where the denominator is zero)."""
    return {
        "reported": figures["reported"],
        "dispatched": figures["dispatched"],
        "accepted": figures["accepted"],
        "resolved": figures["resolved"],
        "closed": figures["closed"],
        "closure_rate": _ratio(figures["closed"], figures["reported"]),  # 办结率
        "acceptance_rate": _ratio(figures["accepted"], figures["dispatched"]),
        "on_time_rate": _ratio(figures["resolved_on_time"], figures["resolved"]),
        "accept_on_time_rate": _ratio(figures["accepted_on_time"], figures["accepted"]),
        "mean_time_to_accept_seconds": _mean_seconds(figures["accept_ms"], figures["accepted"]),
        "mean_time_to_resolve_seconds": _mean_seconds(figures["resolve_ms"], figures["resolved"]),
        "satisfaction": round(figures["satisfaction_sum"] / figures["feedback"], 4) if figures["feedback"] else None,
    }


def _add(total: Counter[str], figures: Any) -> None:
    if isinstance(figures, dict):
        total.update({k: v for k, v in figures.items() if isinstance(v, int)})


def _figures(counter: Counter[str], names: tuple[str, ...]) -> dict[str, int]:
    """Every figure by name, plus ``escalated`` (all levels)."""
    figures = {name: counter[name] for name in names}
    figures["escalated"] = sum(counter[f"escalated_l{level}"] for level in (1, 2, 3))
    return figures


def _day_filter(town_ids: list[str], start: date | None, end: date | None) -> MongoDoc:
    query: MongoDoc = {"town_id": town_ids[0] if len(town_ids) == 1 else {"$in": town_ids}}
    days: MongoDoc = {}
    if start is not None:
        days["$gte"] = start.isoformat()
    if end is not None:
        days["$lte"] = end.isoformat()
    if days:
        query["day"] = days
    return query


def _period(start: date | None, end: date | None) -> dict[str, str | None]:
    return {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}


async def town_stats(db: AsyncDatabase[MongoDoc], town_id: str, start: date | None, end: date | None) -> dict[str, Any]:
    total: Counter[str] = Counter()
    by_category: dict[str, Counter[str]] = {}
    by_instructor: dict[str, Counter[str]] = {}
    cursor = db[COUNTERS].find(_day_filter([town_id], start, end), {"totals": 1, "counts": 1, "instructors": 1})
    async for bucket in cursor:
        _add(total, bucket.get("totals"))
        for category, figures in (bucket.get("counts") or {}).items():
            _add(by_category.setdefault(category, Counter()), figures)
        for instructor, figures in (bucket.get("instructors") or {}).items():
            _add(by_instructor.setdefault(instructor, Counter()), figures)
    return {
        "town_id": town_id,
        "period": _period(start, end),
        "kpis": kpis(total),
        "counts": _figures(total, MATTER_FIGURES),
        "by_category": {
            category: {"kpis": kpis(c), "counts": _figures(c, MATTER_FIGURES)}
            for category, c in sorted(by_category.items())
        },
        "by_instructor": {
            instructor: {name: c[name] for name in INSTRUCTOR_FIGURES}
            for instructor, c in sorted(by_instructor.items())
        },
    }


def town_structure(registry: Registry, town_id: str) -> dict[str, Any]:
    """What the town is made of, from the registry the service runs with (not from events)."""
    town = registry.town(town_id)
    counts = registry.counts(town_id)
    return {
        "town_id": town_id,
        "name": town.name,
        "name_zh": town.name_zh,
        "overall_grids": town.facts.overall_grids,
        "grids": counts.grids,
        "village_grids": counts.village_grids,
        "community_grids": counts.community_grids,
        "micro_grids": counts.micro_grids,
        "grid_leaders": counts.leaders,
        "grid_members": counts.members,
        "micro_grid_members": counts.micro_grid_members,
        "instructors": counts.instructors,
        "departments": counts.departments,
        "volunteer_squads": counts.squads,
        "volunteers": counts.volunteers,
        "service_items": counts.service_items,
        "catalogue": [
            {
                "code": item.code,
                "name": item.name,
                "name_zh": item.name_zh,
                "category": item.category.value,
                "department": item.department,
            }
            for item in town.service_items
        ],
    }


async def grid_stats(
    db: AsyncDatabase[MongoDoc], town_id: str, grid_id: str, start: date | None, end: date | None
) -> dict[str, Any]:
    total: Counter[str] = Counter()
    cursor = db[COUNTERS].find(_day_filter([town_id], start, end), {f"grids.{grid_id}": 1})
    async for bucket in cursor:
        _add(total, (bucket.get("grids") or {}).get(grid_id))
    return {
        "grid_id": grid_id,
        "town_id": town_id,
        "period": _period(start, end),
        "kpis": kpis(total),
        "counts": _figures(total, MATTER_FIGURES),
    }


@dataclass
class DepartmentBacklog:
    department_id: str
    open: int = 0
    unaccepted: int = 0
    by_lateness: Counter[str] = field(default_factory=Counter)
    oldest_open_since: datetime | None = None

    def add(self, item: dict[str, Any], since: datetime | None) -> None:
        self.open += 1
        self.unaccepted += not item.get("accepted", False)
        self.by_lateness[lateness_label(int(item.get("lateness", 0)))] += 1
        if since is not None and (self.oldest_open_since is None or since < self.oldest_open_since):
            self.oldest_open_since = since

    def as_json(self, now: datetime) -> dict[str, Any]:
        oldest = self.oldest_open_since
        return {
            "department_id": self.department_id,
            "open": self.open,
            "unaccepted": self.unaccepted,
            "by_lateness": {label: self.by_lateness[label] for label in LATENESS},
            "oldest_open_since": oldest.isoformat() if oldest else None,
            "oldest_open_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        }


@dataclass
class BacklogSnapshot:
    """Open matters per department, and per (town, department) for the metrics and town filters."""

    departments: dict[str, DepartmentBacklog] = field(default_factory=dict)
    per_town: dict[tuple[str, str], DepartmentBacklog] = field(default_factory=dict)

    def add(self, doc: MongoDoc, only: str | None = None) -> None:
        town_id, since = doc["town_id"], doc.get("open_since")
        for item in doc.get("backlog") or []:
            department_id = item["department_id"]
            if only is not None and department_id != only:
                continue
            self.departments.setdefault(department_id, DepartmentBacklog(department_id)).add(item, since)
            key = (town_id, department_id)
            self.per_town.setdefault(key, DepartmentBacklog(department_id)).add(item, since)


OPEN_MATTER_PROJECTION: MongoDoc = {"town_id": 1, "backlog": 1, "open_since": 1}


async def backlog_snapshot(db: AsyncDatabase[MongoDoc]) -> BacklogSnapshot:
    """Every open matter once: O(open matters)."""
    snapshot = BacklogSnapshot()
    async for doc in db[MATTERS].find({"in_backlog": True}, OPEN_MATTER_PROJECTION):
        snapshot.add(doc)
    return snapshot


async def department_backlog(db: AsyncDatabase[MongoDoc], department_id: str) -> DepartmentBacklog:
    """One department's open matters: O(its open matters)."""
    snapshot = BacklogSnapshot()
    async for doc in db[MATTERS].find({"open_departments": department_id}, OPEN_MATTER_PROJECTION):
        snapshot.add(doc, only=department_id)
    return snapshot.departments.get(department_id) or DepartmentBacklog(department_id)


def backlog_report(
    snapshot: BacklogSnapshot, registry: Registry, town_id: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """``/v1/backlog``: every registry department (serving one town, if given), zeros included."""
    now = now or datetime.now(UTC)
    if town_id is None:
        departments = [d.department_id for d in registry.all_departments()]
        rows = [snapshot.departments.get(d) or DepartmentBacklog(d) for d in departments]
    else:
        departments = [d.department_id for d in registry.departments_of_town(town_id)]
        rows = [snapshot.per_town.get((town_id, d)) or DepartmentBacklog(d) for d in departments]
    return {
        "town_id": town_id,
        "as_of": now.isoformat(),
        "open": sum(r.open for r in rows),
        "unaccepted": sum(r.unaccepted for r in rows),
        "departments": [r.as_json(now) for r in rows],
    }


async def department_stats(
    db: AsyncDatabase[MongoDoc],
    registry: Registry,
    department_id: str,
    start: date | None,
    end: date | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    scope = registry.department(department_id).scope
    towns = [scope] if registry.has_town(scope) else list(registry.town_ids)
    key = department_key(department_id)
    total: Counter[str] = Counter()
    by_town: dict[str, Counter[str]] = {}
    async for bucket in db[COUNTERS].find(_day_filter(towns, start, end), {f"departments.{key}": 1, "town_id": 1}):
        figures = (bucket.get("departments") or {}).get(key)
        _add(total, figures)
        _add(by_town.setdefault(bucket["town_id"], Counter()), figures)
    backlog = await department_backlog(db, department_id)
    return {
        "department_id": department_id,
        "period": _period(start, end),
        "kpis": {
            "dispatched": total["dispatched"],
            "accepted": total["accepted"],
            "resolved": total["resolved"],
            "returned": total["returned"],
            "acceptance_rate": _ratio(total["accepted"], total["dispatched"]),
            "on_time_rate": _ratio(total["resolved_on_time"], total["resolved"]),
            "accept_on_time_rate": _ratio(total["accepted_on_time"], total["accepted"]),
            "mean_time_to_accept_seconds": _mean_seconds(total["accept_ms"], total["accepted"]),
            "mean_time_to_resolve_seconds": _mean_seconds(total["resolve_ms"], total["resolved"]),
        },
        "counts": _figures(total, DEPARTMENT_FIGURES),
        "by_town": {town: _figures(c, DEPARTMENT_FIGURES) for town, c in sorted(by_town.items()) if c},
        "backlog": backlog.as_json(now or datetime.now(UTC)),
    }


async def get_matter(db: AsyncDatabase[MongoDoc], matter_id: str) -> MongoDoc | None:
    return await db[MATTERS].find_one({"_id": matter_id})


@dataclass
class TownTotals:
    """All-time figures for the metrics: per town x category, and per town x department."""

    by_category: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    by_department: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)


async def all_time_totals(db: AsyncDatabase[MongoDoc]) -> TownTotals:
    """Sums over every day bucket: O(towns x days), projected (no grids)."""
    totals = TownTotals()
    async for bucket in db[COUNTERS].find({}, {"town_id": 1, "counts": 1, "departments": 1}):
        town_id = bucket["town_id"]
        for category, figures in (bucket.get("counts") or {}).items():
            _add(totals.by_category.setdefault((town_id, category), Counter()), figures)
        for key, figures in (bucket.get("departments") or {}).items():
            _add(totals.by_department.setdefault((town_id, department_id_of(key)), Counter()), figures)
    return totals
