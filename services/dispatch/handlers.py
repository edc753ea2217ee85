"""Dispatch's use cases around ``decide``: the unit of work, and the sweeper.

The unit of work (``handle``): load the case, ``decide`` (pure), store the new version together
with its events as the case's outbox (one compare-and-set write, see ``store``), publish them
(confirmed), clear the outbox. A lost race decides again on what the winner wrote. A transition
left in flight by a crash is published by the next message for that matter, or by the sweeper,
once it is older than the grace period; consumers dedupe by ``message_id``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from services.dispatch.case_state import FollowUp
from services.dispatch.decide import DeadlinesDue, Transition, decide
from shared.contracts import (
    COMMAND_TYPES,
    EVENT_ADAPTER,
    MatterDispatched,
    MatterEscalated,
    SupervisionVisitRecorded,
    visit_event_id,
)
from shared.errors import PermanentError, describe_error
from shared.registry import StaffRole, UnknownEntity

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from services.dispatch.decide import DispatchMessage
    from services.dispatch.deps import DispatchDeps
    from shared.contracts import AnyCommand, MatterReported, RecordSupervisionVisit
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.dispatch.handlers")

SWEEP_FINISH_TIMEOUT = 5.0
"""Seconds a sweep pass in progress gets to finish at shutdown."""


class ConcurrencyExhaustedError(RuntimeError):
    """Too many competing writers on one case: transient, the message is retried."""


async def on_matter_reported(deps: DispatchDeps, reported: MatterReported) -> Transition:
    """MatterReported: the case is created and dispatched (a duplicate changes nothing)."""
    transition = await handle(deps, reported)
    log.debug("matter reported", extra={**reported.log_fields(), "outcome": transition.outcome})
    return transition


async def on_command(deps: DispatchDeps, command: AnyCommand) -> Transition:
    """Any command: applied, rejected (MatterCommandRejected), parked, or a duplicate."""
    transition = await handle(deps, command)
    log.debug(
        "command handled",
        extra={**command.log_fields(), "command": command.command_type, "outcome": transition.outcome},
    )
    return transition


class MatterNotReportedYetError(RuntimeError):
    """A visit names a matter dispatch has no case for yet (its report may be in flight):
    transient, the visit is redelivered (dead-lettered with this reason after the delivery limit)."""


def check_visit(visit: RecordSupervisionVisit, registry: Registry) -> None:
    """The grid is the town's and the actor is an instructor who supervises it (PermanentError:
    a visit that can never be recorded is dead-lettered with the reason)."""
    try:
        registry.grid_of_town(visit.town_id, visit.grid_id)
        instructor = registry.staff(visit.actor_id)
    except UnknownEntity as error:
        raise PermanentError(str(error)) from None
    if instructor.role is not StaffRole.INSTRUCTOR or instructor.town_id != visit.town_id:
        raise PermanentError(f"actor_id: {visit.actor_id} is not a grid instructor of town {visit.town_id}")
    if visit.grid_id not in instructor.grids:
        raise PermanentError(f"actor_id: {visit.actor_id} does not supervise grid {visit.grid_id}")


def follow_up_id(visit: RecordSupervisionVisit, matter_id: UUID) -> UUID:
    return uuid5(visit.visit_id, f"follow_up:{matter_id}")


async def on_supervision_visit(deps: DispatchDeps, visit: RecordSupervisionVisit) -> SupervisionVisitRecorded:
    """A grid instructor's visit: checked as a whole (grid, instructor, every matter a case of that
    grid), then each matter followed up (its own transition, once per visit and matter), then
    ``SupervisionVisitRecorded`` published under an id derived from ``visit_id``. A redelivery
    after a crash anywhere repeats the steps: the follow-ups are duplicates, the event a duplicate."""
    check_visit(visit, deps.registry)
    for index, matter_id in enumerate(visit.matter_ids):
        stored = await deps.store.load(str(matter_id))
        if stored is None or not stored.case.exists:
            raise MatterNotReportedYetError(f"matter_ids[{index}]: matter {matter_id} is not known to dispatch yet")
        if (stored.case.town_id, stored.case.grid_id) != (visit.town_id, visit.grid_id):
            raise PermanentError(f"matter_ids[{index}]: matter {matter_id} is not a matter of grid {visit.grid_id}")
    for matter_id in visit.matter_ids:
        follow = FollowUp(
            matter_id=matter_id,
            message_id=follow_up_id(visit, matter_id),
            visit_id=visit.visit_id,
            town_id=visit.town_id,
            grid_id=visit.grid_id,
            instructor_id=visit.actor_id,
            visited_at=visit.visited_at,
            correlation_id=visit.correlation_id or str(visit.visit_id),
        )
        await handle(deps, follow)
    recorded = SupervisionVisitRecorded(
        message_id=visit_event_id(visit.visit_id),
        occurred_at=visit.visited_at,
        town_id=visit.town_id,
        grid_id=visit.grid_id,
        correlation_id=visit.correlation_id or str(visit.visit_id),
        visit_id=visit.visit_id,
        instructor_id=visit.actor_id,
        visited_at=visit.visited_at,
        matter_ids=list(visit.matter_ids),
    )
    await deps.publish(recorded, ())
    deps.metrics.commands.labels(visit.command_type, "applied").inc()
    log.debug("supervision visit recorded", extra={**visit.log_fields(), "matters": len(visit.matter_ids)})
    return recorded


async def handle(deps: DispatchDeps, message: DispatchMessage) -> Transition:
    """The unit of work: load, decide, win the next version (on a lost race decide again), publish.

    A case whose last transition's outbox is still unsent is completed first: after the grace
    period its writer counts as dead and its events are sent here."""
    matter_id = str(message.matter_id)
    for attempt in range(deps.max_retries):
        stored = await deps.store.load(matter_id)
        ctx = deps.context()
        if stored is not None and stored.in_flight:
            if stored.committed_at is None or stored.committed_at <= ctx.now - deps.outbox_grace:
                await send_outbox(deps, matter_id, stored.case.version, stored.outbox)  # its writer died
            else:  # its writer is sending them: give it a moment
                await asyncio.sleep(min(0.25, 0.002 * 2 ** min(attempt, 7)) * (0.5 + random.random()))
            continue
        previous = stored.case.version if stored is not None else 0
        transition = decide(stored.case if stored is not None else None, message, ctx)
        if transition.changes:
            outbox = [
                {"event": o.event.model_dump(mode="json"), "keys": list(o.dispatch_keys)} for o in transition.outbound
            ]
            if not await deps.store.commit(previous, transition.case, outbox, ctx.now):
                continue  # another writer won this version: decide again on what it wrote
            _count(deps, transition)
            await send_outbox(deps, matter_id, transition.case.version, outbox)
        elif transition.outcome == "duplicate":
            _count(deps, transition)
        return transition
    raise ConcurrencyExhaustedError(f"case {matter_id}: gave up after {deps.max_retries} concurrent updates")


async def send_outbox(deps: DispatchDeps, matter_id: str, version: int, outbox: list[dict[str, Any]]) -> None:
    """Publish a committed version's events (confirmed), then clear its outbox. Anyone may send
    anyone's outbox: a duplicate publish is harmless, consumers dedupe by ``message_id``."""
    if not outbox:
        return
    deps.metrics.outbox_pending.inc(len(outbox))
    try:
        for entry in outbox:
            await deps.publish(EVENT_ADAPTER.validate_python(entry["event"]), entry["keys"])
            deps.metrics.outbox_pending.dec()
    except BaseException:
        deps.metrics.outbox_pending.set(0)
        raise
    await deps.store.outbox_sent(matter_id, version)


