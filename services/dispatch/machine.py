"""The matter state machine for commands (DESIGN §6): pure functions, no I/O.

``decide(case, command, ctx)`` answers every command with exactly one outcome:
``applied`` (a transition and its events), ``rejected`` (a ``MatterCommandRejected``),
``parked`` (not yet possible: kept on the case and retried after every later transition),
or ``duplicate`` (its message id was seen). Parking anything that may still become legal,
and rejecting only what is illegal in any order, makes the final state independent of the
order and duplication of deliveries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.dispatch import commands
from services.dispatch.case import Case, ParkedCommand
from services.dispatch.commands import IllegalCommandError, NotReadyError
from services.dispatch.routing import (
    Context,
    Outbound,
    Transition,
    event_base,
)
from shared.contracts import (
    COMMAND_ADAPTER,
    AcceptMatter,
    AnyCommand,
    MatterCommandRejected,
    RecordFeedback,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)

if TYPE_CHECKING:
    pass


def decide(case: Case, command: AnyCommand, ctx: Context) -> Transition:
    mid = str(command.message_id)
    if case.seen(mid):
        return Transition("duplicate", case, command_type=command.command_type)
    new = case.model_copy(deep=True)
    try:
        outbound = _apply(new, command, ctx)
    except NotReadyError as waiting:
        parked = case.model_copy(deep=True)
        parked.pending.append(
            ParkedCommand(
                message_id=mid,
                command_type=command.command_type,
                parked_at=ctx.now,
                reason=str(waiting),
                body=command.model_dump(mode="json"),
            )
        )
        return Transition("parked", parked, reason=str(waiting), command_type=command.command_type)
    except IllegalCommandError as illegal:
        return reject(case, command, str(illegal), ctx)
    new.applied.append(mid)
    return Transition("applied", new, outbound, command_type=command.command_type)


def retry_parked(case: Case, parked: ParkedCommand, ctx: Context) -> Transition:
    """Try a parked command again: a noop while it still waits, else its outcome."""
    without = case.model_copy(deep=True)
    without.pending = [p for p in without.pending if p.message_id != parked.message_id]
    step = decide(without, COMMAND_ADAPTER.validate_python(parked.body), ctx)
    if step.outcome == "parked":
        return Transition("noop", case)
    return step


def reject(case: Case, command: AnyCommand, reason: str, ctx: Context) -> Transition:
    new = case.model_copy(deep=True)
    mid = str(command.message_id)
    new.pending = [p for p in new.pending if p.message_id != mid]
    new.applied.append(mid)
    event = MatterCommandRejected(
        **event_base(new, command.correlation_id),
        occurred_at=ctx.now,
        command_id=command.message_id,
        command_type=command.command_type,
        actor_id=command.actor_id,
        reason=reason,
    )
    return Transition("rejected", new, [Outbound(event)], reason=reason, command_type=command.command_type)


def _apply(case: Case, command: AnyCommand, ctx: Context) -> list[Outbound]:
    # a placeholder (command before MatterReported) knows no category to reject under: wait
    if not case.exists:
        raise NotReadyError("matter not reported yet")
    # then what is illegal in any order, then readiness
    if isinstance(command, ReturnMatter) and not command.reason.strip():
        raise IllegalCommandError("a return needs a reason")
    if command.town_id != case.town_id or command.grid_id != case.grid_id:
        raise IllegalCommandError(
            f"command names {command.town_id}/{command.grid_id}, matter is in {case.town_id}/{case.grid_id}"
        )
    if isinstance(command, RerouteMatter):
        commands.check_supervisor(case, command.actor_id, ctx)
    if isinstance(command, RecordFeedback):
        commands.check_feedback_actor(case, command.actor_id, ctx)
    if command.round > case.round:
        raise NotReadyError(f"waiting for round {command.round}; matter is in round {case.round}")
    if command.round < case.round:
        raise IllegalCommandError(f"round {command.round} is over; matter is in round {case.round}")
    if isinstance(command, AcceptMatter):
        return commands.on_accept(case, command, ctx)
    if isinstance(command, ReturnMatter):
        return commands.on_return(case, command, ctx)
    if isinstance(command, ResolveMatter):
        return commands.on_resolve(case, command, ctx)
    if isinstance(command, WhistleMatter):
        return commands.on_whistle(case, command, ctx)
    if isinstance(command, RecordFeedback):
        return commands.on_feedback(case, command, ctx)
    return commands.on_reroute(case, command, ctx)


def expire_parked(case: Case, ctx: Context) -> Transition:
    """IllegalCommandError the parked commands that waited longer than ``park_timeout``."""
    new = case
    outbound: list[Outbound] = []
    for parked in case.pending:
        if parked.parked_at + ctx.park_timeout <= ctx.now:
            command = COMMAND_ADAPTER.validate_python(parked.body)
            if not new.exists:  # no category to report under: drop it from the case only
                new = new.model_copy(deep=True)
                new.pending = [p for p in new.pending if p.message_id != parked.message_id]
                new.applied.append(parked.message_id)
                continue
            step = reject(new, command, f"gave up waiting: {parked.reason}", ctx)
            new = step.case
            outbound += step.outbound
    if new is case:
        return Transition("noop", case)
    return Transition("rejected", new, outbound, command_type="park_timeout")
