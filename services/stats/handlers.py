"""What stats does with events: log them, count them, keep the state dispatch sent with them. It decides nothing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.stats.effects import counter_update, visit_counter_update
from services.stats.store import Effect
from shared.contracts import SupervisionVisitRecorded

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import tzinfo

    from services.stats.deps import StatsDeps
    from shared.contracts import AnyStatsEvent
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.stats.handlers")


def refuse_unknown_places(event: AnyStatsEvent, registry: Registry) -> AnyStatsEvent:
    """An event about a grid the registry does not place in its town is refused for good
    (PermanentError: dead-lettered with the reason), as dispatch refuses it: stats must not count
    a matter dispatch never took."""
    registry.grid_of_town(event.town_id, event.grid_id)
    return event


def effect_of(event: AnyStatsEvent, registry: Registry, zone: tzinfo) -> Effect:
    """The event with its counter effects (a visit's own, or a matter event's)."""
    if isinstance(event, SupervisionVisitRecorded):
        return Effect(event, visit_counter_update(event, zone))
    return Effect(event, counter_update(event, registry, zone))


async def when_events_arrive_update_read_models(deps: StatsDeps, events: Sequence[AnyStatsEvent]) -> set[str]:
    """Apply a batch of events exactly once in effect; returns the message ids applied now
    (the others had been applied before: a redelivery or a duplicate)."""
    effects = [effect_of(event, deps.registry, deps.zone) for event in events]
    applied = await deps.store.apply_batch(effects)
    observer = deps.observer
    if observer is not None:
        observer.batch_written(len(events))
        for event in events:
            if str(event.message_id) in applied:
                observer.event_applied(event.event_type)
            else:
                observer.event_duplicate()
    duplicates = len(events) - len(applied)
    if duplicates:
        log.debug("events seen before", extra={"duplicates": duplicates, "batch": len(events)})
    return applied
