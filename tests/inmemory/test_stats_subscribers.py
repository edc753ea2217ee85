"""Wiring only (TestRabbitBroker ignores acks, DLX and prefetch): gw.events -> stats handler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from faststream.rabbit.subscriber import RabbitSubscriber

from services.stats.subscribers import build_router
from shared.contracts import AnyEvent, MatterClosed
from shared.domain import Category
from shared.topology import EVENTS, STATS_EVENTS, event_routing_key
from tests import factories

pytestmark = pytest.mark.inmemory


def _closed() -> MatterClosed:
    return MatterClosed(
        matter_id=uuid.uuid4(),
        town_id="changjia",
        grid_id="changjia-g009",
        category=Category.DISPUTE,
        occurred_at=datetime(2026, 11, 21, tzinfo=UTC),
        sequence=5,
        round=1,
        by="changjia-g009-leader",
        satisfaction=5,
        matter=factories.snapshot("closed", satisfaction=5),
    )


async def test_event_published_on_gw_events_reaches_the_handler_as_its_contract_model() -> None:
    received: list[AnyEvent] = []

    async def handle(event: AnyEvent) -> None:
        received.append(event)

    broker = RabbitBroker()
    broker.include_router(build_router(handle, prefetch=8))
    event = _closed()
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            event.model_dump(mode="json"),
            exchange=EVENTS,
            routing_key=event_routing_key(event.town_id, event.grid_id, event.event_type),
        )
    assert received == [event]
    assert isinstance(received[0], MatterClosed)


async def test_stats_consumes_the_topology_queue_bound_to_every_event() -> None:
    async def handle(event: AnyEvent) -> None:
        return None

    router = build_router(handle, prefetch=8)
    (subscriber,) = router.subscribers
    assert isinstance(subscriber, RabbitSubscriber)
    assert subscriber.queue.name == STATS_EVENTS.name
    assert STATS_EVENTS.bindings[0].routing_key == "#"


async def test_malformed_event_never_reaches_the_handler() -> None:
    received: list[AnyEvent] = []

    async def handle(event: AnyEvent) -> None:
        received.append(event)

    broker = RabbitBroker()
    broker.include_router(build_router(handle, prefetch=8))
    async with TestRabbitBroker(broker) as test_broker:
        with pytest.raises(Exception, match="validation error"):
            await test_broker.publish(
                {"event_type": "matter_closed", "matter_id": str(uuid.uuid4())},
                exchange=EVENTS,
                routing_key="changjia.changjia-g001.matter_closed",
            )
    assert received == []
