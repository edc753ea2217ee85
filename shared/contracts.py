"""Message contracts (DESIGN §5): every event and command that crosses the broker.

Events are past tense and say what happened; commands are imperative and ask dispatch to
change a matter. Every message carries ``message_id`` (the dedupe key), ``occurred_at`` (UTC),
``schema_version``, ``matter_id``, ``town_id``, ``grid_id`` and ``correlation_id``.
Consumers ignore unknown fields; a breaking change bumps ``schema_version``.

Citizen personal data (``CitizenContact``) travels only inside ``MatterReported`` and is
excluded from ``repr``, so it never reaches a log line by accident.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from shared.domain import Category, Channel, Priority, ReporterRole, Severity, Tier

SCHEMA_VERSION = 1

Slug = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


Origin = Literal["citizen_request", "grid_inspection", "machine"]
"""Where a matter started: a citizen asked (诉求), grid staff found it, or a machine source."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Fields every message has."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    schema_version: int = SCHEMA_VERSION
    matter_id: UUID
    town_id: Slug
    grid_id: Slug
    correlation_id: str = ""

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def log_fields(self) -> dict[str, str]:
        """What may be logged about this message: ids only, never its content."""
        return {
            "message_id": str(self.message_id),
            "matter_id": str(self.matter_id),
            "town_id": self.town_id,
            "grid_id": self.grid_id,
        }


# ---------------------------------------------------------------- value objects


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address: str | None = Field(None, max_length=500)


class CitizenContact(BaseModel):
    """Personal data: stored with the matter, never logged (hidden from repr)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, max_length=100, repr=False)
    phone: str | None = Field(None, max_length=40, repr=False)
    email: str | None = Field(None, max_length=200, repr=False)


# ---------------------------------------------------------------- events


class Event(Message):
    """An event about a matter. ``sequence`` is the matter's version after the change."""

    event_type: str  # each concrete event narrows it to its Literal name
    sequence: int = Field(0, ge=0)
    category: Category


class MatterReported(Event):
    event_type: Literal["matter_reported"] = "matter_reported"
    report_id: str = Field(min_length=1, max_length=120)
    channel: Channel
    origin: Origin = "grid_inspection"
    severity: Severity
    summary: str = Field(min_length=1, max_length=2000)
    micro_grid_id: Slug | None = None
    location: Location | None = None
    reporter_id: str | None = Field(None, max_length=120)
    reporter_role: ReporterRole | None = None
    contact: CitizenContact | None = Field(None, repr=False)
    attachments: list[str] = Field(default_factory=list, max_length=20)
    reported_at: AwareDatetime = Field(default_factory=utc_now)


class MatterDispatched(Event):
    """The matter was given to owners for one dispatch round."""

    event_type: Literal["matter_dispatched"] = "matter_dispatched"
    round: int = Field(ge=1)
    severity: Severity
    tier: Tier
    lead: str  # department_id, or grid staff id on grid tiers, or town_id for supervision
    supporting: list[str] = Field(default_factory=list)
    assignee: str | None = None
    priority: Priority
    rule_id: str
    reason: Literal["reported", "returned", "whistled", "rerouted", "reopened"] = "reported"
    report_id: str | None = None  # the reporter's reference, shown in department inboxes
    accept_by: AwareDatetime
    resolve_by: AwareDatetime


class MatterAccepted(Event):
    event_type: Literal["matter_accepted"] = "matter_accepted"
    round: int
    by: str
    role: Literal["lead", "supporting"] = "lead"
    waited_seconds: float = Field(0.0, ge=0)  # since this round was dispatched
    on_time: bool = True  # accepted before accept_by


class MatterReturned(Event):
    event_type: Literal["matter_returned"] = "matter_returned"
    round: int
    by: str
    reason: str
    outcome: Literal["rerouted", "supervision", "released"]


class MatterRerouted(Event):
    event_type: Literal["matter_rerouted"] = "matter_rerouted"
    round: int
    by: str
    reason: str
    lead: str
    supporting: list[str] = Field(default_factory=list)


class MatterWhistled(Event):
    event_type: Literal["matter_whistled"] = "matter_whistled"
    round: int
    by: str
    reason: str


class MatterResolved(Event):
    event_type: Literal["matter_resolved"] = "matter_resolved"
    round: int
    by: str
    role: Literal["lead", "supporting"] = "lead"
    note: str = ""
    supervised: bool = False  # a supervisor stepped in (escalated or returned to supervision)
    handling_seconds: float = Field(0.0, ge=0)  # since the matter was reported
    on_time: bool = True  # resolved before resolve_by


