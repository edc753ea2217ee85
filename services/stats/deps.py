"""Stats' ports, built once in ``create_app``: what the event handler and its subscriber need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import tzinfo

    from services.stats.store import Effect
    from shared.registry import Registry


class EventStore(Protocol):
    """``services.stats.store.StatsStore``'s one write (a fake in unit tests)."""

    async def apply_batch(self, effects: Sequence[Effect]) -> set[str]: ...


class ApplyObserver(Protocol):
    def batch_written(self, size: int) -> None: ...

    def event_applied(self, event_type: str) -> None: ...

    def event_duplicate(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StatsDeps:
    store: EventStore
    registry: Registry
    zone: tzinfo
    """Counters are bucketed by this zone's calendar days (``GW_STATS_TIMEZONE``)."""
    observer: ApplyObserver | None = None
    prefetch: int = 256
    """Unacknowledged events one process holds: what a batch can draw on (``GW_STATS_PREFETCH``)."""
    batch_max: int = 128
    """Most events applied in one transaction (``GW_STATS_BATCH_MAX``)."""
