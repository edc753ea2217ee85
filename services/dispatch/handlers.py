"""Dispatch use cases: load a case, decide (pure), win the next version, publish, apply, drain.

Crash safety without transactions: a transition and its outbox are one inserted journal entry
(see ``store``). Events are published before the case document is written, so a case that shows
a message as handled has had its events confirmed by the broker; an entry left in flight is
finished (published again, applied) by the redelivered message, the next writer, or the sweeper.
Consumers dedupe by ``message_id``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from services.dispatch import machine, routing
from services.dispatch.case import Case as CaseModel
from services.dispatch.routing import Context, Transition
from services.dispatch.store import Entry, entry_id
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
    from services.dispatch.store import CaseStore
    from shared.contracts import AnyCommand, MatterReported
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.dispatch.handlers")


SWEEP_FINISH_TIMEOUT = 15.0
"""Seconds a sweep pass in progress gets to finish at shutdown."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class ConcurrencyExhaustedError(RuntimeError):
    """Too many competing writers on one case: transient, the message is retried."""


@dataclass
class DispatchDeps:
    store: CaseStore
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


async def finish(deps: DispatchDeps, entry: Entry) -> None:
    """Publish an entry's events and apply it (idempotent: anyone may finish anyone's entry)."""
    await publish_outbox(deps, entry.outbox)
    await deps.store.apply(entry)


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
    trigger: str = "",
    drain: bool = True,
) -> Transition:
    """Load, decide, win the next version (optimistic: on a lost race decide again), publish,
    apply, then retry parked commands. ``trigger``: the message id being handled."""
    for attempt in range(deps.max_retries):
        case = await deps.store.load(matter_id)
        ctx = deps.context()
        transition = step(case, ctx)
        if not transition.changes:
            return transition
        new = transition.case
        new.version = (case.version if case else 0) + 1
        new.next_deadline = new.compute_next_deadline(deps.park_timeout)
        entry = Entry(new, outbox_entries(transition), uuid4().hex, trigger, ctx.now)
        holder = await deps.store.commit(entry)
        if holder is not None:  # the version is taken
            # Finish another writer's entry only once it is older than the grace period: its writer
            # died. Two writers applying one entry at once could, on FerretDB (no atomic update),
            # leave the case behind its journal.
            if not holder.done and holder.committed_at <= ctx.now - deps.outbox_grace:
                await finish(deps, holder)
            elif not holder.done:  # in flight: wait for its writer (long enough to outlast the grace period)
                await asyncio.sleep(min(0.25, 0.002 * 2 ** min(attempt, 7)) * (0.5 + random.random()))
            continue
        _count(deps, transition)
        await finish(deps, entry)
        if drain and transition.outcome in ("applied", "rejected"):
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

    transition = await run_step(deps, str(reported.matter_id), step, trigger=str(reported.message_id))
    log.debug("matter reported", extra={**reported.log_fields(), "outcome": transition.outcome})
    return transition


async def on_command(deps: DispatchDeps, command: AnyCommand) -> Transition:
    """Any command: applied, rejected (MatterCommandRejected), parked, or a duplicate."""

    def step(case: Case | None, ctx: Context) -> Transition:
        return machine.decide(case or CaseModel(matter_id=str(command.matter_id)), command, ctx)

    transition = await run_step(deps, str(command.matter_id), step, trigger=str(command.message_id))
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


async def sweep_once(deps: DispatchDeps) -> int:
    """One pass: finish entries whose writer died, tombstone applied ones, escalate what is
    overdue, expire parked commands. One failing case is logged and skipped, not the pass."""
    changed = 0
    now = deps.clock()
    applied: list[str] = []
    entries = await deps.store.open_entries()
    versions = await deps.store.versions({e.case.matter_id for e in entries}) if entries else {}
    for entry in entries:
        if versions.get(entry.case.matter_id, 0) >= entry.case.version:
            applied.append(entry_id(entry.case.matter_id, entry.case.version))
        elif entry.committed_at <= now - deps.outbox_grace and await _guarded(  # its writer died: finish it
            entry.case.matter_id, finish(deps, entry)
        ):
            changed += 1
    await deps.store.tombstone(applied)
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
            # Shutdown: let the pass finish (bounded) so no store cursor is left half-read —
            # FerretDB never ends an abandoned cursor's SELECT, which then holds its table.
            await asyncio.wait([sweep], timeout=SWEEP_FINISH_TIMEOUT)
            raise
        except Exception as error:  # keep sweeping; the next pass retries
            log.warning("sweep failed", extra={"error": describe_error(error)})
        await asyncio.sleep(interval)
