"""Dispatch use cases: load a case, decide (pure), win the next version, publish, drain.

The unit of work (``run_step``): a transition and its events are one optimistic write of the
case document (see ``store``); the events are then published (confirmed) and the outbox cleared.
A transition left in flight by a crash is published by the next message for that matter, or by
the sweeper, once it is older than the grace period. Consumers dedupe by ``message_id``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.dispatch import machine, routing
from services.dispatch.case import Case as CaseModel
from services.dispatch.routing import Context, Transition
from shared import topology
from shared.broker import publish_confirmed, publish_event
from shared.contracts import EVENT_ADAPTER, MatterDispatched, MatterEscalated
from shared.errors import describe_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from faststream.rabbit import RabbitBroker

    from services.dispatch.case import Case
    from services.dispatch.metrics import DispatchMetrics
    from services.dispatch.rules import RuleBook
    from services.dispatch.store import CaseRepository
    from shared.contracts import AnyCommand, MatterReported
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.dispatch.handlers")


SWEEP_FINISH_TIMEOUT = 5.0
"""Seconds a sweep pass in progress gets to finish at shutdown."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class ConcurrencyExhaustedError(RuntimeError):
    """Too many competing writers on one case: transient, the message is retried."""


@dataclass
class DispatchDeps:
    store: CaseRepository
    broker: RabbitBroker
    rules: RuleBook
    registry: Registry
    metrics: DispatchMetrics
    clock: Callable[[], datetime] = system_clock
    park_timeout: timedelta = timedelta(minutes=15)
    outbox_grace: timedelta = timedelta(seconds=10)
    max_retries: int = 100

    def context(self) -> Context:
        return Context(self.rules, self.registry, self.clock(), self.park_timeout)


def outbox_entries(transition: Transition) -> list[dict[str, Any]]:
    return [{"event": o.event.model_dump(mode="json"), "keys": list(o.dispatch_keys)} for o in transition.outbound]


async def publish_outbox(deps: DispatchDeps, outbox: list[dict[str, Any]]) -> None:
    """Publish a version's events (confirmed) on gw.events and their work items on gw.dispatch."""
    deps.metrics.outbox_pending.inc(len(outbox))
    try:
        for entry in outbox:
            event = EVENT_ADAPTER.validate_python(entry["event"])
            await publish_event(deps.broker, event)
            deps.metrics.outbox_pending.dec()
            for key in entry["keys"]:
                await publish_confirmed(
                    deps.broker,
                    entry["event"],
                    exchange=topology.DISPATCH,
                    routing_key=key,
                    message_id=str(event.message_id),
                    correlation_id=event.correlation_id or str(event.matter_id),
                    message_type=event.event_type,
                )
    except BaseException:
        deps.metrics.outbox_pending.set(0)
        raise


async def send_outbox(deps: DispatchDeps, matter_id: str, version: int, outbox: list[dict[str, Any]]) -> None:
    """Publish a committed version's events, then clear its outbox (anyone may send anyone's outbox)."""
    if outbox:
        await publish_outbox(deps, outbox)
        await deps.store.outbox_sent(matter_id, version)


def _count(deps: DispatchDeps, transition: Transition) -> None:
    if transition.command_type not in ("matter_reported", "sweep", "park_timeout", ""):
        deps.metrics.commands.labels(transition.command_type, transition.outcome).inc()
    for out in transition.outbound:
        if isinstance(out.event, MatterDispatched):
            deps.metrics.routed.labels(out.event.tier.value, out.event.priority.value).inc()
        elif isinstance(out.event, MatterEscalated):
            deps.metrics.escalations.labels(str(out.event.level)).inc()


