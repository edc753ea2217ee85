"""HTTP routes of stats for the people who work matters (the console): open matters of a
department, of a grid (its staff), of a town (its supervisors), and a town's figures per day.

Additive beside ``api.py``: ``GET /v1/departments/{department_id}/open-matters``,
``/v1/grids/{grid_id}/open-matters``, ``/v1/towns/{town_id}/open-matters?filter=overdue|returned``
(each ``?limit&after``, keyset pages) and ``/v1/stats/towns/{town_id}/daily?from&to``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from services.stats import daily, open_matters
from services.stats.api import ERRORS, Db, From, Reg, To, _check_period, _runtime
from services.stats.config import StatsSettings
from services.stats.work_fields import OPEN
from services.stats.work_schemas import DepartmentOpenMatters, GridOpenMatters, TownDaily, TownOpenMatters
from shared.problems import ProblemError

router = APIRouter(prefix="/v1", tags=["work"])

Limit = Annotated[int, Query(ge=1, le=open_matters.PAGE_MAX, description="Matters per page")]
After = Annotated[str | None, Query(description="The `next` cursor of the previous page")]


@router.get("/departments/{department_id}/open-matters", response_model=DepartmentOpenMatters, responses=ERRORS)
async def department_open_matters(
    department_id: str, db: Db, registry: Reg, limit: Limit = 50, after: After = None
) -> Any:
    """The department's open matters (oldest open first): its role, acceptance, lateness,
    deadlines, and its commands dispatch rejected. O(page) via ``(open_departments, open_since)``."""
    if not registry.has_department(department_id):
        raise ProblemError(404, [("department_id", "unknown department")])
    try:
        return await open_matters.department_open_matters(db, department_id, limit=limit, after=after)
    except open_matters.CursorError as error:
        raise ProblemError(422, [("after", str(error))]) from None


@router.get("/grids/{grid_id}/open-matters", response_model=GridOpenMatters, responses=ERRORS)
async def grid_open_matters(grid_id: str, db: Db, registry: Reg, limit: Limit = 50, after: After = None) -> Any:
    """The grid's matters not closed yet (oldest first), on any tier: owners, deadlines, whether
    returned or overdue, and the commands of the grid's staff dispatch rejected. O(page) via
    ``(grid_id, open_tags, listed_at, _id)``."""
    if not registry.has_grid(grid_id):
        raise ProblemError(404, [("grid_id", "unknown grid")])
    senders = {s.staff_id for s in registry.staff_of_grid(grid_id)}
    try:
        return await open_matters.listed_open_matters(
            db, ("grid_id", grid_id), senders=senders, limit=limit, after=after
        )
    except open_matters.CursorError as error:
        raise ProblemError(422, [("after", str(error))]) from None


@router.get("/towns/{town_id}/open-matters", response_model=TownOpenMatters, responses=ERRORS)
async def town_open_matters(
    town_id: str,
    db: Db,
    registry: Reg,
    only: Annotated[
        Literal["overdue", "returned"] | None,
        Query(alias="filter", description="Only overdue (escalated) or returned (waiting for a reroute) matters"),
    ] = None,
    limit: Limit = 50,
    after: After = None,
) -> Any:
    """The town's open matters (oldest first), all or only the overdue or returned ones — what its
    supervisors watch — with the commands of its supervisors dispatch rejected. O(page) via
    ``(town_id, open_tags, listed_at, _id)``."""
    if not registry.has_town(town_id):
        raise ProblemError(404, [("town_id", "unknown town")])
    senders = {s.staff_id for s in registry.town(town_id).supervisors}
    try:
        return await open_matters.listed_open_matters(
            db, ("town_id", town_id), tag=only or OPEN, senders=senders, limit=limit, after=after
        )
    except open_matters.CursorError as error:
        raise ProblemError(422, [("after", str(error))]) from None


@router.get("/stats/towns/{town_id}/daily", response_model=TownDaily, responses=ERRORS)
async def town_daily(town_id: str, request: Request, db: Db, registry: Reg, start: From = None, end: To = None) -> Any:
    """The town's figures per calendar day (reported, dispatched, accepted, resolved, closed),
    one entry per day, zeros included: by default the last 14 days, at most 366."""
    if not registry.has_town(town_id):
        raise ProblemError(404, [("town_id", "unknown town")])
    _check_period(start, end)
    settings = _runtime(request).settings
    zone = settings.zone if isinstance(settings, StatsSettings) else UTC
    end = end or (start + timedelta(days=13) if start else datetime.now(zone).date())
    start = start or end - timedelta(days=13)
    if start > end:
        raise ProblemError(422, [("from", "'from' is after 'to'")])
    if (end - start).days >= daily.MAX_DAYS:
        raise ProblemError(422, [("from", f"at most {daily.MAX_DAYS} days")])
    return await daily.town_daily(db, town_id, start, end)
