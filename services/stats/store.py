"""MongoDB writes of the stats service: the event log, the counters and the matters view.

Exactly-once effect without transactions. An event has exactly three effects, each one
single-document atomic write that is safe to repeat:

1. ``event_log``: insert ``_id = message_id``; a duplicate key means "already logged".
2. ``counters``: one update of the event's ``(town, day)`` bucket whose filter says "this
   message id is not in ``applied``" and whose update does the ``$inc`` and ``$push``es the id,
   with ``upsert``: no match on an existing bucket turns into an insert of the same ``_id``,
   i.e. a duplicate key, i.e. "already applied".
3. ``matters``: compare-and-set on ``rev`` (= number of timeline entries): read the document,
   return if the message id is already in its timeline, else write timeline + refolded fields
   with the filter ``rev == old rev`` (retry on a lost race).

A crash between any two of them leaves the message unacknowledged; its redelivery repeats
all three and each one that already happened is a no-op. Nothing is ever counted twice or lost.

FerretDB 1.24 (SQLite backend) does not execute an update atomically: two concurrent updates
of one document may both match their filter and the second overwrites the first (lost
``$inc``, lost ``$push``; measured). MongoDB does. So within a process, writes to one document
are serialised by a per-document lock (``KeyedLocks``), and on FerretDB one stats process
consumes at a time (see the README); on MongoDB, replicas may compete freely.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from services.stats.fold import Entry, matter_fields, timeline_entry
from shared.contracts import MatterReported
from shared.read_models import COUNTERS, EVENT_LOG, MATTERS

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.database import AsyncDatabase

    from services.stats.effects import CounterUpdate
    from shared.contracts import AnyEvent
    from shared.mongo import MongoDoc

log = logging.getLogger("gridwhistle.stats.store")

WRITE_ATTEMPTS = 50
REBUILD_SUFFIX = "__rebuild"


class WriteConflictError(RuntimeError):
    """Too many concurrent writers on one document: transient, the message is requeued."""


EVENT_LOG_INDEXES = [
    IndexModel([("matter_id", ASCENDING), ("sequence", ASCENDING), ("occurred_at", ASCENDING)], name="replay"),
    IndexModel([("logged_at", ASCENDING)], name="logged_at"),
]
COUNTERS_INDEXES = [IndexModel([("town_id", ASCENDING), ("day", ASCENDING)], name="town_day")]
MATTERS_INDEXES = [
    IndexModel([("in_backlog", ASCENDING)], name="in_backlog"),
    IndexModel([("open_departments", ASCENDING), ("open_since", ASCENDING)], name="open_departments_since"),
    IndexModel([("town_id", ASCENDING), ("state", ASCENDING)], name="town_state"),
]


async def _create_missing(collection: AsyncCollection[MongoDoc], indexes: list[IndexModel]) -> None:
    """Create the indexes not there yet, one by one: FerretDB 1.24 drops the connection (a
    server-side panic) when ``createIndexes`` names several indexes that already exist."""
    existing = set(await collection.index_information())
    for index in indexes:
        if index.document["name"] not in existing:
            await collection.create_indexes([index])


def event_log_document(event: AnyEvent, logged_at: datetime) -> MongoDoc:
    """The stored event: everything but the citizen contact (stats never needs it)."""
    payload = event.model_dump(mode="json", exclude={"contact"})
    return {
        "_id": str(event.message_id),
        "matter_id": str(event.matter_id),
        "sequence": event.sequence,
        "occurred_at": event.occurred_at,
        "event_type": event.event_type,
        "town_id": event.town_id,
        "logged_at": logged_at,
        "payload": payload,
    }


def counters_insert_fields(update: CounterUpdate) -> MongoDoc:
    return {"town_id": update.town_id, "day": update.day}


class KeyedLocks:
    """One ``asyncio.Lock`` per key while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(frozen=True)
class StatsStore:
    """The read-model collections; ``suffix`` addresses a rebuild's fresh collections."""

    db: AsyncDatabase[MongoDoc]
    suffix: str = ""
    locks: KeyedLocks = field(default_factory=KeyedLocks, compare=False)

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
        await _create_missing(self.event_log, EVENT_LOG_INDEXES)
        await _create_missing(self.counters, COUNTERS_INDEXES)
        await _create_missing(self.matters, MATTERS_INDEXES)

    async def log_event(self, event: AnyEvent) -> bool:
        """Append to the event log; False when it was logged before."""
        try:
            await self.event_log.insert_one(event_log_document(event, datetime.now(UTC)))
        except DuplicateKeyError:
            return False
        return True

    async def apply_counters(self, update: CounterUpdate, message_id: str) -> bool:
        """One guarded update of the event's bucket; False when it was applied before (or adds nothing)."""
        inc = update.increments()
        if not inc:
            return False
        async with self.locks.hold(f"{self.counters.name}/{update.bucket_id}"):
            return await self._apply_counters(update, message_id, inc)

    async def _apply_counters(self, update: CounterUpdate, message_id: str, inc: dict[str, int]) -> bool:
        for _ in range(WRITE_ATTEMPTS):
            try:
                await self.counters.update_one(
                    {"_id": update.bucket_id, "applied": {"$ne": message_id}},
                    {"$inc": inc, "$push": {"applied": message_id}, "$setOnInsert": counters_insert_fields(update)},
                    upsert=True,
                )
            except DuplicateKeyError:
                # Either the id is applied already, or two first events of the bucket raced to
                # insert it (FerretDB does not retry such an upsert): tell them apart, retry the latter.
                if await self.counters.count_documents({"_id": update.bucket_id, "applied": message_id}, limit=1):
                    return False
                continue
            return True
        raise WriteConflictError(f"bucket {update.bucket_id}: lost {WRITE_ATTEMPTS} insert races")

    async def apply_to_matter(self, event: AnyEvent) -> bool:
        """Add the event to its matter's timeline and refold; False when it was there already."""
        async with self.locks.hold(f"{self.matters.name}/{event.matter_id}"):
            return await self._apply_to_matter(event)

    async def _apply_to_matter(self, event: AnyEvent) -> bool:
        matter_id, entry = str(event.matter_id), timeline_entry(event)
        for _ in range(WRITE_ATTEMPTS):
            doc = await self.matters.find_one({"_id": matter_id}, {"timeline": 1, "rev": 1})
            entries: list[Entry] = list(doc["timeline"]) if doc else []
            if any(e["message_id"] == entry["message_id"] for e in entries):
                return False
            report = event if isinstance(event, MatterReported) else None
            fields = matter_fields([*entries, entry], event, report)
            if doc is None:
                try:
                    await self.matters.insert_one({"_id": matter_id, **fields})
                except DuplicateKeyError:
                    continue  # another writer created it first: read again
                return True
            result = await self.matters.update_one({"_id": matter_id, "rev": doc["rev"]}, {"$set": fields})
            if result.matched_count:
                return True
        log.warning("matter write kept losing races", extra={"matter_id": matter_id, "message_id": entry["message_id"]})
        raise WriteConflictError(f"matter {matter_id}: {WRITE_ATTEMPTS} lost compare-and-set rounds")

    async def count_events(self) -> int:
        return await self.event_log.count_documents({})

    async def drop(self) -> None:
        await self.db.drop_collection(self.counters.name)
        await self.db.drop_collection(self.matters.name)
