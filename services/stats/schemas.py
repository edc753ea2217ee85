"""Response models of the stats HTTP API: what ``/openapi.json`` documents and FastAPI checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.read_models import MatterView, TimelineEntry


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: str | None = Field(None, alias="from", description="First day, inclusive (null: open-ended)")
    end: str | None = Field(None, alias="to", description="Last day, inclusive (null: open-ended)")


class MatterKpis(BaseModel):
    reported: int
    dispatched: int
    accepted: int
    resolved: int
    closed: int
    closure_rate: float | None = Field(description="closed / reported (办结率); null without reports")
    acceptance_rate: float | None
    on_time_rate: float | None
    accept_on_time_rate: float | None
    mean_time_to_accept_seconds: float | None
    mean_time_to_resolve_seconds: float | None
    satisfaction: float | None


class CategoryFigures(BaseModel):
    kpis: MatterKpis
    counts: dict[str, int]


class TownStats(BaseModel):
    town_id: str
    period: Period
    kpis: MatterKpis
    counts: dict[str, int]
    by_category: dict[str, CategoryFigures]
    by_instructor: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per grid instructor: supervision visits and matters followed up"
    )


class CatalogueItem(BaseModel):
    code: str
    name: str
    name_zh: str
    category: str
    department: str = Field(description="The department that handles it by default")


class TownStructure(BaseModel):
    """What a town is made of, as the running stats service's registry says (not counted from events)."""

    town_id: str
    name: str
    name_zh: str
    overall_grids: int = Field(description="总网格: the town itself (1)")
    grids: int = Field(description="基础网格: basic grids (villages and the town-seat community)")
    village_grids: int
    community_grids: int
    micro_grids: int
    grid_leaders: int
    grid_members: int
    micro_grid_members: int
    instructors: int = Field(description="Grid instructors (town cadres who supervise grids)")
    departments: int
    volunteer_squads: int
    volunteers: int = Field(description="People in the grids' volunteer squads")
    service_items: int = Field(description="Items of the town's service catalogue")
    catalogue: list[CatalogueItem]


class GridStats(BaseModel):
    grid_id: str
    town_id: str
    period: Period
    kpis: MatterKpis
    counts: dict[str, int]


class DepartmentKpis(BaseModel):
    dispatched: int
    accepted: int
    resolved: int
    returned: int
    acceptance_rate: float | None
    on_time_rate: float | None
    accept_on_time_rate: float | None
    mean_time_to_accept_seconds: float | None
    mean_time_to_resolve_seconds: float | None


class DepartmentBacklogRow(BaseModel):
    department_id: str
    open: int
    unaccepted: int
    by_lateness: dict[str, int] = Field(description="on_time, overdue_l1..overdue_l3")
    oldest_open_since: str | None
    oldest_open_age_seconds: float | None


class DepartmentStats(BaseModel):
    department_id: str
    period: Period
    kpis: DepartmentKpis
    counts: dict[str, int]
    by_town: dict[str, dict[str, int]]
    backlog: DepartmentBacklogRow


class Backlog(BaseModel):
    town_id: str | None
    as_of: str
    open: int
    unaccepted: int
    departments: list[DepartmentBacklogRow]


class MatterTimelineEntry(TimelineEntry):
    data: dict[str, Any] = Field(default_factory=dict, description="The event's own figures (no personal data)")


class MatterAnswer(MatterView):
    """``GET /v1/matters/{id}``: the matters read model, as stats keeps it."""

    model_config = ConfigDict(extra="allow")

    matter_id: str
    timeline: list[MatterTimelineEntry] = Field(default_factory=list)  # type: ignore[assignment]
    backlog: list[dict[str, Any]] | None = None
    departments: list[str] | None = None
    escalations: list[dict[str, Any]] | dict[str, Any] | None = None
    open_since: str | None = None
    rev: int | None = None
