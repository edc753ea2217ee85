"""Stats' subscriber: every event on ``gw.events`` -> the read-model handler, on both brokers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from faststream.rabbit.subscriber import RabbitSubscriber

from services.stats.subscribers import build_router
from shared.broker import publish_event
from shared.contracts import MatterClosed
from shared.domain import Category
from shared.topology import EVENTS, STATS_EVENTS
from tests import factories
from tests.fakes.stats import REGISTRY, FakeEventStore, stats_deps

if TYPE_CHECKING:
    from tests.wiring.conftest import Wired


def closed() -> MatterClosed:
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


async def test_event_published_on_gw_events_reaches_the_handler_as_its_contract_model(wired: Wired) -> None:
    store = FakeEventStore()
    broker = wired.broker()
    broker.include_router(build_router(stats_deps(store)))
    event = closed()
    async with wired.running(broker, REGISTRY) as running:
        await publish_event(running, event)
        await wired.until(lambda: str(event.matter_id) in store.timeline, "the event in the store")
    assert store.timeline == {str(event.matter_id): {str(event.message_id)}}
    assert store.figures["totals.closed"] == 1


async def test_malformed_event_never_reaches_the_handler(wired: Wired) -> None:
    store = FakeEventStore()
    broker = wired.broker()
    broker.include_router(build_router(stats_deps(store, prefetch=1)))
    marker = closed()
    async with wired.running(broker, REGISTRY) as running:
        with wired.refused():
            await running.publish(
                {"event_type": "matter_closed", "matter_id": str(uuid.uuid4())},
                exchange=EVENTS,
                routing_key="changjia.changjia-g001.matter_closed",
            )
        # the barrier: a good event after the bad one (prefetch 1: one at a time, in order)
        await publish_event(running, marker)
        await wired.until(lambda: str(marker.matter_id) in store.timeline, "the marker event")
    assert list(store.timeline) == [str(marker.matter_id)]
    assert store.batches == [1]


@pytest.mark.unit
def test_stats_consumes_the_topology_queue_bound_to_every_event() -> None:
    router = build_router(stats_deps(FakeEventStore()))
    (subscriber,) = router.subscribers
    assert isinstance(subscriber, RabbitSubscriber)
    assert subscriber.queue.name == STATS_EVENTS.name
    assert STATS_EVENTS.bindings[0].routing_key == "#"


async def test_an_event_about_a_grid_outside_the_registry_is_refused_and_not_counted(wired: Wired) -> None:
    """Dispatch dead-letters a report for an unknown grid; stats must not count it either."""
    store = FakeEventStore()
    broker = wired.broker()
    broker.include_router(build_router(stats_deps(store, prefetch=1)))
    stranger = factories.reported("dispute", "minor", reported_at=datetime(2026, 11, 21, tzinfo=UTC))
    stranger = stranger.model_copy(update={"grid_id": "nowhere-g001"})
    marker = closed()
    async with wired.running(broker, REGISTRY) as running:
        with wired.refused():
            await running.publish(
                stranger.model_dump(mode="json"),
                exchange=EVENTS,
                routing_key="changjia.nowhere-g001.matter_reported",
            )
        await publish_event(running, marker)  # the barrier: prefetch 1, in order
        await wired.until(lambda: str(marker.matter_id) in store.timeline, "the marker event")
    assert list(store.timeline) == [str(marker.matter_id)]
    assert store.figures["totals.reported"] == 0
