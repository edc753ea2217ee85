"""Message contracts (DESIGN §5): every event and command that crosses the broker.

Events are past tense and say what happened; commands are imperative and ask dispatch to
change a matter. Every message carries ``message_id`` (the dedupe key), ``occurred_at`` (UTC),
``schema_version``, ``matter_id``, ``town_id``, ``grid_id`` and ``correlation_id``.
Consumers ignore unknown fields; a breaking change bumps ``schema_version``.

Events carry the state they produce: every event dispatch publishes has ``matter``, the
``MatterSnapshot`` after its transition (state, round, tier, owners and their states, open
departments, deadlines, escalation level). Readers keep the snapshot of the highest ``sequence``;
none of them re-derives the lifecycle. (Schema 2: ``matter`` added.)

Citizen personal data (``CitizenContact``) travels only inside ``MatterReported`` and is
excluded from ``repr``, so it never reaches a log line by accident.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias, get_args
from uuid import UUID, uuid4, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from shared.domain import Category, Channel, MatterState, Priority, ReporterRole, Severity, Tier

SCHEMA_VERSION = 2

Slug = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
ServiceItemCode = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
ServiceDetails = Annotated[
    dict[
        Annotated[str, Field(min_length=2, max_length=48, pattern=r"^[a-z][a-z0-9_]*$")],
        Annotated[str, Field(max_length=200)],
    ],
    Field(max_length=20, description="Answers to the service item's attributes (attribute code -> value)"),
]


Origin = Literal["citizen_request", "grid_inspection", "machine"]
"""Where a matter started: a citizen asked (诉求), grid staff found it, or a machine source."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def refuse_nul(value: object) -> object:
    """Text a person or a source sent may not carry U+0000: no store keeps it faithfully and it
    has no meaning in a report; refused at the boundary, naming the field (422, or dead-lettered)."""
    if isinstance(value, dict):
        texts = [*value.keys(), *value.values()]
    else:
        texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("must not contain NUL characters (U+0000)")
    return value


class GridMessage(BaseModel):
    """Fields every message has; a message about one matter (``Message``) adds ``matter_id``.
    The supervision visit messages are about a grid, not one matter."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    schema_version: int = SCHEMA_VERSION
    town_id: Slug
    grid_id: Slug
    correlation_id: str = ""

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def log_fields(self) -> dict[str, str]:
        """What may be logged about this message: ids only, never its content."""
        return {"message_id": str(self.message_id), "town_id": self.town_id, "grid_id": self.grid_id}


class Message(GridMessage):
    """Fields every message about one matter has."""

    matter_id: UUID

    def log_fields(self) -> dict[str, str]:
        return {**super().log_fields(), "matter_id": str(self.matter_id)}


# ---------------------------------------------------------------- value objects


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address: str | None = Field(None, max_length=500)

    _no_nul = field_validator("*")(refuse_nul)


class CitizenContact(BaseModel):
    """Personal data: stored with the matter, never logged (hidden from repr)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, max_length=100, repr=False)
    phone: str | None = Field(None, max_length=40, repr=False)
    email: str | None = Field(None, max_length=200, repr=False)

    _no_nul = field_validator("*")(refuse_nul)


# ---------------------------------------------------------------- the matter's state

OwnerState = Literal["dispatched", "accepted", "resolved", "released"]
"""An owner's part in the current round: given it, took it on, finished it, or left it (supporting)."""


