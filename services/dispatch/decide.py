"""``decide(case, message, ctx)``: what dispatch does with each message, in one place (pure).

A message → method table (cosmicpython's ``COMMAND_HANDLERS``) sends each message to the
``Case`` method that enforces its rules; the policy around it is the same for all of them:

- a message id seen before is a ``duplicate`` (nothing changes);
- a supervision visit reaches each of its matters as a ``FollowUp`` (checked before: it cannot
  park or be rejected here);
- ``NotReadyError`` parks the command on the case (retried after every later transition,
  rejected after ``park_timeout``); ``IllegalCommandError`` rejects it with its reason;
- after every transition that did not just park, the parked commands are retried, in the same
  transition, until none can proceed (one success may unblock another).

Parking what may still become legal and rejecting only what is illegal in any order makes the
final state independent of the order and the duplication of deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from uuid import UUID

from services.dispatch.case import Case
from services.dispatch.case_state import FollowUp, IllegalCommandError, NotReadyError
from shared.contracts import (
    COMMAND_ADAPTER,
    AcceptMatter,
    AssignSquad,
    MatterReported,
    RecordFeedback,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.dispatch.case_state import Context, Outbound
    from shared.contracts import AnyCommand

Outcome = Literal["applied", "rejected", "parked", "duplicate", "noop"]


@dataclass(frozen=True)
class DeadlinesDue:
    """The sweeper's message: escalate what is overdue, give up on parked commands that waited too long."""

    matter_id: UUID
    message_type: ClassVar[str] = "deadlines_due"


Message = MatterReported | AcceptMatter | ReturnMatter | ResolveMatter | WhistleMatter | RecordFeedback
DispatchMessage = Message | RerouteMatter | AssignSquad | DeadlinesDue | FollowUp

COMMAND_HANDLERS: dict[type[Any], Callable[[Case, Any, Context], None]] = {
    AcceptMatter: Case.accept,
    ReturnMatter: Case.return_,
    ResolveMatter: Case.resolve,
    WhistleMatter: Case.whistle,
    RecordFeedback: Case.record_feedback,
    RerouteMatter: Case.reroute,
    AssignSquad: Case.assign_squad,
}


@dataclass(frozen=True)
class Step:
    """One message's outcome inside a transition (the message itself, or a parked command retried)."""

    message_type: str
    outcome: Outcome
    reason: str = ""


@dataclass
class Transition:
    """A decision: the case after it (not yet stored), its events, and each message's outcome."""

    outcome: Outcome
    case: Case
    outbound: list[Outbound] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    reason: str = ""

    @property
    def changes(self) -> bool:
        return self.outcome in ("applied", "rejected", "parked")


def decide(case: Case | None, message: DispatchMessage, ctx: Context) -> Transition:
    """The outcome of ``message`` for ``case`` (None: no case stored yet)."""
    current = case or Case(matter_id=str(message.matter_id))
    match message:
        case MatterReported():
            if current.exists:
                return Transition("duplicate", current)
            new = current.model_copy(deep=True)
            new.report(message, ctx)
            step = Step(message.event_type, "applied")
        case DeadlinesDue():
            new = current.model_copy(deep=True)
            step = _on_deadlines(new, ctx)
            if step.outcome == "noop":
                return Transition("noop", current)
        case FollowUp():
            if current.has_seen(str(message.message_id)):
                return Transition("duplicate", current, steps=[Step(message.message_type, "duplicate")])
            new = current.model_copy(deep=True)
            new.follow_up(message, ctx)
            new.mark_applied(str(message.message_id))
            step = Step(message.message_type, "applied")
        case _:
            if current.has_seen(str(message.message_id)):
                return Transition("duplicate", current, steps=[Step(message.command_type, "duplicate")])
            new, step = _on_command(current, message, ctx)
    new.end_step()
    steps = [step]
    if step.outcome != "parked":
        new, retried = _retry_parked(new, ctx)
        steps += retried
    new.next_deadline = new.next_deadline_after(ctx.park_timeout)
    return Transition(step.outcome, new, new.collect_events(), steps, step.reason)


def _on_command(case: Case, command: AnyCommand, ctx: Context) -> tuple[Case, Step]:
    """The case after ``command`` was applied, parked or rejected (``case`` itself is not changed)."""
    attempt = case.model_copy(deep=True)
    try:
        COMMAND_HANDLERS[type(command)](attempt, command, ctx)
    except NotReadyError as waiting:
        parked = case.model_copy(deep=True)
        parked.park(command, str(waiting), ctx)
        return parked, Step(command.command_type, "parked", str(waiting))
    except IllegalCommandError as illegal:
        rejected = case.model_copy(deep=True)
        rejected.reject(command, str(illegal), ctx)
        return rejected, Step(command.command_type, "rejected", str(illegal))
    attempt.mark_applied(str(command.message_id))
    return attempt, Step(command.command_type, "applied")


def _on_deadlines(case: Case, ctx: Context) -> Step:
    """Give up on parked commands past their timeout, then escalate what is overdue."""
    expired = case.overdue_parked(ctx)
    for parked in expired:
        case.reject(COMMAND_ADAPTER.validate_python(parked.body), f"gave up waiting: {parked.reason}", ctx)
    if case.escalate_due(ctx):
        return Step(DeadlinesDue.message_type, "applied")
    return Step(DeadlinesDue.message_type, "rejected" if expired else "noop")


def _retry_parked(case: Case, ctx: Context) -> tuple[Case, list[Step]]:
    """Retry parked commands until none can proceed; each one that does is a transition of its own."""
    steps: list[Step] = []
    while True:
        for parked in case.pending:
            without = case.model_copy(deep=True)
            without.unpark(parked.message_id)
            trial, step = _on_command(without, COMMAND_ADAPTER.validate_python(parked.body), ctx)
            if step.outcome != "parked":
                trial.end_step()
                case = trial
                steps.append(step)
                break
        else:
            return case, steps
