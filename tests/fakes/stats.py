"""Hand-written fakes at stats' ports: the event store (all-or-nothing per batch) and the observer."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.stats.deps import StatsDeps
from tests.factories import changjia_registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.stats.store import Effect

REGISTRY = changjia_registry()
ZONE = ZoneInfo("Asia/Shanghai")


class CrashError(Exception):
    pass


class FakeEventStore:
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
            subject = getattr(effect.event, "matter_id", None) or f"visit:{effect.event.grid_id}"
            self.timeline.setdefault(str(subject), set()).add(message_id)
            self.figures.update(effect.counters.increments())
        return applied


class FakeObserver:
    """The ``ApplyObserver`` port, remembering what it was told."""

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


def stats_deps(
    store: FakeEventStore, observer: FakeObserver | None = None, *, prefetch: int = 8, batch_max: int = 100
) -> StatsDeps:
    return StatsDeps(
        store=store, registry=REGISTRY, zone=ZONE, observer=observer, prefetch=prefetch, batch_max=batch_max
    )
