"""The case: dispatch's aggregate — every rule that changes a matter (DESIGN §6).

Each public method checks its rules, changes the case and records the events it causes (as
cosmicpython's ``Product.allocate`` does). It raises ``NotReadyError`` for what is not possible
*yet* and ``IllegalCommandError`` for what is never possible; ``decide`` turns those into parked
and rejected outcomes. Everything here is synchronous and pure: no store, no broker, no clock
but ``ctx.now``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from services.dispatch.case_grid import FINISHED, GridHelp
from services.dispatch.case_state import IllegalCommandError, NotReadyError, ParkedCommand
from services.dispatch.rules import MatterFacts, Route
from shared import topology
from shared.contracts import (
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterEscalated,
    MatterReopened,
    MatterRerouted,
    MatterResolved,
    MatterReturned,
    MatterWhistled,
    RecordFeedback,
    RerouteMatter,
    ReturnMatter,
)
from shared.domain import MatterState, Priority, Tier

if TYPE_CHECKING:
    from services.dispatch.case_state import Context
    from shared.contracts import (
        AcceptMatter,
        AnyCommand,
        MatterReported,
        ResolveMatter,
        WhistleMatter,
    )


class Case(GridHelp):
    """The aggregate. Its lifecycle rules are here; the checks every command passes are in
    ``case_checks.py``, squads and supervision follow-ups in ``case_grid.py``."""

    # ------------------------------------------------------------------ a new matter
    def report(self, reported: MatterReported, ctx: Context) -> None:
        """MatterReported: take the report's facts and dispatch round 1 by the first matching rule."""
        ctx.registry.grid_of_town(reported.town_id, reported.grid_id)  # PermanentError -> dead-lettered
        self.exists = True
        self.town_id, self.grid_id, self.micro_grid_id = reported.town_id, reported.grid_id, reported.micro_grid_id
        self.category, self.severity = reported.category, reported.severity
        self.reported_at, self.report_id, self.origin = reported.reported_at, reported.report_id, reported.origin
        self.channel, self.service_item = reported.channel, reported.service_item
        self.correlation_id = reported.correlation_id or str(reported.matter_id)
        route = ctx.rules.route(self.routing_facts)
        self._start_round(route, ctx, "reported")

    # ------------------------------------------------------------------ commands
    def accept(self, cmd: AcceptMatter, ctx: Context) -> None:
        self._check_addressed(cmd, ctx)
        owner = self._owner_acting(cmd.actor_id, ctx)
        if owner.state != "dispatched":
            raise IllegalCommandError(f"{cmd.actor_id} already {owner.state} round {self.round}")
        owner.state = "accepted"
        if owner.role == "lead":
            self.state, self.accepted_at = MatterState.ACCEPTED, ctx.now
        assert self.dispatched_at is not None and self.accept_by is not None
        self._record(
            MatterAccepted,
            ctx,
            cmd.correlation_id,
            by=cmd.actor_id,
            role=owner.role,
            waited_seconds=max(0.0, (ctx.now - self.dispatched_at).total_seconds()),
            on_time=ctx.now <= self.accept_by,
        )

    def return_(self, cmd: ReturnMatter, ctx: Context) -> None:
        """A supporting department leaves the round; a lead's return reroutes (or goes to supervision)."""
        self._check_addressed(cmd, ctx)
        if self.state in FINISHED:
            raise IllegalCommandError(f"matter is already {self.state}: it cannot be returned")
        owner = self._owner_acting(cmd.actor_id, ctx)
        if self.on_grid_tier:
            raise IllegalCommandError("a grid-tier matter is whistled up, not returned")
        if owner.state not in ("dispatched", "accepted"):
            raise IllegalCommandError(f"{cmd.actor_id} already {owner.state} round {self.round}")
        facts: dict[str, Any] = {"by": cmd.actor_id, "reason": cmd.reason}
        if owner.role == "supporting":
            owner.state = "released"
            self._record(MatterReturned, ctx, cmd.correlation_id, **facts, outcome="released")
            return
        self.returned_by.append(cmd.actor_id)
        route = ctx.rules.reroute(self.routing_facts, self.stage, set(self.returned_by))
        self._record(MatterReturned, ctx, cmd.correlation_id, **facts, outcome="rerouted" if route else "supervision")
        if route is None:
            self.supervised = True
            route = self._supervision_route()
        self._start_round(route, ctx, "returned", cmd.correlation_id)

    def whistle(self, cmd: WhistleMatter, ctx: Context) -> None:
        """吹哨: grid staff send a matter beyond the grid up to the departments."""
        self._check_addressed(cmd, ctx)
        if self.state in FINISHED:
            raise IllegalCommandError(f"matter is already {self.state}: nothing to whistle")
        if not self.on_grid_tier:
            raise IllegalCommandError(
                f"only a grid-tier matter can be whistled up; this one is on the {self.tier} tier"
            )
        self._owner_acting(cmd.actor_id, ctx)
        facts: dict[str, Any] = {"by": cmd.actor_id, "reason": cmd.reason}
        self._record(MatterWhistled, ctx, cmd.correlation_id, **facts)
        self.stage = "whistled"
        route = ctx.rules.route(self.routing_facts, "whistled")
        self._start_round(route, ctx, "whistled", cmd.correlation_id)

    def resolve(self, cmd: ResolveMatter, ctx: Context) -> None:
        """An owner finishes its part; the lead only after every supporting department did."""
        self._check_addressed(cmd, ctx)
        if self.state in FINISHED:
            raise IllegalCommandError(f"matter is already {self.state}")
        owner = self._owner_acting(cmd.actor_id, ctx)
        if owner.state == "dispatched":
            raise NotReadyError(f"waiting for {owner.owner_id} to accept round {self.round}")
        if owner.state != "accepted":
            raise IllegalCommandError(f"{owner.owner_id} already {owner.state} round {self.round}")
        if owner.role == "lead" and self.open_supporting:
            raise NotReadyError(f"waiting for supporting departments: {', '.join(self.open_supporting)}")
        owner.state = "resolved"
        if owner.role == "lead":
            self.state, self.resolved_at = MatterState.RESOLVED, ctx.now
        assert self.reported_at is not None and self.resolve_by is not None
        self._record(
            MatterResolved,
            ctx,
            cmd.correlation_id,
            by=cmd.actor_id,
            role=owner.role,
            note=cmd.note,
            supervised=self.supervised,
            handling_seconds=max(0.0, (ctx.now - self.reported_at).total_seconds()),
            on_time=ctx.now <= self.resolve_by,
        )

    def record_feedback(self, cmd: RecordFeedback, ctx: Context) -> None:
        """Satisfied (3 or more): closed. Unsatisfied: reopened to the same lead in a new round."""
        self._check_addressed(cmd, ctx)
        if self.state == MatterState.CLOSED:
            raise IllegalCommandError("matter is already closed")
        if self.state == MatterState.RETURNED:
            raise IllegalCommandError("matter is with supervision: there is no resolution to rate")
        if self.state != MatterState.RESOLVED:
            raise NotReadyError(f"waiting for the resolution of round {self.round}")
        self.satisfaction = cmd.satisfaction
        facts: dict[str, Any] = {"by": cmd.actor_id, "satisfaction": cmd.satisfaction}
        if cmd.satisfaction >= 3:
            self.state, self.closed_at = MatterState.CLOSED, ctx.now
            self._record(
                MatterClosed,
                ctx,
                cmd.correlation_id,
                **facts,
                origin=self.origin,
                supervised=self.supervised,
                followed_up=self.followed_up,
            )
            return
        self._record(MatterReopened, ctx, cmd.correlation_id, **facts, lead=self.lead or "")
        self._start_round(self.current_route, ctx, "reopened", cmd.correlation_id, accepted=True)

    def reroute(self, cmd: RerouteMatter, ctx: Context) -> None:
        """A supervisor gives the matter to departments of their choosing."""
        self._check_addressed(cmd, ctx)
        if self.state in FINISHED:
            raise IllegalCommandError(f"matter is already {self.state}: it cannot be rerouted")
        allowed = {d.department_id for d in ctx.registry.departments_of_town(self.town_id)}
        for department in (cmd.lead, *cmd.supporting):
            if department not in allowed:
                raise IllegalCommandError(f"unknown department {department!r} for town {self.town_id}")
        facts: dict[str, Any] = {"by": cmd.actor_id, "reason": cmd.reason}
        self._record(MatterRerouted, ctx, cmd.correlation_id, **facts, lead=cmd.lead, supporting=list(cmd.supporting))
        self.supervised = True
        deadlines = ctx.rules.route_for_lead(self.routing_facts, self.stage, cmd.lead)
        route = replace(deadlines, tier=Tier.DEPARTMENT, lead=cmd.lead, supporting=tuple(cmd.supporting))
        self._start_round(route, ctx, "rerouted", cmd.correlation_id)

    # ------------------------------------------------------------------ parking and rejection
    def park(self, cmd: AnyCommand, reason: str, ctx: Context) -> None:
        self.pending.append(
            ParkedCommand(
                message_id=str(cmd.message_id),
                command_type=cmd.command_type,
                parked_at=ctx.now,
                reason=reason,
                body=cmd.model_dump(mode="json"),
            )
        )

    def reject(self, cmd: AnyCommand, reason: str, ctx: Context) -> None:
        self.unpark(str(cmd.message_id))
        self.applied.append(str(cmd.message_id))
        if not self.exists:  # a placeholder has no category to report a rejection under
            return
        self._record(
            MatterCommandRejected,
            ctx,
            cmd.correlation_id,
            command_id=cmd.message_id,
            command_type=cmd.command_type,
            actor_id=cmd.actor_id,
            reason=reason,
        )

    def mark_applied(self, message_id: str) -> None:
        self.applied.append(message_id)

    def unpark(self, message_id: str) -> None:
        self.pending = [p for p in self.pending if p.message_id != message_id]

    def overdue_parked(self, ctx: Context) -> list[ParkedCommand]:
        return [p for p in self.pending if p.parked_at + ctx.park_timeout <= ctx.now]

    # ------------------------------------------------------------------ deadlines
    def escalate_due(self, ctx: Context) -> bool:
        """Record every escalation level now due, once per round, deadline kind and level."""
        escalated = False
        while (due := self.due_escalation()) is not None and due[2] <= ctx.now:
            kind, level, due_at = due
            self.escalations.append(f"{self.round}:{kind}:{level}")
            self.supervised = True
            owner = self.lead or self.town_id
            priority = Priority(self.priority)
            keys = [topology.dispatch_routing_key(self.town_id, Tier.SUPERVISION, self.town_id, priority)]
            if self.tier is not None and self.tier != Tier.SUPERVISION:
                keys.append(topology.dispatch_routing_key(self.town_id, Tier(self.tier), owner, priority))
            facts: dict[str, Any] = {"level": level, "deadline": kind}
            self._record(MatterEscalated, ctx, "", keys=tuple(keys), **facts, owner=owner, due_at=due_at)
            escalated = True
        return escalated

    # ------------------------------------------------------------------ routes kept from the round
    @property
    def routing_facts(self) -> MatterFacts:
        """What the routing rules match on (besides the stage)."""
        return MatterFacts(
            category=self.category,
            severity=self.severity,
            town_id=self.town_id,
            grid_id=self.grid_id,
            service_item=self.service_item,
            channel=self.channel,
        )

    @property
    def current_route(self) -> Route:
        """The current round's route (a reopen or the supervision round keeps its deadlines)."""
        return Route(
            rule_id=self.rule_id,
            tier=Tier(self.tier or Tier.DEPARTMENT),
            lead=self.lead,
            supporting=(),
            priority=Priority(self.priority),
            accept_within=timedelta(seconds=self.accept_within_s),
            resolve_within=timedelta(seconds=self.resolve_within_s),
        )

    def _supervision_route(self) -> Route:
        """No department left: the town's supervisors get the matter and must reroute it."""
        route = self.current_route
        return replace(
            route,
            tier=Tier.SUPERVISION,
            lead=self.town_id,
            accept_within=route.accept_within or timedelta(hours=1),
            resolve_within=route.resolve_within or timedelta(days=1),
        )
