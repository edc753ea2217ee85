"""HTTP routes of stats for the people who work matters (the console): a department's open matters.

Additive beside ``api.py``: ``GET /v1/departments/{department_id}/open-matters?limit&after``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.stats import open_matters
from services.stats.api import ERRORS, Db, Reg
from shared.problems import ProblemError

router = APIRouter(prefix="/v1", tags=["work"])


@router.get("/departments/{department_id}/open-matters", responses=ERRORS)
async def department_open_matters(
    department_id: str,
    db: Db,
    registry: Reg,
    limit: Annotated[int, Query(ge=1, le=open_matters.PAGE_MAX, description="Matters per page")] = 50,
    after: Annotated[str | None, Query(description="The `next` cursor of the previous page")] = None,
) -> dict[str, Any]:
    """The department's open matters (oldest open first): its role, acceptance, lateness,
    deadlines, and its commands dispatch rejected. O(page) via ``(open_departments, open_since)``."""
    if not registry.has_department(department_id):
        raise ProblemError(404, [("department_id", "unknown department")])
    try:
        return await open_matters.department_open_matters(db, department_id, limit=limit, after=after)
    except open_matters.CursorError as error:
        raise ProblemError(422, [("after", str(error))]) from None
