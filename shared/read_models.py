"""Names and shapes of the MongoDB collections, so readers and writers agree.

``stats`` writes the read models; ``intake`` (Open311 status) only reads ``matters``;
``dispatch`` owns ``cases``. Every collection lives in ``GwSettings.mongo_db``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# stats (read models; rebuildable from EVENT_LOG)
EVENT_LOG = "event_log"
MATTERS = "matters"
COUNTERS = "counters"  # bucket documents per scope and day
# dispatch (the state machine's own store)
CASES = "cases"
# intake (idempotency of report_id)
REPORTS = "intake_reports"


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sequence: int
    event_type: str
    occurred_at: datetime
    message_id: str
    by: str | None = None
    detail: str | None = None  # reason, note, satisfaction, level: never personal data


class MatterView(BaseModel):
    """One document of ``matters`` (``_id`` = matter id as a string)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    matter_id: str = Field(alias="_id")
    report_id: str | None = None
    town_id: str
    grid_id: str
    micro_grid_id: str | None = None
    category: str
    severity: str | None = None
    origin: str | None = None
    channel: str | None = None
    summary: str | None = None
    location: dict[str, Any] | None = None
    reported_at: datetime | None = None
    state: str = "reported"
    sequence: int = 0
    round: int = 0
    tier: str | None = None
    lead: str | None = None
    supporting: list[str] = Field(default_factory=list)
    assignee: str | None = None
    accept_by: datetime | None = None
    resolve_by: datetime | None = None
    open_departments: list[str] = Field(default_factory=list)
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    escalation_level: int = 0
    satisfaction: int | None = None
    supervised: bool = False
    service_item: str | None = None
    followed_up: bool = False
    squads: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