def _count(deps: DispatchDeps, transition: Transition) -> None:
    for step in transition.steps:
        if step.message_type in COMMAND_TYPES:
            deps.metrics.commands.labels(step.message_type, step.outcome).inc()
    for out in transition.outbound:
        if isinstance(out.event, MatterDispatched):
            deps.metrics.routed.labels(out.event.tier.value, out.event.priority.value).inc()
        elif isinstance(out.event, MatterEscalated):
            deps.metrics.escalations.labels(str(out.event.level)).inc()


# ---------------------------------------------------------------- the sweeper
async def complete_stalled(deps: DispatchDeps, matter_id: str) -> bool:
    """Send the outbox of a transition whose writer died (after the grace period)."""
    stored = await deps.store.load(matter_id)
    if stored is None or not stored.in_flight:
        return False
    await send_outbox(deps, matter_id, stored.case.version, stored.outbox)
    return True


async def sweep_once(deps: DispatchDeps) -> int:
    """One pass: complete transitions whose writer died, then escalate what is overdue and give
    up on parked commands that waited too long. A failing case is logged and skipped, not the pass."""
    changed = 0
    now = deps.clock()
    for matter_id in await deps.store.stalled(now - deps.outbox_grace):
        changed += await _guarded(matter_id, complete_stalled(deps, matter_id))
    for matter_id in await deps.store.due(now):
        changed += await _guarded(matter_id, _deadlines(deps, matter_id))
    return changed


async def _deadlines(deps: DispatchDeps, matter_id: str) -> bool:
    return (await handle(deps, DeadlinesDue(UUID(matter_id)))).changes


async def _guarded(matter_id: str, work: Awaitable[bool]) -> bool:
    try:
        return bool(await work)
    except Exception as error:
        log.warning("sweep of a case failed", extra={"matter_id": matter_id, "error": describe_error(error)})
        return False


async def run_sweeper(deps: DispatchDeps, interval: float) -> None:
    """Background task: sweep every ``interval`` seconds until cancelled."""
    while True:
        sweep = asyncio.ensure_future(sweep_once(deps))
        try:
            await asyncio.shield(sweep)
        except asyncio.CancelledError:
            # Shutdown: let a pass in progress finish its case (bounded) rather than cut a
            # transition between its write and its publish (that one would wait for the grace period).
            await asyncio.wait([sweep], timeout=SWEEP_FINISH_TIMEOUT)
            raise
        except Exception as error:  # keep sweeping; the next pass retries
            log.warning("sweep failed", extra={"error": describe_error(error)})
        await asyncio.sleep(interval)