class MatterOwner(BaseModel):
    """One owner of the current round: the lead (department, grid staff, or the town's supervision)
    or a supporting department. ``escalation_level``: the highest escalation addressed to it this round."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    owner_id: str
    role: Literal["lead", "supporting"]
    state: OwnerState
    escalation_level: int = Field(0, ge=0, le=3)


class MatterSnapshot(BaseModel):
    """The matter as dispatch left it after one transition: what every reader keeps.

    ``open_departments``: departments that have the matter in their backlog (department-tier owners
    that have neither resolved nor left it). ``departments``: every department ever given it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: MatterState
    round: int = Field(ge=0)
    stage: Literal["reported", "whistled"] = "reported"
    severity: Severity
    tier: Tier | None = None
    priority: Priority | None = None
    lead: str | None = None
    assignee: str | None = None
    supporting: list[str] = Field(default_factory=list)
    owners: list[MatterOwner] = Field(default_factory=list)
    open_departments: list[str] = Field(default_factory=list)
    departments: list[str] = Field(default_factory=list)
    dispatched_at: AwareDatetime | None = None
    accept_by: AwareDatetime | None = None
    resolve_by: AwareDatetime | None = None
    accepted_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    escalation_level: int = Field(0, ge=0, le=3)  # the highest of this round
    supervised: bool = False  # a supervisor stepped in (escalated, returned to supervision, rerouted, visited)
    followed_up: bool = False  # a grid instructor followed it up on a supervision visit
    squads: list[str] = Field(default_factory=list)  # volunteer squads assigned to it
    satisfaction: int | None = Field(None, ge=1, le=5)

    def owner(self, owner_id: str) -> MatterOwner | None:
        return next((o for o in self.owners if o.owner_id == owner_id), None)


# ---------------------------------------------------------------- events


class Event(Message):
    """An event about a matter. ``sequence`` is the matter's version after the change."""

    event_type: str  # each concrete event narrows it to its Literal name
    sequence: int = Field(0, ge=0)
    category: Category


class MatterEvent(Event):
    """An event of dispatch's: ``matter`` is the matter after the transition that caused it (all
    events of one transition share its ``sequence`` and its snapshot)."""

    matter: MatterSnapshot


class MatterReported(Event):
    """A new matter (from intake, ``sequence`` 0): the one event before dispatch decided anything."""

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
    service_item: ServiceItemCode | None = None  # a code of the town's service catalogue
    service_details: ServiceDetails = Field(default_factory=dict)


class MatterDispatched(MatterEvent):
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


class MatterAccepted(MatterEvent):
    """An owner (the lead, or a supporting department) took the matter on in this round."""

    event_type: Literal["matter_accepted"] = "matter_accepted"
    round: int
    by: str
    role: Literal["lead", "supporting"] = "lead"
    waited_seconds: float = Field(0.0, ge=0)  # since this round was dispatched
    on_time: bool = True  # accepted before accept_by


class MatterReturned(MatterEvent):
    """An owner gave the matter back with a reason: rerouted, sent to supervision, or released."""

    event_type: Literal["matter_returned"] = "matter_returned"
    round: int
    by: str
    reason: str
    outcome: Literal["rerouted", "supervision", "released"]


class MatterRerouted(MatterEvent):
    """A supervisor gave the matter new owners (a new dispatch round follows)."""

    event_type: Literal["matter_rerouted"] = "matter_rerouted"
    round: int
    by: str
    reason: str
    lead: str
    supporting: list[str] = Field(default_factory=list)


class MatterWhistled(MatterEvent):
    """A grid-tier owner whistled the matter up to the town's departments (吹哨)."""

    event_type: Literal["matter_whistled"] = "matter_whistled"
    round: int
    by: str
    reason: str


class MatterResolved(MatterEvent):
    """An owner finished its part; the lead's resolution resolves the matter."""

    event_type: Literal["matter_resolved"] = "matter_resolved"
    round: int
    by: str
    role: Literal["lead", "supporting"] = "lead"
    note: str = ""
    supervised: bool = False  # a supervisor stepped in (escalated or returned to supervision)
    handling_seconds: float = Field(0.0, ge=0)  # since the matter was reported
    on_time: bool = True  # resolved before resolve_by


