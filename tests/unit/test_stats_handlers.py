"""The consumer's handler with a hand-written store: crash between writes, then redelivery."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from services.stats.handlers import when_event_arrives_update_read_models
from shared.contracts import AnyEvent, MatterReported
from shared.domain import Category, Channel, Severity
from shared.registry import changjia_document, parse_registry

if TYPE_CHECKING:
    from services.stats.effects import CounterUpdate

pytestmark = pytest.mark.unit

REGISTRY = parse_registry(changjia_document())


class CrashError(Exception):
    pass


class FakeStore:
    """Guarded writes like the real store; ``crash_at`` makes one step die before it writes."""

    def __init__(self) -> None:
        self.log: set[str] = set()
        self.applied: set[str] = set()
        self.figures: Counter[str] = Counter()
        self.timeline: dict[str, set[str]] = {}
        self.crash_at: str | None = None

    def _maybe_crash(self, step: str) -> None:
        if self.crash_at == step:
            self.crash_at = None
            raise CrashError(step)

    async def log_event(self, event: AnyEvent) -> bool:
        self._maybe_crash("log")
        new = str(event.message_id) not in self.log
        self.log.add(str(event.message_id))
        return new

    async def apply_counters(self, update: CounterUpdate, message_id: str) -> bool:
        self._maybe_crash("counters")
        if message_id in self.applied:
            return False
        self.applied.add(message_id)
        self.figures.update(update.increments())
        return True

    async def apply_to_matter(self, event: AnyEvent) -> bool:
        self._maybe_crash("matter")
        entries = self.timeline.setdefault(str(event.matter_id), set())
        new = str(event.message_id) not in entries
        entries.add(str(event.message_id))
        return new


class Observer:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.duplicates = 0

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


@pytest.mark.parametrize("crash_at", ["log", "counters", "matter"])
async def test_redelivery_after_a_crash_at_any_step_applies_every_effect_exactly_once(crash_at: str) -> None:
    store, observer, event = FakeStore(), Observer(), _reported()
    store.crash_at = crash_at
    kwargs = {"store": store, "registry": REGISTRY, "zone": ZoneInfo("Asia/Shanghai"), "observer": observer}
    with pytest.raises(CrashError):
        await when_event_arrives_update_read_models(event, **kwargs)  # type: ignore[arg-type]
    for _ in range(3):  # the redelivery, then two duplicates
        await when_event_arrives_update_read_models(event, **kwargs)  # type: ignore[arg-type]
    assert store.figures["totals.reported"] == 1
    assert store.timeline[str(event.matter_id)] == {str(event.message_id)}
    assert observer.applied == ["matter_reported"]
    assert observer.duplicates == 2


async def test_duplicate_of_a_completed_event_changes_nothing() -> None:
    store, event = FakeStore(), _reported()
    zone = ZoneInfo("UTC")
    first = await when_event_arrives_update_read_models(event, store=store, registry=REGISTRY, zone=zone)
    again = await when_event_arrives_update_read_models(event, store=store, registry=REGISTRY, zone=zone)
    assert first.changed and (first.logged, first.counted, first.folded) == (True, True, True)
    assert not again.changed
