"""What stats does with an event: log it, count it, fold it into its matter. It decides nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from services.stats.effects import counter_update

if TYPE_CHECKING:
    from datetime import tzinfo

    from services.stats.effects import CounterUpdate
    from shared.contracts import AnyEvent
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.stats.handlers")


class EventStore(Protocol):
    """The three idempotent writes of ``services.stats.store.StatsStore`` (a fake in unit tests)."""

    async def log_event(self, event: AnyEvent) -> bool: ...

    async def apply_counters(self, update: CounterUpdate, message_id: str) -> bool: ...

    async def apply_to_matter(self, event: AnyEvent) -> bool: ...


class ApplyObserver(Protocol):
    def event_applied(self, event_type: str) -> None: ...

    def event_duplicate(self) -> None: ...


@dataclass(frozen=True)
class Applied:
    """What one delivery changed (all False: a complete duplicate)."""

    logged: bool
    counted: bool
    folded: bool

    @property
    def changed(self) -> bool:
        return self.logged or self.counted or self.folded


async def when_event_arrives_update_read_models(
    event: AnyEvent,
    *,
    store: EventStore,
    registry: Registry,
    zone: tzinfo,
    observer: ApplyObserver | None = None,
) -> Applied:
    """Apply an event exactly once in effect, whatever was done by an earlier (crashed) delivery.

    Each step is repeat-safe on its own, so every step runs on every delivery: a duplicate of a
    logged event may still have effects missing when the earlier delivery died half-way.
    """
    message_id = str(event.message_id)
    logged = await store.log_event(event)
    counted = await store.apply_counters(counter_update(event, registry, zone), message_id)
    folded = await store.apply_to_matter(event)
    applied = Applied(logged, counted, folded)
    if observer is not None:
        if applied.changed:
            observer.event_applied(event.event_type)
        else:
            observer.event_duplicate()
    if not logged:
        log.debug(
            "event seen before",
            extra={"matter_id": str(event.matter_id), "message_id": message_id, "completed": counted or folded},
        )
    return applied
