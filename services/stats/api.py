"""HTTP routes of stats (DESIGN §9): matters, figures per town/grid/department, the backlog.

``from``/``to`` are inclusive calendar days (``YYYY-MM-DD``, in ``GW_STATS_TIMEZONE``); both are
optional (open-ended). Unknown towns, grids and departments are 404 (registry lookup), bad dates 422;
errors are RFC 9457 problems (``shared.problems``) naming the field (``from``, ``to``, ``town_id``...).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pymongo.asynchronous.database import AsyncDatabase

from services.stats import queries
from services.stats.schemas import Backlog, DepartmentStats, GridStats, MatterAnswer, TownStats, TownStructure
from shared.mongo import MongoDoc
from shared.problems import ProblemError, problem_responses
from shared.read_models import MatterView
from shared.registry import Registry

if TYPE_CHECKING:
    from shared.service import ServiceRuntime


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _db(request: Request) -> AsyncDatabase[MongoDoc]:
    return _runtime(request).db


def _registry(request: Request) -> Registry:
    return _runtime(request).registry


# FastAPI reads these at runtime: the aliases keep the route signatures short
Db = Annotated[AsyncDatabase[MongoDoc], Depends(_db)]
Reg = Annotated[Registry, Depends(_registry)]
From = Annotated[date | None, Query(alias="from", description="First day, inclusive (YYYY-MM-DD)")]
To = Annotated[date | None, Query(alias="to", description="Last day, inclusive (YYYY-MM-DD)")]


def _check_period(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "from"), "msg": "'from' is after 'to'", "input": str(start)}]
        )


def _not_found(kind: str, entity_id: str) -> ProblemError:
    """404 naming the path field; the id itself is not echoed."""
    return ProblemError(404, [(f"{kind}_id", f"no {kind} with this id")])


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


router = APIRouter(prefix="/v1", tags=["stats"])


ERRORS = problem_responses(404, 422)


@router.get("/matters/{matter_id}", response_model=MatterAnswer, responses=problem_responses(404))
async def get_matter(matter_id: str, db: Db) -> dict[str, Any]:
    """State, owners, deadlines and the timeline (sorted by sequence) of one matter."""
    doc = await queries.get_matter(db, matter_id)
    if doc is None:
        raise _not_found("matter", matter_id)
    view = MatterView.model_validate(doc).model_dump(mode="json", by_alias=False)
    extra = {k: doc.get(k) for k in ("backlog", "departments", "escalations", "open_since", "rev")}
    view.update(_iso(extra))
    view["timeline"] = [
        {**entry, "data": _iso(raw.get("data", {}))}
        for entry, raw in zip(view["timeline"], doc.get("timeline", []), strict=True)
    ]
    return view


@router.get("/stats/towns/{town_id}", response_model=TownStats, responses=ERRORS)
async def town_stats(town_id: str, db: Db, registry: Reg, start: From = None, end: To = None) -> dict[str, Any]:
    if not registry.has_town(town_id):
        raise _not_found("town", town_id)
    _check_period(start, end)
    return await queries.town_stats(db, town_id, start, end)


@router.get("/registry/towns/{town_id}", response_model=TownStructure, responses=problem_responses(404))
async def town_structure(town_id: str, registry: Reg) -> dict[str, Any]:
    """Grids, staff, volunteer squads and the service catalogue of a town, from the registry this
    service runs with: the structural half of the town's figures (the other half is counted from events)."""
    if not registry.has_town(town_id):
        raise _not_found("town", town_id)
    return queries.town_structure(registry, town_id)


@router.get("/stats/grids/{grid_id}", response_model=GridStats, responses=ERRORS)
async def grid_stats(grid_id: str, db: Db, registry: Reg, start: From = None, end: To = None) -> dict[str, Any]:
    if not registry.has_grid(grid_id):
        raise _not_found("grid", grid_id)
    _check_period(start, end)
    return await queries.grid_stats(db, registry.grid(grid_id).town_id, grid_id, start, end)


@router.get("/stats/departments/{department_id}", response_model=DepartmentStats, responses=ERRORS)
async def department_stats(
    department_id: str, db: Db, registry: Reg, start: From = None, end: To = None
) -> dict[str, Any]:
    if not registry.has_department(department_id):
        raise _not_found("department", department_id)
    _check_period(start, end)
    return await queries.department_stats(db, registry, department_id, start, end)


@router.get("/backlog", response_model=Backlog, responses=ERRORS)
async def backlog(
    db: Db, registry: Reg, town_id: Annotated[str | None, Query(description="Only this town's matters")] = None
) -> dict[str, Any]:
    """Open matters per department now (from/to make no sense for a current state)."""
    if town_id is not None and not registry.has_town(town_id):
        raise _not_found("town", town_id)
    return queries.backlog_report(await queries.backlog_snapshot(db), registry, town_id)