class MatterClosed(Event):
    event_type: Literal["matter_closed"] = "matter_closed"
    round: int
    by: str
    satisfaction: int = Field(ge=1, le=5)
    origin: Origin | None = None  # from the report: lets stats count citizen requests closed
    supervised: bool = False  # a supervisor stepped in at some point of its life


class MatterReopened(Event):
    event_type: Literal["matter_reopened"] = "matter_reopened"
    round: int
    by: str
    satisfaction: int = Field(ge=1, le=5)
    lead: str


class MatterEscalated(Event):
    event_type: Literal["matter_escalated"] = "matter_escalated"
    round: int
    level: int = Field(ge=1, le=3)
    deadline: Literal["accept", "resolve"]
    owner: str
    due_at: AwareDatetime


class MatterCommandRejected(Event):
    event_type: Literal["matter_command_rejected"] = "matter_command_rejected"
    command_id: UUID
    command_type: str
    actor_id: str
    reason: str


AnyEvent = Annotated[
    MatterReported
    | MatterDispatched
    | MatterAccepted
    | MatterReturned
    | MatterRerouted
    | MatterWhistled
    | MatterResolved
    | MatterClosed
    | MatterReopened
    | MatterEscalated
    | MatterCommandRejected,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
EVENT_TYPES: tuple[str, ...] = (
    "matter_reported",
    "matter_dispatched",
    "matter_accepted",
    "matter_returned",
    "matter_rerouted",
    "matter_whistled",
    "matter_resolved",
    "matter_closed",
    "matter_reopened",
    "matter_escalated",
    "matter_command_rejected",
)


# ---------------------------------------------------------------- commands


class Command(Message):
    """A request to change a matter. ``round`` is the dispatch round the actor acts on
    (from the ``MatterDispatched`` it received): dispatch parks a command for a round it
    has not reached yet and rejects one for a round already over."""

    command_type: str  # each concrete command narrows it to its Literal name
    actor_id: str = Field(min_length=1, max_length=120)
    round: int = Field(ge=1)


class AcceptMatter(Command):
    command_type: Literal["accept_matter"] = "accept_matter"


class ReturnMatter(Command):
    command_type: Literal["return_matter"] = "return_matter"
    reason: str = Field("", max_length=2000)  # empty is parsed, then rejected by dispatch


class ResolveMatter(Command):
    command_type: Literal["resolve_matter"] = "resolve_matter"
    note: str = Field("", max_length=2000)


class WhistleMatter(Command):
    command_type: Literal["whistle_matter"] = "whistle_matter"
    reason: str = Field("", max_length=2000)


class RecordFeedback(Command):
    command_type: Literal["record_feedback"] = "record_feedback"
    satisfaction: int = Field(ge=1, le=5)


class RerouteMatter(Command):
    command_type: Literal["reroute_matter"] = "reroute_matter"
    lead: str = Field(min_length=1)
    supporting: list[str] = Field(default_factory=list)
    reason: str = Field("", max_length=2000)


AnyCommand = Annotated[
    AcceptMatter | ReturnMatter | ResolveMatter | WhistleMatter | RecordFeedback | RerouteMatter,
    Field(discriminator="command_type"),
]
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)
COMMAND_TYPES: tuple[str, ...] = (
    "accept_matter",
    "return_matter",
    "resolve_matter",
    "whistle_matter",
    "record_feedback",
    "reroute_matter",
)


# ---------------------------------------------------------------- intake


class ReportSubmission(BaseModel):
    """A report as a source submits it (HTTP body or ``intake.reports`` message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_id: str = Field(min_length=1, max_length=120)
    town_id: Slug
    grid_id: Slug
    micro_grid_id: Slug | None = None
    category: Category
    severity: Severity
    origin: Origin = "grid_inspection"
    summary: str = Field(min_length=1, max_length=2000)
    location: Location | None = None
    reporter_id: str | None = Field(None, max_length=120)
    reporter_role: ReporterRole | None = None
    contact: CitizenContact | None = Field(None, repr=False)
    attachments: list[Annotated[str, Field(max_length=2000, pattern=r"^https?://")]] = Field(
        default_factory=list, max_length=20
    )
    occurred_at: AwareDatetime | None = None
