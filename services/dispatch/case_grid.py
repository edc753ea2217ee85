"""The grid's own help on a case: volunteer squads (a micro-grid member asks one for a minor
matter) and supervision follow-ups (an instructor's visit). Rules of the aggregate like the
lifecycle's in ``case.py``; a visit as a whole is checked in ``handlers.on_supervision_visit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.dispatch.case_checks import CommandChecks
from services.dispatch.case_state import IllegalCommandError
from shared import topology
from shared.contracts import MatterFollowedUp, SquadAssigned
from shared.domain import MatterState, Priority, Severity, Tier
from shared.errors import PermanentError
from shared.registry import StaffRole

if TYPE_CHECKING:
    from services.dispatch.case_state import Context, FollowUp
    from shared.contracts import AssignSquad

FINISHED = (MatterState.RESOLVED, MatterState.CLOSED)


class GridHelp(CommandChecks):
    def assign_squad(self, cmd: AssignSquad, ctx: Context) -> None:
        """A micro-grid member of the matter's grid gives a minor, micro-grid-tier matter to one of
        the grid's volunteer squads (the matter stays the member's: the squad helps)."""
        self._check_addressed(cmd, ctx)
        if self.state in FINISHED:
            raise IllegalCommandError(f"matter is already {self.state}: no squad needed")
        if self.severity != Severity.MINOR or self.tier != Tier.MICRO_GRID:
            raise IllegalCommandError(
                f"only a minor matter on the micro-grid tier gets a squad; this one is {self.severity} on {self.tier}"
            )
        members = {s.staff_id for s in ctx.registry.staff_of_grid(self.grid_id, StaffRole.MICRO_GRID_MEMBER)}
        if cmd.actor_id not in members:
            raise IllegalCommandError(f"{cmd.actor_id} is not a micro-grid member of {self.grid_id}")
        if not ctx.registry.has_squad(cmd.squad_id):
            raise IllegalCommandError(f"unknown squad {cmd.squad_id!r}")
        squad = ctx.registry.squad(cmd.squad_id)
        if squad.grid_id != self.grid_id:
            raise IllegalCommandError(f"squad {cmd.squad_id} belongs to {squad.grid_id}, not to {self.grid_id}")
        if cmd.squad_id in self.squads:
            raise IllegalCommandError(f"squad {cmd.squad_id} is already assigned")
        self.squads.append(cmd.squad_id)
        # The member who asked hears back on the grid's work queue that the squad is on it.
        assert self.lead is not None
        keys = (topology.dispatch_routing_key(self.town_id, Tier.MICRO_GRID, self.lead, Priority(self.priority)),)
        self._record(
            SquadAssigned,
            ctx,
            cmd.correlation_id,
            keys=keys,
            by=cmd.actor_id,
            squad_id=squad.squad_id,
            squad_kind=squad.kind,
            volunteers=squad.size,
        )

    # ------------------------------------------------------------------ supervision visits
    def follow_up(self, visit: FollowUp, ctx: Context) -> None:
        """A grid instructor's visit followed the matter up: it counts as supervised, and once
        (when it is or becomes closed) as a problem supervised to resolution."""
        if not self.exists or self.grid_id != visit.grid_id or self.town_id != visit.town_id:
            raise PermanentError(f"matter {self.matter_id} is not a matter of grid {visit.grid_id}")
        first = not self.followed_up
        self.followed_up = self.supervised = True
        self._record(
            MatterFollowedUp,
            ctx,
            visit.correlation_id,
            by=visit.instructor_id,
            visit_id=visit.visit_id,
            visited_at=visit.visited_at,
            first=first,
        )
