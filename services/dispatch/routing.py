"""Pure steps that (re)dispatch a case: a new round with owners, deadlines and work items."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from uuid import UUID

from services.dispatch.case import Case, Owner
from shared import topology
from shared.contracts import Event, MatterDispatched, MatterEscalated
from shared.domain import MatterState, Priority, Tier
from shared.registry import StaffRole

if TYPE_CHECKING:
    from services.dispatch.rules import Route, RuleBook
    from shared.contracts import MatterReported
    from shared.registry import Registry

DispatchReason = Literal["reported", "returned", "whistled", "rerouted", "reopened"]


@dataclass(frozen=True)
class Context:
    """What a decision may look at besides the case: rules, registry, the time."""

    rules: RuleBook
    registry: Registry
    now: datetime
    park_timeout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Outbound:
    """One event for ``gw.events`` and the ``gw.dispatch`` keys its body also goes to."""

    event: Event
    dispatch_keys: tuple[str, ...] = ()


@dataclass
class Transition:
    """A decision: the new case (not yet stored) and what to publish once it is."""

    outcome: Literal["applied", "rejected", "parked", "duplicate", "noop"]
    case: Case
    outbound: list[Outbound] = field(default_factory=list)
    reason: str = ""
    command_type: str = ""

    @property
    def changes(self) -> bool:
        return self.outcome in ("applied", "rejected", "parked")


def event_base(case: Case, correlation_id: str = "") -> dict[str, object]:
    """Fields every event about ``case`` carries; ``sequence`` is the version being written."""
    return {
        "matter_id": UUID(case.matter_id),
        "town_id": case.town_id,
        "grid_id": case.grid_id,
        "category": case.category,
        "sequence": case.version + 1,
        "correlation_id": correlation_id or case.correlation_id,
    }


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


def start_round(
    case: Case,
    ctx: Context,
    *,
    tier: Tier,
    lead: str,
    supporting: tuple[str, ...] | list[str],
    priority: Priority | str,
    rule_id: str,
    accept_within: timedelta,
    resolve_within: timedelta,
    reason: DispatchReason,
    assignee: str | None = None,
    accepted: bool = False,
    correlation_id: str = "",
) -> Outbound:
    """Mutate ``case`` into a new dispatch round; returns the MatterDispatched to publish."""
    now = ctx.now
    case.round += 1
    case.tier = tier
    case.lead = lead
    case.assignee = assignee
    case.rule_id = rule_id
    case.priority = Priority(priority)
    case.owners = [Owner(owner_id=lead, role="lead", state="accepted" if accepted else "dispatched")]
    if not accepted:
        case.owners += [Owner(owner_id=s, role="supporting") for s in supporting if s != lead]
    case.dispatched_at = now
    case.accept_by = now + accept_within
    case.resolve_by = now + resolve_within
    case.accept_within_s = accept_within.total_seconds()
    case.resolve_within_s = resolve_within.total_seconds()
    if tier is Tier.SUPERVISION:
        case.state = MatterState.RETURNED
    else:
        case.state = MatterState.ACCEPTED if accepted else MatterState.DISPATCHED
    if accepted:
        case.accepted_at = now
    event = MatterDispatched(
        **event_base(case, correlation_id),
        occurred_at=now,
        round=case.round,
        severity=case.severity,
        tier=tier,
        lead=lead,
        supporting=[o.owner_id for o in case.supporting],
        assignee=assignee,
        priority=case.priority,
        rule_id=rule_id,
        reason=reason,
        report_id=case.report_id,
        accept_by=case.accept_by,
        resolve_by=case.resolve_by,
    )
    owners = [lead] if tier is not Tier.DEPARTMENT else [o.owner_id for o in case.owners]
    keys = tuple(topology.dispatch_routing_key(case.town_id, tier, owner, case.priority) for owner in owners)
    return Outbound(event, keys)


def dispatch_route(
    case: Case, ctx: Context, route: Route, reason: DispatchReason, correlation_id: str = ""
) -> Outbound:
    """A new round from a rule's route (grid tiers get an assignee, departments a lead)."""
    supporting: tuple[str, ...] = ()
    assignee: str | None
    if route.tier.is_grid_tier:
        assignee = pick_assignee(ctx.registry, route.tier, case.grid_id, case.micro_grid_id, case.matter_id)
        lead = assignee
    else:
        assert route.lead is not None  # validated: department rules name a lead
        assignee, lead, supporting = None, route.lead, route.supporting
    return start_round(
        case,
        ctx,
        tier=route.tier,
        lead=lead,
        supporting=supporting,
        priority=route.priority,
        rule_id=route.rule_id,
        accept_within=route.accept_within,
        resolve_within=route.resolve_within,
        reason=reason,
        assignee=assignee,
        correlation_id=correlation_id,
    )


