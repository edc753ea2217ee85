"""Response models of the work lists (``api_work.py``): what ``/openapi.json`` documents."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Rejection(BaseModel):
    occurred_at: str | None
    by: str | None = Field(None, description="Who sent the command dispatch rejected")
    detail: str | None = Field(None, description="`<command_type>: <dispatch's reason>`")


class MatterRow(BaseModel):
    """What every open-matter list shows of a matter (``open_matters._matter_fields``)."""

    matter_id: str
    town_id: str
    grid_id: str
    micro_grid_id: str | None
    category: str | None
    severity: str | None
    summary: str | None
    state: str | None
    round: int
    sequence: int
    tier: str | None
    lead: str | None
    supporting: list[str]
    accept_by: str | None
    resolve_by: str | None


class WorkRow(MatterRow):
    assignee: str | None
    open_departments: list[str]
    returned: bool = Field(description="Waiting in supervision for a reroute")
    overdue: bool = Field(description="The current round missed a deadline (escalated)")
    escalation_level: int
    lateness: str
    listed_at: str | None = Field(description="When the matter entered the system (the list's order)")
    rejections: list[Rejection]


class _OpenMattersPage(BaseModel):
    filter: str
    as_of: str
    open: int = Field(description="How many open matters carry the filter (all pages)")
    matters: list[WorkRow]
    next: str | None = Field(description="Cursor of the next page (`after`); null on the last page")


class GridOpenMatters(_OpenMattersPage):
    grid_id: str


class TownOpenMatters(_OpenMattersPage):
    town_id: str


class DayFigures(BaseModel):
    day: str
    reported: int
    dispatched: int
    accepted: int
    resolved: int
    closed: int


class TownDaily(BaseModel):
    town_id: str
    from_: str = Field(alias="from")
    to: str
    days: list[DayFigures]


class DepartmentRow(MatterRow):
    priority: str | None
    role: str | None = Field(description="The department's part: lead (主办) or supporting (协办)")
    accepted: bool
    lateness: str
    escalation_level: int
    open_since: str | None
    rejections: list[Rejection] = Field(description="The department's commands dispatch rejected")


class DepartmentOpenMatters(BaseModel):
    department_id: str
    as_of: str
    open: int = Field(description="How many matters are open for the department (all pages)")
    matters: list[DepartmentRow]
    next: str | None = Field(description="Cursor of the next page (`after`); null on the last page")