class MatterClosed(MatterEvent):
    """The reporter's feedback closed the resolved matter (satisfaction 1..5)."""

    event_type: Literal["matter_closed"] = "matter_closed"
    round: int
    by: str
    satisfaction: int = Field(ge=1, le=5)
    origin: Origin | None = None  # from the report: lets stats count citizen requests closed
    supervised: bool = False  # a supervisor stepped in at some point of its life
    followed_up: bool = False  # a supervision visit followed it up before it closed


class MatterReopened(MatterEvent):
    """Unsatisfied feedback sent the resolved matter back to its lead."""

    event_type: Literal["matter_reopened"] = "matter_reopened"
    round: int
    by: str
    satisfaction: int = Field(ge=1, le=5)
    lead: str


class MatterEscalated(MatterEvent):
    """A deadline (accept or resolve) was missed: escalation level 1..3, addressed to its owner."""

    event_type: Literal["matter_escalated"] = "matter_escalated"
    round: int
    level: int = Field(ge=1, le=3)
    deadline: Literal["accept", "resolve"]
    owner: str
    due_at: AwareDatetime


class MatterFollowedUp(MatterEvent):
    """A grid instructor's supervision visit followed the matter up (督促指导). ``first``: the first
    follow-up of this matter (counted once as a matter supervised, and — closed then or later —
    as a problem supervised to resolution)."""

    event_type: Literal["matter_followed_up"] = "matter_followed_up"
    round: int
    by: str  # the instructor
    visit_id: UUID
    visited_at: AwareDatetime
    first: bool = True


class SquadAssigned(MatterEvent):
    """A micro-grid member gave a minor matter to one of the grid's volunteer squads."""

    event_type: Literal["squad_assigned"] = "squad_assigned"
    round: int
    by: str
    squad_id: str
    squad_kind: str
    volunteers: int = Field(ge=1)  # the squad's size (people, never names)


class MatterCommandRejected(MatterEvent):
    """A command that is illegal in every order was refused, with the reason."""

    event_type: Literal["matter_command_rejected"] = "matter_command_rejected"
    command_id: UUID
    command_type: str
    actor_id: str
    reason: str


MatterLifeEvent: TypeAlias = (
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
    | MatterFollowedUp
    | SquadAssigned
    | MatterCommandRejected
)
"""Every event of a matter's life (``SupervisionVisitRecorded`` is a grid's, not a matter's)."""
AnyEvent = Annotated[MatterLifeEvent, Field(discriminator="event_type")]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def _type_names(union: Any, field: str) -> tuple[str, ...]:
    """The ``event_type`` / ``command_type`` names of a union's messages, in its order."""
    return tuple(str(model.model_fields[field].default) for model in get_args(union) or (union,))


EVENT_TYPES: tuple[str, ...] = _type_names(MatterLifeEvent, "event_type")


# ---------------------------------------------------------------- commands


class Command(Message):
    """A request to change a matter. ``round`` is the dispatch round the actor acts on
    (from the ``MatterDispatched`` it received): dispatch parks a command for a round it
    has not reached yet and rejects one for a round already over."""

    command_type: str  # each concrete command narrows it to its Literal name
    actor_id: str = Field(min_length=1, max_length=120)
    round: int = Field(ge=1)

    _no_nul = field_validator("*")(refuse_nul)


class AcceptMatter(Command):
    """Take on a dispatched matter (lead or supporting department, grid staff)."""

    command_type: Literal["accept_matter"] = "accept_matter"


class ReturnMatter(Command):
    """Give a mis-routed matter back, with a reason (the lead: rerouted or to supervision)."""

    command_type: Literal["return_matter"] = "return_matter"
    reason: str = Field("", max_length=2000)  # empty is parsed, then rejected by dispatch


class ResolveMatter(Command):
    """Report an accepted matter as handled, with an optional note."""

    command_type: Literal["resolve_matter"] = "resolve_matter"
    note: str = Field("", max_length=2000)


class WhistleMatter(Command):
    """Grid tier: escalate the matter to the town's departments (吹哨), with a reason."""

    command_type: Literal["whistle_matter"] = "whistle_matter"
    reason: str = Field("", max_length=2000)