def to_supervision(case: Case, ctx: Context, reason: DispatchReason, correlation_id: str = "") -> Outbound:
    """No department left: the town's supervisors get the matter and must reroute it."""
    case.supervised = True
    return start_round(
        case,
        ctx,
        tier=Tier.SUPERVISION,
        lead=case.town_id,
        supporting=(),
        priority=case.priority,
        rule_id=case.rule_id,
        accept_within=timedelta(seconds=case.accept_within_s or 3600),
        resolve_within=timedelta(seconds=case.resolve_within_s or 86400),
        reason=reason,
        correlation_id=correlation_id,
    )


def on_reported(case: Case | None, reported: MatterReported, ctx: Context) -> Transition:
    """MatterReported: create the case and dispatch round 1 by the first matching rule."""
    base = case or Case(matter_id=str(reported.matter_id))
    if base.exists:
        return Transition("duplicate", base)
    grid = ctx.registry.grid(reported.grid_id)  # unknown grid: PermanentError -> dead-lettered
    if grid.town_id != reported.town_id:
        from shared.errors import PermanentError

        raise PermanentError(f"grid {reported.grid_id!r} is not in town {reported.town_id!r}")
    new = base.model_copy(deep=True)
    new.exists = True
    new.town_id, new.grid_id, new.micro_grid_id = reported.town_id, reported.grid_id, reported.micro_grid_id
    new.category, new.severity = reported.category, reported.severity
    new.reported_at = reported.reported_at
    new.report_id, new.origin = reported.report_id, reported.origin
    new.correlation_id = reported.correlation_id or str(reported.matter_id)
    route = ctx.rules.route(new.category, new.severity, new.town_id, new.grid_id, "reported")
    out = dispatch_route(new, ctx, route, "reported")
    return Transition("applied", new, [out], command_type="matter_reported")


def sweep(case: Case, ctx: Context) -> Transition:
    """Deadlines: record every escalation level now due, once per round and deadline kind."""
    new = case.model_copy(deep=True)
    outbound: list[Outbound] = []
    while (due := new.due_escalation()) is not None and due[2] <= ctx.now:
        kind, level, due_at = due
        new.escalations.append(f"{new.round}:{kind}:{level}")
        new.supervised = True
        owner = new.lead or new.town_id
        event = MatterEscalated(
            **event_base(new),
            occurred_at=ctx.now,
            round=new.round,
            level=level,
            deadline=kind,
            owner=owner,
            due_at=due_at,
        )
        keys = [topology.dispatch_routing_key(new.town_id, Tier.SUPERVISION, new.town_id, Priority(new.priority))]
        if new.tier is not None and new.tier != Tier.SUPERVISION:
            keys.append(topology.dispatch_routing_key(new.town_id, Tier(new.tier), owner, Priority(new.priority)))
        outbound.append(Outbound(event, tuple(keys)))
    if not outbound:
        return Transition("noop", case)
    return Transition("applied", new, outbound, command_type="sweep")
