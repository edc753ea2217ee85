"""Queue -> handler, nothing else: every event on ``gw.events`` reaches stats via ``stats.events``.

Each delivery joins the next batch and is acknowledged (by returning) only once that batch
committed: the batch is how this queue is consumed, so it is built here with the subscriber.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter

from services.stats.batcher import EventBatcher
from services.stats.handlers import refuse_unknown_places, when_events_arrive_update_read_models
from shared.broker import subscriber_channel
from shared.contracts import AnyStatsEvent
from shared.topology import EVENTS, STATS_EVENTS

if TYPE_CHECKING:
    from services.stats.deps import StatsDeps


def build_router(deps: StatsDeps) -> RabbitRouter:
    """The stats subscriber: typed with the event union (its schema is in the AsyncAPI document);
    a malformed event, or one about a grid the registry does not place in its town, is
    dead-lettered at once."""
    batcher: EventBatcher[AnyStatsEvent] = EventBatcher(
        partial(when_events_arrive_update_read_models, deps), key=lambda e: str(e.message_id), max_batch=deps.batch_max
    )
    router = RabbitRouter()

    @router.subscriber(
        STATS_EVENTS.rabbit_queue(),
        EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
        title=STATS_EVENTS.name,
        description=f"Every event on {EVENTS.name} (key `#`), by `event_type`, into the read models",
    )
    async def on_event(event: AnyStatsEvent) -> None:
        await batcher.apply(refuse_unknown_places(event, deps.registry))

    return router
