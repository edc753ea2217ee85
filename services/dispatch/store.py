"""MongoDB access of dispatch: the case documents and a journal of transitions.

FerretDB v1 (the local store) runs a filtered update as read-then-write without a lock, so an
update filtered on ``version`` is NOT a compare-and-swap there; only an insert is atomic (the
unique ``_id``). And its SQLite backend does not use the ``_id`` index for lookups (the index
expression differs from the query's), so every lookup scans its collection: keep collections
small and documents lean.

So a transition from version v to v+1 *inserts* ``case_journal/{matter_id}:{v+1}`` holding the
new state and its events (the outbox): of two writers of one version exactly one wins, the
loser re-reads and decides again. The winner publishes the events, writes ``cases/{matter_id}``
(filtered on version v) and shrinks its journal entry to a tombstone (entries are never deleted,
so a slot can never be won twice). An entry left in flight by a crash is finished by whoever
meets it: the redelivered message, a later writer, or the sweeper after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ASCENDING
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from services.dispatch.case import Case
from shared.read_models import CASES

if TYPE_CHECKING:
    from datetime import datetime

    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc

T = TypeVar("T")

BUSY_RETRIES = 30
"""FerretDB's SQLite backend answers concurrent writers with SQLITE_BUSY; retry here instead of
spending the message's deliveries (a failed insert or replace wrote nothing, so retrying is safe)."""

CASE_JOURNAL = "case_journal"
"""Dispatch-private: one entry per committed transition (in flight: state + outbox; then a tombstone)."""


def is_busy(error: BaseException) -> bool:
    if isinstance(error, AutoReconnect):
        return True
    text = str(error)
    return isinstance(error, OperationFailure) and ("SQLITE_BUSY" in text or "database is locked" in text)


async def retry_busy(operation: Callable[[], Awaitable[T]]) -> T:
    """Run a store call, retrying (jittered backoff, bounded) while the store reports it is busy."""
    for attempt in range(BUSY_RETRIES):
        try:
            return await operation()
        except (OperationFailure, AutoReconnect) as error:
            if not is_busy(error) or attempt == BUSY_RETRIES - 1:
                raise
            await asyncio.sleep(min(0.05, 0.002 * 2 ** min(attempt, 5)) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def entry_id(matter_id: str, version: int) -> str:
    return f"{matter_id}:{version:06d}"


@dataclass(frozen=True)
class Entry:
    """A journal entry: the transition to ``case.version`` and the events it publishes."""

    case: Case
    outbox: list[dict[str, Any]]
    txn: str  # unique per attempt
    trigger: str  # the message id that caused it ("" for the sweeper)
    committed_at: datetime
    done: bool = False

    def document(self) -> dict[str, Any]:
        return {
            "_id": entry_id(self.case.matter_id, self.case.version),
            "matter_id": self.case.matter_id,
            "version": self.case.version,
            "txn": self.txn,
            "trigger": self.trigger,
            "committed_at": self.committed_at,
            "done": self.done,
            "case": self.case.to_document(),
            "outbox": self.outbox,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Entry:
        case = Case.model_validate(doc["case"]) if doc.get("case") else Case(matter_id=doc["matter_id"])
        return cls(
            case,
            list(doc.get("outbox") or []),
            doc["txn"],
            doc.get("trigger", ""),
            doc["committed_at"],
            bool(doc.get("done")),
        )


# The sweeper's scans read to the end and cut in Python, never with ``.limit()``: FerretDB v1.24
# evaluates these filters in Go over a streaming SELECT and, when a limit is reached first,
# stops reading without ending the query — it then sits in ``ClientWrite`` holding its table's
# lock for good (seen: a test's DROP of the database waited forever behind two of them).


class CaseStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.cases = db[CASES]
        self.journal = db[CASE_JOURNAL]

    async def ensure_indexes(self) -> None:
        await self.cases.create_index([("next_deadline", ASCENDING)], name="next_deadline")
        await self.journal.create_index([("done", ASCENDING)], name="done")

    async def load(self, matter_id: str) -> Case | None:
        doc = await retry_busy(lambda: self.cases.find_one({"_id": matter_id}))
        return None if doc is None else Case.model_validate(doc)

    async def commit(self, entry: Entry) -> Entry | None:
        """Insert the entry; None when it won its version, else the entry that holds it."""
        document = entry.document()
        try:
            await retry_busy(lambda: self.journal.insert_one(document))
        except DuplicateKeyError:
            existing = await retry_busy(lambda: self.journal.find_one({"_id": document["_id"]}))
            if existing is None:  # cannot happen (entries are never deleted); let the caller retry
                return entry
            return Entry.from_document(existing)
        return None

    async def apply(self, entry: Entry) -> None:
        """Write the case (one write per transition besides the entry; the sweeper tombstones
        applied entries in batches).

        A plain write by ``_id`` (the one filter FerretDB pushes down): nobody can commit version
        v+1 before this write of version v landed (their insert of v finds this entry in flight),
        and a dead writer's entry is finished only after a grace period, so writes do not race.
        """
        case = entry.case
        body = {**case.to_document(), "txn": entry.txn, "committed_at": entry.committed_at}
        # DuplicateKeyError: a concurrent first write of this same entry created the document
        with contextlib.suppress(DuplicateKeyError):
            await retry_busy(partial(self.cases.replace_one, {"_id": case.matter_id}, body, upsert=True))

    async def tombstone(self, entry_ids: list[str]) -> None:
        """Shrink applied entries (their slot stays taken: a version is never won twice)."""
        if entry_ids:
            await retry_busy(
                partial(
                    self.journal.update_many,
                    {"_id": {"$in": entry_ids}},
                    {"$set": {"done": True}, "$unset": {"case": "", "outbox": ""}},
                )
            )

    async def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Cases with an escalation level or a parked command's timeout due."""
        cursor = self.cases.find({"next_deadline": {"$lte": now}}, {"_id": 1})
        return [str(doc["_id"]) async for doc in cursor][:limit]

    async def versions(self, matter_ids: set[str]) -> dict[str, int]:
        """Current version of each case (one pass over ``cases``, not one lookup per case)."""
        cursor = self.cases.find({"_id": {"$in": sorted(matter_ids)}}, {"version": 1}).batch_size(len(matter_ids) + 1)
        return {str(doc["_id"]): int(doc.get("version", 0)) async for doc in cursor}

    async def open_entries(self, limit: int = 2000) -> list[Entry]:
        """Entries not yet tombstoned: in flight, or applied since the last sweep."""
        cursor = self.journal.find({"done": False})
        return [Entry.from_document(doc) async for doc in cursor][:limit]

    async def snapshot(self, matter_id: str) -> Case | None:
        return await self.load(matter_id)

    async def all_cases(self) -> list[Case]:
        """Every case (tools and tests; O(cases))."""
        return [Case.model_validate(doc) async for doc in self.cases.find({})]
