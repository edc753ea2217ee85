"""The consumer's handler and batcher with a hand-written store port (all-or-nothing like a transaction)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import pytest

from services.stats.batcher import EventBatcher
from services.stats.handlers import when_events_arrive_update_read_models
from shared.contracts import AnyEvent, MatterReported
from shared.domain import Category, Channel, Severity
from tests.fakes.stats import CrashError, FakeEventStore, FakeObserver, stats_deps

pytestmark = pytest.mark.unit


def _reported() -> MatterReported:
    return MatterReported(
        matter_id=uuid.uuid4(),
        town_id="changjia",
        grid_id="changjia-g001",
        category=Category.OTHER,
        occurred_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
        report_id="r",
        channel=Channel.APP,
        severity=Severity.MINOR,
        summary="s",
    )


async def test_redelivery_after_a_crash_applies_every_effect_exactly_once() -> None:
    store, observer, event = FakeEventStore(), FakeObserver(), _reported()
    store.crash_next = True
    with pytest.raises(CrashError):
        await when_events_arrive_update_read_models(stats_deps(store), [event])
    for _ in range(3):  # the redelivery, then two duplicates
        await when_events_arrive_update_read_models(stats_deps(store, observer), [event])
    assert store.figures["totals.reported"] == 1
    assert store.timeline[str(event.matter_id)] == {str(event.message_id)}
    assert observer.applied == ["matter_reported"]
    assert observer.duplicates == 2


async def test_a_duplicate_inside_one_batch_counts_once() -> None:
    store, event = FakeEventStore(), _reported()
    applied = await when_events_arrive_update_read_models(stats_deps(store), [event, event])
    assert applied == {str(event.message_id)}
    assert store.figures["totals.reported"] == 1


def _batcher(store: FakeEventStore, max_batch: int = 100) -> EventBatcher[AnyEvent]:
    apply = partial(when_events_arrive_update_read_models, stats_deps(store))
    return EventBatcher(apply, key=lambda e: str(e.message_id), max_batch=max_batch)


async def test_events_delivered_together_are_written_in_batches_of_at_most_max_batch() -> None:
    store = FakeEventStore()
    batcher = _batcher(store, max_batch=30)
    events = [_reported() for _ in range(100)]
    results = await asyncio.gather(*(batcher.apply(e) for e in events))
    assert results == [True] * 100
    assert sum(store.batches) == 100 and max(store.batches) <= 30 and len(store.batches) < 100
    assert store.figures["totals.reported"] == 100


async def test_a_failed_batch_is_retried_one_by_one_so_only_the_refused_event_fails() -> None:
    refused = _reported()
    store = FakeEventStore()

    async def apply(events: Sequence[AnyEvent]) -> set[str]:
        if any(e.message_id == refused.message_id for e in events):
            raise ValueError("the store refuses this document")
        return await when_events_arrive_update_read_models(stats_deps(store), events)

    batcher: EventBatcher[AnyEvent] = EventBatcher(apply, key=lambda e: str(e.message_id), max_batch=100)
    good = [_reported() for _ in range(5)]
    results = await asyncio.gather(*(batcher.apply(e) for e in [*good[:2], refused, *good[2:]]), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["bool", "bool", "ValueError", "bool", "bool", "bool"]
    assert store.figures["totals.reported"] == 5


async def test_a_duplicate_delivery_answers_false() -> None:
    store = FakeEventStore()
    batcher = _batcher(store)
    event = _reported()
    assert await batcher.apply(event) is True
    assert await batcher.apply(event) is False