async def run_step(
    deps: DispatchDeps,
    matter_id: str,
    step: Callable[[Case | None, Context], Transition],
    *,
    drain: bool = True,
) -> Transition:
    """The unit of work: load, decide, win the next version (optimistic: on a lost race decide
    again), publish, then retry parked commands.

    A case whose last transition's outbox is still unsent is first completed: after the grace
    period its writer counts as dead and its events are sent here. Parked commands are retried
    whenever the case holds any after a step that did not just park one — also after a duplicate,
    since a redelivered message may find its transition committed by a writer that died before
    retrying them."""
    for attempt in range(deps.max_retries):
        stored = await deps.store.load(matter_id)
        ctx = deps.context()
        if stored is not None and stored.in_flight:
            if stored.committed_at is None or stored.committed_at <= ctx.now - deps.outbox_grace:
                await send_outbox(deps, matter_id, stored.case.version, stored.outbox)  # its writer died
            else:  # its writer is sending them: give it a moment
                await asyncio.sleep(min(0.25, 0.002 * 2 ** min(attempt, 7)) * (0.5 + random.random()))
            continue
        case = stored.case if stored is not None else None
        transition = step(case, ctx)
        if transition.changes:
            previous = case.version if case else 0
            new = transition.case
            new.version = previous + 1
            new.next_deadline = new.compute_next_deadline(deps.park_timeout)
            outbox = outbox_entries(transition)
            if not await deps.store.commit(previous, new, outbox, ctx.now):
                continue  # another writer won this version: decide again on what it wrote
            _count(deps, transition)
            await send_outbox(deps, matter_id, new.version, outbox)
        if drain and transition.outcome != "parked" and transition.case.pending:
            await drain_parked(deps, matter_id)
        return transition
    raise ConcurrencyExhaustedError(f"case {matter_id}: gave up after {deps.max_retries} concurrent updates")


def _first_ready_parked(case: Case | None, ctx: Context) -> Transition:
    if case is None:
        raise RuntimeError("drain of a missing case")
    for parked in case.pending:
        step = machine.retry_parked(case, parked, ctx)
        if step.changes:
            return step
    return Transition("noop", case)


async def drain_parked(deps: DispatchDeps, matter_id: str) -> None:
    """Retry parked commands until none can proceed (each success may unblock another)."""
    while (await run_step(deps, matter_id, _first_ready_parked, drain=False)).changes:
        pass


# ---------------------------------------------------------------- message handlers
async def on_matter_reported(deps: DispatchDeps, reported: MatterReported) -> Transition:
    """MatterReported: create the case and dispatch it (a duplicate only republishes)."""

    def step(case: Case | None, ctx: Context) -> Transition:
        return routing.on_reported(case, reported, ctx)

    transition = await run_step(deps, str(reported.matter_id), step)
    log.debug("matter reported", extra={**reported.log_fields(), "outcome": transition.outcome})
    return transition


async def on_command(deps: DispatchDeps, command: AnyCommand) -> Transition:
    """Any command: applied, rejected (MatterCommandRejected), parked, or a duplicate."""

    def step(case: Case | None, ctx: Context) -> Transition:
        return machine.decide(case or CaseModel(matter_id=str(command.matter_id)), command, ctx)

    transition = await run_step(deps, str(command.matter_id), step)
    if transition.outcome == "duplicate":
        deps.metrics.commands.labels(command.command_type, "duplicate").inc()
    log.debug(
        "command handled",
        extra={
            **command.log_fields(),
            "command": command.command_type,
            "outcome": transition.outcome,
            "reason": transition.reason,
        },
    )
    return transition


def _sweep_step(case: Case | None, ctx: Context) -> Transition:
    if case is None:
        raise RuntimeError("sweep of a missing case")
    expired = machine.expire_parked(case, ctx)
    escalated = routing.sweep(expired.case, ctx)
    if not expired.changes and not escalated.changes:
        return Transition("noop", case)
    outcome = "applied" if escalated.changes else expired.outcome
    return Transition(outcome, escalated.case, expired.outbound + escalated.outbound, command_type="sweep")


def _resume_step(case: Case | None, ctx: Context) -> Transition:
    """Decides nothing: ``run_step`` around it completes a stalled transition (outbox, parked)."""
    if case is None:
        raise RuntimeError("resume of a missing case")
    return Transition("noop", case)


async def _resume(deps: DispatchDeps, matter_id: str) -> None:
    await run_step(deps, matter_id, _resume_step)


async def sweep_once(deps: DispatchDeps) -> int:
    """One pass: complete transitions whose writer died, escalate what is overdue, expire parked
    commands. One failing case is logged and skipped, not the pass."""
    changed = 0
    now = deps.clock()
    for matter_id in await deps.store.stalled(now - deps.outbox_grace):
        if await _guarded(matter_id, _resume(deps, matter_id)):
            changed += 1
    for matter_id in await deps.store.due(now):
        if await _guarded(matter_id, run_step(deps, matter_id, _sweep_step)):
            changed += 1
    return changed


async def _guarded(matter_id: str, work: Awaitable[object]) -> bool:
    try:
        result = await work
    except Exception as error:
        log.warning("sweep of a case failed", extra={"matter_id": matter_id, "error": describe_error(error)})
        return False
    return not isinstance(result, Transition) or result.changes


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
