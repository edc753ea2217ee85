"""MongoDB writes of the stats service: a batch of events, applied exactly once in one transaction.

The guard is the matter's own timeline: an event has been applied exactly when its
``message_id`` is in its matter's timeline, and one multi-document transaction per batch writes,
for the events not seen yet, all of their effects at once:

1. ``event_log``: an upsert per event (``$setOnInsert``, keyed by ``message_id``);
2. ``counters``: one ``$inc`` per ``(town, day, shard)`` bucket, the batch's increments merged;
3. ``matters``: the timeline with the new entries, and the newest snapshot dispatch sent, per matter.

A supervision visit (``SupervisionVisitRecorded``) belongs to no matter: its guard is its own
``event_log`` entry (unique ``_id`` = message id), read in the same transaction, and its effect
is only counters.

Either all of it commits or none of it: a crash anywhere leaves the messages unacknowledged,
and their redelivery finds the timeline without them and applies them then. Two stats
replicas applying overlapping batches conflict on the matter documents; the store aborts one
transaction and it is retried (``with_transaction``), reading the winner's timeline. No
document holds an unbounded list of applied ids: a timeline is bounded by its matter's lifecycle.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pymongo import ASCENDING, IndexModel, UpdateOne

from services.stats.matter_view import matter_write, timeline_entry
from shared.contracts import SupervisionVisitRecorded
from shared.read_models import COUNTERS, EVENT_LOG, MATTERS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.database import AsyncDatabase

    from services.stats.effects import CounterUpdate
    from shared.contracts import AnyEvent, AnyStatsEvent
    from shared.mongo import MongoDoc

log = logging.getLogger("gridwhistle.stats.store")

REBUILD_SUFFIX = "__rebuild"

EVENT_LOG_INDEXES = [
    IndexModel([("matter_id", ASCENDING), ("sequence", ASCENDING), ("occurred_at", ASCENDING)], name="replay"),
    IndexModel([("logged_at", ASCENDING)], name="logged_at"),
]
COUNTERS_INDEXES = [IndexModel([("town_id", ASCENDING), ("day", ASCENDING)], name="town_day")]
MATTERS_INDEXES = [
    IndexModel([("in_backlog", ASCENDING)], name="in_backlog"),
    IndexModel([("open_departments", ASCENDING), ("open_since", ASCENDING)], name="open_departments_since"),
    IndexModel([("town_id", ASCENDING), ("state", ASCENDING)], name="town_state"),
    # the work lists (open_matters.py): a grid's and a town's open matters, oldest first
    IndexModel(
        [("grid_id", ASCENDING), ("open_tags", ASCENDING), ("listed_at", ASCENDING), ("_id", ASCENDING)],
        name="grid_open_listed",
    ),
    IndexModel(
        [("town_id", ASCENDING), ("open_tags", ASCENDING), ("listed_at", ASCENDING), ("_id", ASCENDING)],
        name="town_open_listed",
    ),
]


def event_log_document(event: AnyStatsEvent, logged_at: datetime) -> MongoDoc:
    """The stored event: everything but the citizen contact (stats never needs it). A visit has
    no matter (``matter_id`` null, sorted first by a replay)."""
    payload = event.model_dump(mode="json", exclude={"contact"})
    return {
        "_id": str(event.message_id),
        "matter_id": None if isinstance(event, SupervisionVisitRecorded) else str(event.matter_id),
        "sequence": 0 if isinstance(event, SupervisionVisitRecorded) else event.sequence,
        "occurred_at": event.occurred_at,
        "event_type": event.event_type,
        "town_id": event.town_id,
        "logged_at": logged_at,
        "payload": payload,
    }


def counters_insert_fields(update: CounterUpdate) -> MongoDoc:
    return {"town_id": update.town_id, "day": update.day}


@dataclass(frozen=True)
class Effect:
    """One event and what it adds to the counters (computed by ``effects.counter_update``)."""

    event: AnyStatsEvent
    counters: CounterUpdate


def merged_increments(effects: Sequence[Effect]) -> dict[str, tuple[CounterUpdate, Counter[str]]]:
    """Bucket id -> (one of its updates, for the insert fields; the summed ``$inc``)."""
    merged: dict[str, tuple[CounterUpdate, Counter[str]]] = {}
    for effect in effects:
        inc = effect.counters.increments()
        if inc:
            _, total = merged.setdefault(effect.counters.bucket_id, (effect.counters, Counter()))
            total.update(inc)
    return merged


@dataclass(frozen=True)
class StatsStore:
    """The read-model collections; ``suffix`` addresses a rebuild's fresh collections."""

    db: AsyncDatabase[MongoDoc]
    suffix: str = ""

    @property
    def event_log(self) -> AsyncCollection[MongoDoc]:
        return self.db[EVENT_LOG]  # the source of rebuilds is never rebuilt

    @property
    def counters(self) -> AsyncCollection[MongoDoc]:
        return self.db[COUNTERS + self.suffix]

    @property
    def matters(self) -> AsyncCollection[MongoDoc]:
        return self.db[MATTERS + self.suffix]

    async def ensure_indexes(self) -> None:
        await self.event_log.create_indexes(EVENT_LOG_INDEXES)
        await self.counters.create_indexes(COUNTERS_INDEXES)
        await self.matters.create_indexes(MATTERS_INDEXES)

    async def apply_batch(self, effects: Sequence[Effect]) -> set[str]:
        """Apply the effects not applied before, in one transaction; returns their message ids."""
        if not effects:
            return set()
        applied: set[str] = set()

        async def work(session: AsyncClientSession) -> None:
            applied.clear()  # a retried transaction starts again from what is committed
            applied.update(await self._apply(effects, session))

        async with self.db.client.start_session() as session:
            await session.with_transaction(work)
        return applied

    async def _apply(self, effects: Sequence[Effect], session: AsyncClientSession) -> set[str]:
        visits = [e for e in effects if isinstance(e.event, SupervisionVisitRecorded)]
        about_matters = [e for e in effects if not isinstance(e.event, SupervisionVisitRecorded)]
        matter_ids = sorted({str(e.event.matter_id) for e in about_matters})  # type: ignore[union-attr]
        stored: dict[str, MongoDoc] = {}
        projection = {"timeline": 1, "sequence": 1}
        if matter_ids:
            async for doc in self.matters.find({"_id": {"$in": matter_ids}}, projection, session=session):
                stored[str(doc["_id"])] = doc
        seen = {entry["message_id"] for doc in stored.values() for entry in doc.get("timeline") or []}
        if visits:
            visit_ids = [str(e.event.message_id) for e in visits]
            async for doc in self.event_log.find({"_id": {"$in": visit_ids}}, {"_id": 1}, session=session):
                seen.add(str(doc["_id"]))
        fresh: list[Effect] = []
        for effect in effects:
            message_id = str(effect.event.message_id)
            if message_id not in seen:  # also drops a duplicate inside the batch
                seen.add(message_id)
                fresh.append(effect)
        if not fresh:
            return set()
        logged_at = datetime.now(UTC)
        await self.event_log.bulk_write(
            [
                UpdateOne(
                    {"_id": str(e.event.message_id)},
                    {"$setOnInsert": event_log_document(e.event, logged_at)},
                    upsert=True,
                )
                for e in fresh
            ],
            ordered=False,
            session=session,
        )
        buckets = merged_increments(fresh)
        if buckets:
            await self.counters.bulk_write(
                [
                    UpdateOne(
                        {"_id": bucket},
                        {"$inc": dict(inc), "$setOnInsert": counters_insert_fields(update)},
                        upsert=True,
                    )
                    for bucket, (update, inc) in buckets.items()
                ],
                ordered=False,
                session=session,
            )
        writes = self._matter_writes(fresh, stored)
        if writes:
            await self.matters.bulk_write(writes, ordered=False, session=session)
        return {str(e.event.message_id) for e in fresh}

    @staticmethod
    def _matter_writes(fresh: Sequence[Effect], stored: dict[str, MongoDoc]) -> list[UpdateOne]:
        by_matter: dict[str, list[AnyEvent]] = defaultdict(list)
        for effect in fresh:
            if not isinstance(effect.event, SupervisionVisitRecorded):
                by_matter[str(effect.event.matter_id)].append(effect.event)
        writes: list[UpdateOne] = []
        for matter_id, events in by_matter.items():
            doc = stored.get(matter_id) or {}
            entries = [*(doc.get("timeline") or []), *(timeline_entry(e) for e in events)]
            fields, initial = matter_write(entries, events, doc.get("sequence"))
            update: MongoDoc = {"$set": fields}
            if initial:
                update["$setOnInsert"] = initial
            writes.append(UpdateOne({"_id": matter_id}, update, upsert=True))
        return writes

    async def count_events(self) -> int:
        return await self.event_log.count_documents({})

    async def drop(self) -> None:
        await self.db.drop_collection(self.counters.name)
        await self.db.drop_collection(self.matters.name)