class RecordFeedback(Command):
    """The reporter's satisfaction (1..5) with a resolved matter: closes or reopens it."""

    command_type: Literal["record_feedback"] = "record_feedback"
    satisfaction: int = Field(ge=1, le=5)


class RerouteMatter(Command):
    """A supervisor names the new lead and supporting departments of a matter."""

    command_type: Literal["reroute_matter"] = "reroute_matter"
    lead: str = Field(min_length=1)
    supporting: list[str] = Field(default_factory=list)
    reason: str = Field("", max_length=2000)


class AssignSquad(Command):
    """A micro-grid member asks one of the grid's volunteer squads to help with a minor matter."""

    command_type: Literal["assign_squad"] = "assign_squad"
    squad_id: str = Field(min_length=1, max_length=120)


AnyCommand = Annotated[
    AcceptMatter | ReturnMatter | ResolveMatter | WhistleMatter | RecordFeedback | RerouteMatter | AssignSquad,
    Field(discriminator="command_type"),
]
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)


# ---------------------------------------------------------------- supervision visits (about a grid)


def visit_event_id(visit_id: UUID) -> UUID:
    """The ``message_id`` of a visit's ``SupervisionVisitRecorded``: one per visit, however often
    its command is delivered (consumers dedupe by it)."""
    return uuid5(visit_id, "supervision_visit_recorded")


class RecordSupervisionVisit(GridMessage):
    """A grid instructor (supervisor) records a visit to a grid and the matters followed up there.
    ``visit_id`` is the client's idempotency key: the same visit sent again changes nothing."""

    command_type: Literal["record_supervision_visit"] = "record_supervision_visit"
    actor_id: str = Field(min_length=1, max_length=120)  # the instructor
    visit_id: UUID
    visited_at: AwareDatetime
    matter_ids: list[UUID] = Field(default_factory=list, max_length=50)
    note: str = Field("", max_length=2000)

    _no_nul = field_validator("*")(refuse_nul)

    @field_validator("matter_ids")
    @classmethod
    def _once_each(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("a matter is listed twice")
        return value


class SupervisionVisitRecorded(GridMessage):
    """Dispatch checked a visit (grid known, instructor supervises it, each matter in that grid)
    and followed its matters up (one ``MatterFollowedUp`` each)."""

    event_type: Literal["supervision_visit_recorded"] = "supervision_visit_recorded"
    visit_id: UUID
    instructor_id: str
    visited_at: AwareDatetime
    matter_ids: list[UUID] = Field(default_factory=list)


MatterCommand: TypeAlias = (
    AcceptMatter | ReturnMatter | ResolveMatter | WhistleMatter | RecordFeedback | RerouteMatter | AssignSquad
)
"""Every command on one matter (a supervision visit names several)."""
AnyDispatchCommand = Annotated[MatterCommand | RecordSupervisionVisit, Field(discriminator="command_type")]
"""What ``dispatch.commands`` carries: the matter commands and the grid's supervision visits."""

AnyStatsEvent = Annotated[MatterLifeEvent | SupervisionVisitRecorded, Field(discriminator="event_type")]
"""What ``stats.events`` carries: every matter event and the visits."""
STATS_EVENT_ADAPTER: TypeAdapter[AnyStatsEvent] = TypeAdapter(AnyStatsEvent)

COMMAND_TYPES: tuple[str, ...] = _type_names(MatterCommand, "command_type")
GRID_COMMAND_TYPES: tuple[str, ...] = _type_names(RecordSupervisionVisit, "command_type")
GRID_EVENT_TYPES: tuple[str, ...] = _type_names(SupervisionVisitRecorded, "event_type")


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
    service_item: ServiceItemCode | None = Field(
        None,
        description="A code of the town's service catalogue; its category must be the report's `category`",
    )
    service_details: ServiceDetails = Field(default_factory=dict)

    _no_nul = field_validator("*")(refuse_nul)
