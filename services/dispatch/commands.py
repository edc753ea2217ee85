"""One function per command: legality checks and the transition it makes (pure, no I/O).

``NotReadyError`` means "not yet" (the command is parked), ``IllegalCommandError`` means "never"
(rejected with the reason).
"""

from __future__ import annotations

from datetime import timedelta

from services.dispatch.case import Case, Owner
from services.dispatch.routing import (
    Context,
    Outbound,
    dispatch_route,
    event_base,
    start_round,
    to_supervision,
)
from shared.contracts import (
    AcceptMatter,
    MatterAccepted,
    MatterClosed,
    MatterReopened,
    MatterRerouted,
    MatterResolved,
    MatterReturned,
    MatterWhistled,
    RecordFeedback,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)
from shared.domain import MatterState, Tier


class NotReadyError(Exception):
    """Not possible yet; may become possible after another transition."""


class IllegalCommandError(Exception):
    """Illegal in any order: answered with MatterCommandRejected."""


FINISHED = (MatterState.RESOLVED, MatterState.CLOSED)


# ---------------------------------------------------------------- actors
def check_supervisor(case: Case, actor_id: str, ctx: Context) -> None:
    if actor_id not in {s.staff_id for s in ctx.registry.town(case.town_id).supervisors}:
        raise IllegalCommandError(f"{actor_id} is not a supervisor of town {case.town_id}")


def check_feedback_actor(case: Case, actor_id: str, ctx: Context) -> None:
    grid_staff = {s.staff_id for s in ctx.registry.staff_of_grid(case.grid_id)}
    supervisors = {s.staff_id for s in ctx.registry.town(case.town_id).supervisors}
    if actor_id not in grid_staff | supervisors:
        raise IllegalCommandError(f"{actor_id} is neither grid staff of {case.grid_id} nor a supervisor")


def _owner_of_round(case: Case, actor_id: str, ctx: Context) -> Owner:
    """The actor's owner entry; on grid tiers the grid leader may act for the assignee."""
    if case.state == MatterState.RETURNED:
        raise IllegalCommandError("matter is with supervision: a supervisor reroutes it")
    owner = case.owner(actor_id)
    if owner is None and case.tier is not None and Tier(case.tier).is_grid_tier:
        leader = ctx.registry.grid(case.grid_id).leader.staff_id
        if actor_id == leader and case.lead is not None:
            owner = case.owner(case.lead)
    if owner is None:
        raise IllegalCommandError(f"{actor_id} is not an owner of round {case.round}")
    return owner


# ---------------------------------------------------------------- commands
def on_accept(case: Case, cmd: AcceptMatter, ctx: Context) -> list[Outbound]:
    owner = _owner_of_round(case, cmd.actor_id, ctx)
    if owner.state != "dispatched":
        raise IllegalCommandError(f"{cmd.actor_id} already {owner.state} round {case.round}")
    owner.state = "accepted"
    assert case.dispatched_at is not None and case.accept_by is not None
    if owner.role == "lead":
        case.state = MatterState.ACCEPTED
        case.accepted_at = ctx.now
    event = MatterAccepted(
        **event_base(case, cmd.correlation_id),
        occurred_at=ctx.now,
        round=case.round,
        by=cmd.actor_id,
        role=owner.role,
        waited_seconds=max(0.0, (ctx.now - case.dispatched_at).total_seconds()),
        on_time=ctx.now <= case.accept_by,
    )
    return [Outbound(event)]


def on_return(case: Case, cmd: ReturnMatter, ctx: Context) -> list[Outbound]:
    if case.state in FINISHED:
        raise IllegalCommandError(f"matter is already {case.state}: it cannot be returned")
    owner = _owner_of_round(case, cmd.actor_id, ctx)
    if case.tier is not None and Tier(case.tier).is_grid_tier:
        raise IllegalCommandError("a grid-tier matter is whistled up, not returned")
    if owner.state not in ("dispatched", "accepted"):
        raise IllegalCommandError(f"{cmd.actor_id} already {owner.state} round {case.round}")
    base = event_base(case, cmd.correlation_id)
    old_round = case.round
    if owner.role == "supporting":
        owner.state = "released"
        returned = MatterReturned(
            **base,
            occurred_at=ctx.now,
            round=old_round,
            by=cmd.actor_id,
            reason=cmd.reason,
            outcome="released",
        )
        return [Outbound(returned)]
    case.returned_by.append(cmd.actor_id)
    route = ctx.rules.reroute(
        case.category, case.severity, case.town_id, case.grid_id, case.stage, set(case.returned_by)
    )
    if route is not None:
        dispatched = dispatch_route(case, ctx, route, "returned", cmd.correlation_id)
        outcome = "rerouted"
    else:
        dispatched = to_supervision(case, ctx, "returned", cmd.correlation_id)
        outcome = "supervision"
    returned = MatterReturned(
        **base,
        occurred_at=ctx.now,
        round=old_round,
        by=cmd.actor_id,
        reason=cmd.reason,
        outcome=outcome,
    )
    return [Outbound(returned), dispatched]


