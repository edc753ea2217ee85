"""Queue -> handler, nothing else: every event on ``gw.events`` reaches stats via ``stats.events``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter

from shared.broker import subscriber_channel
from shared.contracts import EVENT_ADAPTER, AnyEvent
from shared.topology import EVENTS, STATS_EVENTS

EventHandler = Callable[[AnyEvent], Awaitable[object]]


def build_router(handle: EventHandler, *, prefetch: int) -> RabbitRouter:
    """The stats subscriber: a malformed event fails validation and is dead-lettered at once."""
    router = RabbitRouter()

    @router.subscriber(
        STATS_EVENTS.rabbit_queue(),
        EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(prefetch),
        title="stats.events",
        description="Every event on gw.events, into the read models",
    )
    async def on_event(body: dict[str, Any]) -> None:
        await handle(EVENT_ADAPTER.validate_python(body))

    return router
