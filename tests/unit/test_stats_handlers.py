"""The consumer's handler and batcher with a hand-written store port (all-or-nothing like a transaction)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.stats.batcher import EventBatcher
from services.stats.handlers import when_events_arrive_update_read_models
from services.stats.store import Effect
from shared.contracts import AnyEvent, MatterReported
from shared.domain import Category, Channel, Severity
from tests.factories import changjia_registry

pytestmark = pytest.mark.unit

REGISTRY = changjia_registry()
ZONE = ZoneInfo("Asia/Shanghai")


class CrashError(Exception):
    pass


class FakeStore:
    """The ``EventStore`` port: a batch is applied whole or not at all (like one transaction)."""

    def __init__(self) -> None:
        self.figures: Counter[str] = Counter()
        self.timeline: dict[str, set[str]] = {}
        self.crash_next = False
        self.batches: list[int] = []

    async def apply_batch(self, effects: Sequence[Effect]) -> set[str]:
        await asyncio.sleep(0)
        if self.crash_next:  # dies before the commit: nothing of the batch is stored
            self.crash_next = False
            raise CrashError("store went away")
        self.batches.append(len(effects))
        seen = {m for entries in self.timeline.values() for m in entries}
        applied: set[str] = set()
        for effect in effects:
            message_id = str(effect.event.message_id)
            if message_id in seen:
                continue
            seen.add(message_id)
            applied.add(message_id)
            self.timeline.setdefault(str(effect.event.matter_id), set()).add(message_id)
            self.figures.update(effect.counters.increments())
        return applied


class Observer:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.batches: list[int] = []
        self.duplicates = 0

    def batch_written(self, size: int) -> None:
        self.batches.append(size)

    def event_applied(self, event_type: str) -> None:
        self.applied.append(event_type)

    def event_duplicate(self) -> None:
        self.duplicates += 1


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
    store, observer, event = FakeStore(), Observer(), _reported()
    store.crash_next = True
    with pytest.raises(CrashError):
        await when_events_arrive_update_read_models([event], store=store, registry=REGISTRY, zone=ZONE)
    for _ in range(3):  # the redelivery, then two duplicates
        await when_events_arrive_update_read_models(
            [event], store=store, registry=REGISTRY, zone=ZONE, observer=observer
        )
    assert store.figures["totals.reported"] == 1
    assert store.timeline[str(event.matter_id)] == {str(event.message_id)}
    assert observer.applied == ["matter_reported"]
    assert observer.duplicates == 2


async def test_a_duplicate_inside_one_batch_counts_once() -> None:
    store, event = FakeStore(), _reported()
    applied = await when_events_arrive_update_read_models([event, event], store=store, registry=REGISTRY, zone=ZONE)
    assert applied == {str(event.message_id)}
    assert store.figures["totals.reported"] == 1


def _batcher(store: FakeStore, max_batch: int = 100) -> EventBatcher[AnyEvent]:
    async def apply(events: Sequence[AnyEvent]) -> set[str]:
        return await when_events_arrive_update_read_models(events, store=store, registry=REGISTRY, zone=ZONE)

    return EventBatcher(apply, key=lambda e: str(e.message_id), max_batch=max_batch)


async def test_events_delivered_together_are_written_in_batches_of_at_most_max_batch() -> None:
    store = FakeStore()
    batcher = _batcher(store, max_batch=30)
    events = [_reported() for _ in range(100)]
    results = await asyncio.gather(*(batcher.apply(e) for e in events))
    assert results == [True] * 100
    assert sum(store.batches) == 100 and max(store.batches) <= 30 and len(store.batches) < 100
    assert store.figures["totals.reported"] == 100


async def test_a_failed_batch_is_retried_one_by_one_so_only_the_refused_event_fails() -> None:
    refused = _reported()
    store = FakeStore()

    async def apply(events: Sequence[AnyEvent]) -> set[str]:
        if any(e.message_id == refused.message_id for e in events):
            raise ValueError("the store refuses this document")
        return await when_events_arrive_update_read_models(events, store=store, registry=REGISTRY, zone=ZONE)

    batcher: EventBatcher[AnyEvent] = EventBatcher(apply, key=lambda e: str(e.message_id), max_batch=100)
    good = [_reported() for _ in range(5)]
    results = await asyncio.gather(*(batcher.apply(e) for e in [*good[:2], refused, *good[2:]]), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["bool", "bool", "ValueError", "bool", "bool", "bool"]
    assert store.figures["totals.reported"] == 5


async def test_a_duplicate_delivery_answers_false() -> None:
    store = FakeStore()
    batcher = _batcher(store)
    event = _reported()
    assert await batcher.apply(event) is True
    assert await batcher.apply(event) is False
