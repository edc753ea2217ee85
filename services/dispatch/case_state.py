"""What a case is: its fields, its views, the snapshot its events carry, and how a round starts.

The rules that change a case are ``Case``'s methods (``case.py``); this module holds the state
they work on. Events are recorded as drafts during a transition; ``end_step`` closes it: the
version moves on and every draft becomes an event with that version as ``sequence`` and the
snapshot after the transition as ``matter``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from shared import topology
from shared.contracts import MatterDispatched, MatterOwner, MatterSnapshot, OwnerState
from shared.domain import Category, MatterState, Priority, Severity, Tier
from shared.registry import StaffRole

if TYPE_CHECKING:
    from services.dispatch.rules import Route, RuleBook
    from shared.contracts import MatterEvent
    from shared.registry import Registry

OPEN_OWNER_STATES: tuple[OwnerState, ...] = ("dispatched", "accepted")
ESCALATION_LEVELS = 3
DispatchReason = Literal["reported", "returned", "whistled", "rerouted", "reopened"]


class NotReadyError(Exception):
    """Not possible yet; may become possible after another transition (the command is parked)."""


class IllegalCommandError(Exception):
    """Illegal in any order: answered with MatterCommandRejected."""


@dataclass(frozen=True)
class Context:
    """What a decision may look at besides the case: rules, registry, the time."""

    rules: RuleBook
    registry: Registry
    now: datetime
    park_timeout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class FollowUp:
    """One matter of a supervision visit, as dispatch applies it to that matter's case.
    ``message_id`` is derived from the visit and the matter, so a visit delivered again follows
    each matter up once (``Case.has_seen``)."""

    matter_id: UUID
    message_id: UUID
    visit_id: UUID
    town_id: str
    grid_id: str
    instructor_id: str
    visited_at: datetime
    correlation_id: str = ""
    message_type: ClassVar[str] = "follow_up"


@dataclass(frozen=True)
class Outbound:
    """One event for ``gw.events`` and the ``gw.dispatch`` keys its body also goes to."""

    event: MatterEvent
    dispatch_keys: tuple[str, ...] = ()


@dataclass
class _Draft:
    kind: type[MatterEvent]
    correlation_id: str
    keys: tuple[str, ...]
    fields: dict[str, Any] = field(default_factory=dict)


class Owner(BaseModel):
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


def pick_assignee(registry: Registry, tier: Tier, grid_id: str, micro_grid_id: str | None, seed: str) -> str:
    """The grid staff member who owns a grid-tier matter (deterministic per matter)."""
    grid = registry.grid(grid_id)
    if tier is Tier.GRID_LEADER:
        return grid.leader.staff_id
    if tier is Tier.MICRO_GRID:
        micro = next((m for m in grid.micro_grids if m.micro_grid_id == micro_grid_id), None)
        if micro is None:
            micro = grid.micro_grids[UUID(seed).int % len(grid.micro_grids)]
        return micro.member.staff_id
    members = registry.staff_of_grid(grid_id, StaffRole.GRID_MEMBER)
    return members[UUID(seed).int % len(members)].staff_id if members else grid.leader.staff_id


class CaseState(BaseModel):
    """``version`` moves on with every transition; ``round`` with every new dispatch (return,
    whistle, reroute, reopen). ``exists`` is False on a placeholder holding commands that came first."""

    model_config = ConfigDict(extra="ignore", use_enum_values=True, validate_default=True)

    matter_id: str
    version: int = 0
    exists: bool = False
    town_id: str = ""
    grid_id: str = ""
    micro_grid_id: str | None = None
    category: Category = Category.OTHER
    severity: Severity = Severity.MINOR
    reported_at: datetime | None = None
    report_id: str | None = None  # the reporter's reference, shown to departments
    origin: str | None = None  # citizen_request | grid_inspection | machine (counted at closure)
    channel: str | None = None  # app | open311 | amqp (rules may match on it)
    service_item: str | None = None  # a code of the town's service catalogue (rules may match on it)
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
    departments: list[str] = Field(default_factory=list)  # every department ever given the matter
    dispatched_at: datetime | None = None
    accept_by: datetime | None = None
    resolve_by: datetime | None = None
    accept_within_s: float = 0.0
    resolve_within_s: float = 0.0
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    returned_by: list[str] = Field(default_factory=list)
    escalations: list[str] = Field(default_factory=list)  # "<round>:<accept|resolve>:<level>"
    supervised: bool = False
    followed_up: bool = False  # a supervision visit followed it up
    squads: list[str] = Field(default_factory=list)  # volunteer squads assigned
    satisfaction: int | None = None
    applied: list[str] = Field(default_factory=list)  # message ids applied or rejected
    pending: list[ParkedCommand] = Field(default_factory=list)
    next_deadline: datetime | None = None
    _drafts: list[_Draft] = PrivateAttr(default_factory=list)
    _events: list[Outbound] = PrivateAttr(default_factory=list)

    # ------------------------------------------------------------------ views
    def owner(self, owner_id: str) -> Owner | None:
        return next((o for o in self.owners if o.owner_id == owner_id), None)

    @property
    def open_supporting(self) -> list[str]:
        return [o.owner_id for o in self.owners if o.role == "supporting" and o.state in OPEN_OWNER_STATES]

    @property
    def on_grid_tier(self) -> bool:
        return self.tier is not None and Tier(self.tier).is_grid_tier

    @property
    def escalation_level(self) -> int:
        """The highest escalation level of the current round."""
        levels = [int(e.rsplit(":", 1)[1]) for e in self.escalations if e.startswith(f"{self.round}:")]
        return max(levels, default=0)

    def has_seen(self, message_id: str) -> bool:
        return message_id in self.applied or any(p.message_id == message_id for p in self.pending)

    def due_escalation(self) -> tuple[Literal["accept", "resolve"], int, datetime] | None:
        """The next escalation level not yet done: (deadline kind, level, due time)."""
        if not self.exists or self.dispatched_at is None:
            return None
        if self.state not in (MatterState.DISPATCHED, MatterState.ACCEPTED):
            return None
        kind: Literal["accept", "resolve"] = "accept" if self.state == MatterState.DISPATCHED else "resolve"
        allowed = self.accept_within_s if kind == "accept" else self.resolve_within_s
        for level in range(1, ESCALATION_LEVELS + 1):
            if f"{self.round}:{kind}:{level}" not in self.escalations:
                return kind, level, self.dispatched_at + timedelta(seconds=level * allowed)
        return None

    def next_deadline_after(self, park_timeout: timedelta) -> datetime | None:
        """When the sweeper must look again: the next escalation, or a parked command's timeout."""
        times = [p.parked_at + park_timeout for p in self.pending]
        if (due := self.due_escalation()) is not None:
            times.append(due[2])
        return min(times) if times else None

    def snapshot(self) -> MatterSnapshot:
        """The matter as every reader keeps it (carried by each event of a transition)."""
        level = self.escalation_level
        escalated_owner = self.lead or self.town_id
        owners = [
            MatterOwner(
                owner_id=o.owner_id,
                role=o.role,
                state=o.state,
                escalation_level=level if o.owner_id == escalated_owner else 0,
            )
            for o in self.owners
        ]
        in_backlog = [o.owner_id for o in owners if self.tier == Tier.DEPARTMENT and o.state in OPEN_OWNER_STATES]
        return MatterSnapshot(
            state=self.state,
            round=self.round,
            stage=self.stage,
            severity=self.severity,
            tier=self.tier,
            priority=self.priority if self.round else None,
            lead=self.lead,
            assignee=self.assignee,
            supporting=[o.owner_id for o in self.owners if o.role == "supporting"],
            owners=owners,
            open_departments=sorted(in_backlog),
            departments=sorted(self.departments),
            dispatched_at=self.dispatched_at,
            accept_by=self.accept_by,
            resolve_by=self.resolve_by,
            accepted_at=self.accepted_at,
            resolved_at=self.resolved_at,
            closed_at=self.closed_at,
            escalation_level=level,
            supervised=self.supervised,
            followed_up=self.followed_up,
            squads=list(self.squads),
            satisfaction=self.satisfaction,
        )

    # ------------------------------------------------------------------ events of a transition
    def end_step(self) -> None:
        """Close a transition: the next version, and its events stamped with it and the snapshot."""
        self.version += 1
        snapshot = self.snapshot()
        for draft in self._drafts:
            event = draft.kind(
                matter_id=UUID(self.matter_id),
                town_id=self.town_id,
                grid_id=self.grid_id,
                category=self.category,
                sequence=self.version,
                correlation_id=draft.correlation_id or self.correlation_id,
                matter=snapshot,
                **draft.fields,
            )
            self._events.append(Outbound(event, draft.keys))
        self._drafts.clear()

    def collect_events(self) -> list[Outbound]:
        """The events of the transitions ended since the last call (stored as the outbox)."""
        events, self._events = self._events, []
        return events

    def _record(
        self, kind: type[MatterEvent], ctx: Context, correlation_id: str, *, keys: tuple[str, ...] = (), **fields: Any
    ) -> None:
        """An event of this transition, at ``ctx.now``, and (for an event of a round: all but a
        rejection) on the round the matter is on at this point: one recorded before ``_start_round``
        belongs to the round that ended."""
        stamp: dict[str, Any] = {"occurred_at": ctx.now}
        if "round" in kind.model_fields:
            stamp["round"] = self.round
        self._drafts.append(_Draft(kind, correlation_id, keys, stamp | fields))

    # ------------------------------------------------------------------ a new round
    def _start_round(
        self,
        route: Route,
        ctx: Context,
        reason: DispatchReason,
        correlation_id: str = "",
        *,
        accepted: bool = False,
    ) -> None:
        """The matter goes to ``route``'s owners (grid tiers: the grid staff member it falls to);
        ``accepted``: a reopened matter goes back to its lead, who has it already."""
        assignee = self.assignee if accepted else None
        lead = route.lead
        if route.tier.is_grid_tier and not accepted:
            lead = assignee = pick_assignee(ctx.registry, route.tier, self.grid_id, self.micro_grid_id, self.matter_id)
        assert lead is not None  # validated: department rules name a lead
        now = ctx.now
        self.round += 1
        self.tier, self.lead, self.assignee, self.rule_id = route.tier, lead, assignee, route.rule_id
        self.priority = route.priority
        self.owners = [Owner(owner_id=lead, role="lead", state="accepted" if accepted else "dispatched")]
        if route.tier is Tier.DEPARTMENT:
            self.owners += [Owner(owner_id=s, role="supporting") for s in route.supporting if s != lead]
            self.departments += [o.owner_id for o in self.owners if o.owner_id not in self.departments]
        self.dispatched_at, self.accept_by, self.resolve_by = now, now + route.accept_within, now + route.resolve_within
        self.accept_within_s = route.accept_within.total_seconds()
        self.resolve_within_s = route.resolve_within.total_seconds()
        self.accepted_at = now if accepted else None
        self.resolved_at = self.closed_at = None
        if route.tier is Tier.SUPERVISION:
            self.state = MatterState.RETURNED
        else:
            self.state = MatterState.ACCEPTED if accepted else MatterState.DISPATCHED
        recipients = [o.owner_id for o in self.owners] if route.tier is Tier.DEPARTMENT else [lead]
        keys = tuple(topology.dispatch_routing_key(self.town_id, route.tier, r, route.priority) for r in recipients)
        self._record(
            MatterDispatched,
            ctx,
            correlation_id,
            keys=keys,
            severity=self.severity,
            tier=route.tier,
            lead=lead,
            supporting=[o.owner_id for o in self.owners if o.role == "supporting"],
            assignee=assignee,
            priority=route.priority,
            rule_id=route.rule_id,
            reason=reason,
            report_id=self.report_id,
            accept_by=self.accept_by,
            resolve_by=self.resolve_by,
        )
