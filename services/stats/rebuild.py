"""``stats rebuild``: replay the event log into fresh collections and swap them in.

Replay: the log is read in ``(matter_id, sequence, occurred_at)`` order; each matter's timeline
becomes its document with the same function the consumer uses (``matter_view``), and every counter
effect is accumulated per bucket from the same ``effects.counter_update``; the results are
bulk-inserted into ``counters__rebuild`` and ``matters__rebuild`` and renamed over the live
collections (``renameCollection`` with ``dropTarget``).

Run it with the stats service stopped (``gridwhistle stats rebuild`` refuses while it consumes):
events published meanwhile wait in the durable ``stats.events`` queue, and the consumer's guard
(an event is applied when its id is in its matter's timeline) holds for the rebuilt collections
too, since they are made from the same log the consumer writes in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.stats.handlers import effect_of
from services.stats.matter_view import Entry, matter_document, timeline_entry
from services.stats.store import REBUILD_SUFFIX, StatsStore, counters_insert_fields
from shared.contracts import STATS_EVENT_ADAPTER, SupervisionVisitRecorded
from shared.read_models import COUNTERS, MATTERS

if TYPE_CHECKING:
    from datetime import tzinfo

    from pymongo.asynchronous.database import AsyncDatabase

    from shared.contracts import AnyEvent, AnyStatsEvent
    from shared.mongo import MongoDoc
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.stats.rebuild")

BATCH = 500
Progress = Callable[[int, int], None]  # (events done, events total)


@dataclass(frozen=True)
class RebuildReport:
    events: int
    matters: int
    buckets: int


def _add_path(doc: dict[str, Any], path: str, n: int) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        doc = doc.setdefault(name, {})
    doc[leaf] = doc.get(leaf, 0) + n


class _Replay:
    """In-memory accumulation of one replay (one matter at a time, every bucket)."""

    def __init__(self, registry: Registry, zone: tzinfo) -> None:
        self.registry = registry
        self.zone = zone
        self.buckets: dict[str, dict[str, Any]] = {}
        self.matter_id: str | None = None
        self.entries: list[Entry] = []
        self.events: list[AnyEvent] = []

    def count(self, event: AnyStatsEvent) -> None:
        update = effect_of(event, self.registry, self.zone).counters
        inc = update.increments()
        if not inc:
            return
        bucket = self.buckets.setdefault(update.bucket_id, {"_id": update.bucket_id})
        for path, n in inc.items():
            _add_path(bucket, path, n)
        bucket.update(counters_insert_fields(update))

    def add(self, event: AnyEvent) -> MongoDoc | None:
        """Add an event (log order); returns the finished document of the previous matter."""
        finished = self.finish() if self.matter_id not in (None, str(event.matter_id)) else None
        self.matter_id = str(event.matter_id)
        self.entries.append(timeline_entry(event))
        self.events.append(event)
        return finished

    def finish(self) -> MongoDoc | None:
        if self.matter_id is None or not self.events:
            return None
        doc = matter_document(self.matter_id, self.entries, self.events)
        self.matter_id, self.entries, self.events = None, [], []
        return doc


async def _swap(db: AsyncDatabase[MongoDoc], name: str) -> None:
    await db[f"{name}{REBUILD_SUFFIX}"].rename(name, dropTarget=True)


async def rebuild(
    db: AsyncDatabase[MongoDoc], registry: Registry, zone: tzinfo, *, progress: Progress | None = None
) -> RebuildReport:
    """Replay ``event_log`` into fresh collections and swap them in (stats consumers stopped)."""
    fresh = StatsStore(db, suffix=REBUILD_SUFFIX)
    await fresh.drop()
    await fresh.ensure_indexes()
    total = await fresh.count_events()
    replay = _Replay(registry, zone)
    matters: list[MongoDoc] = []
    matter_count = done = 0
    cursor = fresh.event_log.find({}, {"payload": 1}).sort([("matter_id", 1), ("sequence", 1), ("occurred_at", 1)])
    async for doc in cursor:
        event = STATS_EVENT_ADAPTER.validate_python(doc["payload"])
        replay.count(event)
        finished = None if isinstance(event, SupervisionVisitRecorded) else replay.add(event)  # a visit: counters only
        if finished is not None:
            matters.append(finished)
        if len(matters) >= BATCH:
            await fresh.matters.insert_many(matters, ordered=False)
            matter_count += len(matters)
            matters = []
        done += 1
        if progress is not None and done % BATCH == 0:
            progress(done, total)
    last = replay.finish()
    if last is not None:
        matters.append(last)
    if matters:
        await fresh.matters.insert_many(matters, ordered=False)
        matter_count += len(matters)
    buckets = list(replay.buckets.values())
    for i in range(0, len(buckets), BATCH):
        await fresh.counters.insert_many(buckets[i : i + BATCH], ordered=False)
    if progress is not None:
        progress(done, total)
    for name in (COUNTERS, MATTERS):
        await _swap(db, name)
    log.info("read models rebuilt", extra={"events": done, "matters": matter_count, "buckets": len(buckets)})
    return RebuildReport(done, matter_count, len(buckets))