def on_whistle(case: Case, cmd: WhistleMatter, ctx: Context) -> list[Outbound]:
    if case.state in FINISHED:
        raise IllegalCommandError(f"matter is already {case.state}: nothing to whistle")
    if case.tier is None or not Tier(case.tier).is_grid_tier:
        raise IllegalCommandError(f"only a grid-tier matter can be whistled up; this one is on the {case.tier} tier")
    _owner_of_round(case, cmd.actor_id, ctx)
    whistled = MatterWhistled(
        **event_base(case, cmd.correlation_id),
        occurred_at=ctx.now,
        round=case.round,
        by=cmd.actor_id,
        reason=cmd.reason,
    )
    case.stage = "whistled"
    route = ctx.rules.route(case.category, case.severity, case.town_id, case.grid_id, "whistled")
    return [Outbound(whistled), dispatch_route(case, ctx, route, "whistled", cmd.correlation_id)]


def on_resolve(case: Case, cmd: ResolveMatter, ctx: Context) -> list[Outbound]:
    if case.state in FINISHED:
        raise IllegalCommandError(f"matter is already {case.state}")
    owner = _owner_of_round(case, cmd.actor_id, ctx)
    if owner.state == "dispatched":
        raise NotReadyError(f"waiting for {owner.owner_id} to accept round {case.round}")
    if owner.state != "accepted":
        raise IllegalCommandError(f"{owner.owner_id} already {owner.state} round {case.round}")
    if owner.role == "lead" and case.open_supporting:
        raise NotReadyError(f"waiting for supporting departments: {', '.join(case.open_supporting)}")
    owner.state = "resolved"
    assert case.reported_at is not None and case.resolve_by is not None
    if owner.role == "lead":
        case.state = MatterState.RESOLVED
    event = MatterResolved(
        **event_base(case, cmd.correlation_id),
        occurred_at=ctx.now,
        round=case.round,
        by=cmd.actor_id,
        role=owner.role,
        note=cmd.note,
        supervised=case.supervised,
        handling_seconds=max(0.0, (ctx.now - case.reported_at).total_seconds()),
        on_time=ctx.now <= case.resolve_by,
    )
    return [Outbound(event)]


def on_feedback(case: Case, cmd: RecordFeedback, ctx: Context) -> list[Outbound]:
    if case.state == MatterState.CLOSED:
        raise IllegalCommandError("matter is already closed")
    if case.state == MatterState.RETURNED:
        raise IllegalCommandError("matter is with supervision: there is no resolution to rate")
    if case.state != MatterState.RESOLVED:
        raise NotReadyError(f"waiting for the resolution of round {case.round}")
    base = event_base(case, cmd.correlation_id)
    case.satisfaction = cmd.satisfaction
    if cmd.satisfaction >= 3:
        case.state = MatterState.CLOSED
        closed = MatterClosed(
            **base,
            occurred_at=ctx.now,
            round=case.round,
            by=cmd.actor_id,
            satisfaction=cmd.satisfaction,
            origin=case.origin,
            supervised=case.supervised,
        )
        return [Outbound(closed)]
    lead = case.lead or ""
    reopened = MatterReopened(
        **base,
        occurred_at=ctx.now,
        round=case.round,
        by=cmd.actor_id,
        satisfaction=cmd.satisfaction,
        lead=lead,
    )
    route_tier = Tier(case.tier) if case.tier else Tier.DEPARTMENT
    dispatched = start_round(
        case,
        ctx,
        tier=route_tier,
        lead=lead,
        supporting=(),
        priority=case.priority,
        rule_id=case.rule_id,
        accept_within=timedelta(seconds=case.accept_within_s),
        resolve_within=timedelta(seconds=case.resolve_within_s),
        reason="reopened",
        assignee=case.assignee,
        accepted=True,
        correlation_id=cmd.correlation_id,
    )
    return [Outbound(reopened), dispatched]


def on_reroute(case: Case, cmd: RerouteMatter, ctx: Context) -> list[Outbound]:
    if case.state in FINISHED:
        raise IllegalCommandError(f"matter is already {case.state}: it cannot be rerouted")
    allowed = {d.department_id for d in ctx.registry.departments_of_town(case.town_id)}
    for dept in (cmd.lead, *cmd.supporting):
        if dept not in allowed:
            raise IllegalCommandError(f"unknown department {dept!r} for town {case.town_id}")
    route = ctx.rules.route_for_lead(case.category, case.severity, case.town_id, case.grid_id, case.stage, cmd.lead)
    rerouted = MatterRerouted(
        **event_base(case, cmd.correlation_id),
        occurred_at=ctx.now,
        round=case.round,
        by=cmd.actor_id,
        reason=cmd.reason,
        lead=cmd.lead,
        supporting=list(cmd.supporting),
    )
    case.supervised = True
    dispatched = start_round(
        case,
        ctx,
        tier=Tier.DEPARTMENT,
        lead=cmd.lead,
        supporting=cmd.supporting,
        priority=route.priority,
        rule_id=route.rule_id,
        accept_within=route.accept_within,
        resolve_within=route.resolve_within,
        reason="rerouted",
        correlation_id=cmd.correlation_id,
    )
    return [Outbound(rerouted), dispatched]
