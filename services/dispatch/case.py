"""The case: dispatch's own state of one matter (one document per version, see ``store``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import Category, MatterState, Priority, Severity, Tier

OwnerState = Literal["dispatched", "accepted", "resolved", "released"]
OPEN_OWNER_STATES: tuple[OwnerState, ...] = ("dispatched", "accepted")
ESCALATION_LEVELS = 3


class Owner(BaseModel):
    """One owner of the current round: the lead (department or grid staff) or a supporting department."""

    model_config = ConfigDict(extra="ignore")

    owner_id: str
    role: Literal["lead", "supporting"]
    state: OwnerState = "dispatched"


class ParkedCommand(BaseModel):
    """A command that arrived before the case was ready for it; retried after every transition."""

    model_config = ConfigDict(extra="ignore")

    message_id: str
    command_type: str
    parked_at: datetime
    reason: str
    body: dict[str, Any]


class Case(BaseModel):
    """State of one matter. ``version`` increments with every stored change; events carry it as
    ``sequence``. ``round`` increments with every new dispatch (reroute, whistle, reopen)."""

    model_config = ConfigDict(extra="ignore", use_enum_values=True, validate_default=True)

    matter_id: str
    version: int = 0
    exists: bool = False  # False: a placeholder holding commands that came before MatterReported
    town_id: str = ""
    grid_id: str = ""
    micro_grid_id: str | None = None
    category: Category = Category.OTHER
    severity: Severity = Severity.MINOR
    reported_at: datetime | None = None
    report_id: str | None = None  # the reporter's reference, shown to departments
    origin: str | None = None  # citizen_request | grid_inspection | machine (counted at closure)
    correlation_id: str = ""
    state: MatterState = MatterState.REPORTED
    stage: Literal["reported", "whistled"] = "reported"
    round: int = 0
    tier: Tier | None = None
    rule_id: str = ""
    priority: Priority = Priority.P3
    lead: str | None = None
    owners: list[Owner] = Field(default_factory=list)
    assignee: str | None = None
    dispatched_at: datetime | None = None
    accept_by: datetime | None = None
    resolve_by: datetime | None = None
    accept_within_s: float = 0.0
    resolve_within_s: float = 0.0
    accepted_at: datetime | None = None
    returned_by: list[str] = Field(default_factory=list)
    escalations: list[str] = Field(default_factory=list)  # "<round>:<accept|resolve>:<level>"
    supervised: bool = False
    satisfaction: int | None = None
    applied: list[str] = Field(default_factory=list)  # message ids applied or rejected
    pending: list[ParkedCommand] = Field(default_factory=list)
    next_deadline: datetime | None = None

    # ------------------------------------------------------------------ views
    def owner(self, owner_id: str) -> Owner | None:
        return next((o for o in self.owners if o.owner_id == owner_id), None)

    @property
    def supporting(self) -> list[Owner]:
        return [o for o in self.owners if o.role == "supporting"]

    @property
    def open_supporting(self) -> list[str]:
        return [o.owner_id for o in self.supporting if o.state in OPEN_OWNER_STATES]

    def seen(self, message_id: str) -> bool:
        return message_id in self.applied or any(p.message_id == message_id for p in self.pending)

    def due_escalation(self) -> tuple[str, int, datetime] | None:
        """The next escalation level not yet done: (deadline kind, level, due time)."""
        if (
            not self.exists
            or self.dispatched_at is None
            or self.state
            not in (
                MatterState.DISPATCHED,
                MatterState.ACCEPTED,
            )
        ):
            return None
        kind, allowed = (
            ("accept", self.accept_within_s)
            if self.state == MatterState.DISPATCHED
            else ("resolve", self.resolve_within_s)
        )
        for level in range(1, ESCALATION_LEVELS + 1):
            if f"{self.round}:{kind}:{level}" not in self.escalations:
                return kind, level, self.dispatched_at + timedelta(seconds=level * allowed)
        return None

    def compute_next_deadline(self, park_timeout: timedelta) -> datetime | None:
        times = [p.parked_at + park_timeout for p in self.pending]
        due = self.due_escalation()
        if due is not None:
            times.append(due[2])
        return min(times) if times else None

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="python")
