"""The rules every command of a case passes before its own: addressed to this matter, town,
grid and round, by someone allowed to act (``Case`` and ``GridHelp`` build on them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.dispatch.case_state import CaseState, IllegalCommandError, NotReadyError
from shared.contracts import RecordFeedback, RerouteMatter, ReturnMatter
from shared.domain import MatterState

if TYPE_CHECKING:
    from services.dispatch.case_state import Context, Owner
    from shared.contracts import AnyCommand


class CommandChecks(CaseState):
    def _check_addressed(self, cmd: AnyCommand, ctx: Context) -> None:
        """What is illegal in any order first, then readiness (the round the command is for)."""
        if not self.exists:  # a placeholder knows no category to reject under: wait for the report
            raise NotReadyError("matter not reported yet")
        if isinstance(cmd, ReturnMatter) and not cmd.reason.strip():
            raise IllegalCommandError("a return needs a reason")
        if cmd.town_id != self.town_id or cmd.grid_id != self.grid_id:
            raise IllegalCommandError(
                f"command names {cmd.town_id}/{cmd.grid_id}, matter is in {self.town_id}/{self.grid_id}"
            )
        supervisors = {s.staff_id for s in ctx.registry.town(self.town_id).supervisors}
        if isinstance(cmd, RerouteMatter) and cmd.actor_id not in supervisors:
            raise IllegalCommandError(f"{cmd.actor_id} is not a supervisor of town {self.town_id}")
        if isinstance(cmd, RecordFeedback):
            grid_staff = {s.staff_id for s in ctx.registry.staff_of_grid(self.grid_id)}
            if cmd.actor_id not in grid_staff | supervisors:
                raise IllegalCommandError(f"{cmd.actor_id} is neither grid staff of {self.grid_id} nor a supervisor")
        if cmd.round > self.round:
            raise NotReadyError(f"waiting for round {cmd.round}; matter is in round {self.round}")
        if cmd.round < self.round:
            raise IllegalCommandError(f"round {cmd.round} is over; matter is in round {self.round}")

    def _owner_acting(self, actor_id: str, ctx: Context) -> Owner:
        """The actor's owner entry; on grid tiers the grid leader may act for the assignee."""
        if self.state == MatterState.RETURNED:
            raise IllegalCommandError("matter is with supervision: a supervisor reroutes it")
        owner = self.owner(actor_id)
        acts_for_assignee = self.on_grid_tier and actor_id == ctx.registry.grid(self.grid_id).leader.staff_id
        if owner is None and acts_for_assignee and self.lead is not None:
            owner = self.owner(self.lead)
        if owner is None:
            raise IllegalCommandError(f"{actor_id} is not an owner of round {self.round}")
        return owner
