"""MongoDB access of dispatch: one document per case, written by optimistic concurrency on ``version``.

A transition from version v to v+1 is one atomic single-document write filtered on ``version: v``
(an insert for the first version: the unique ``_id`` decides): of two writers of one version
exactly one wins, the loser re-reads and decides again. The same write stores the transition's
events as the case's ``outbox`` (the transactional outbox pattern, in one document): after the
broker confirmed them, the outbox is cleared by a second write filtered on the new version.

A case whose outbox is not empty has a transition in flight; nobody decides on it until the
outbox was published (by its writer, or, after a grace period, by whoever meets it: the next
message for that matter or the sweeper). So the events of v+1 are always on the broker before
v+2 is decided, and a crash between the write and the publish loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from services.dispatch.case import Case
from shared.read_models import CASES

if TYPE_CHECKING:
    from datetime import datetime

    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc

CASE_INDEXES = [
    IndexModel([("next_deadline", ASCENDING)], name="next_deadline", sparse=True),
    IndexModel([("outbox_since", ASCENDING)], name="outbox_since", sparse=True),
]


@dataclass(frozen=True)
class StoredCase:
    """A case as stored: its state, and the events of its last transition not yet confirmed sent."""

    case: Case
    outbox: list[dict[str, Any]]
    committed_at: datetime | None

    @property
    def in_flight(self) -> bool:
        return bool(self.outbox)


class CaseRepository(Protocol):
    """The port dispatch's unit of work uses (``CaseStore`` on MongoDB, a dict in unit tests)."""

    async def load(self, matter_id: str) -> StoredCase | None: ...

    async def commit(
        self, previous_version: int, case: Case, outbox: list[dict[str, Any]], committed_at: datetime
    ) -> bool: ...

    async def outbox_sent(self, matter_id: str, version: int) -> None: ...

    async def due(self, now: datetime, limit: int = 500) -> list[str]: ...

    async def stalled(self, committed_before: datetime, limit: int = 500) -> list[str]: ...

    async def snapshot(self, matter_id: str) -> Case | None: ...


def case_document(case: Case, outbox: list[dict[str, Any]], committed_at: datetime) -> MongoDoc:
    body: MongoDoc = {
        "_id": case.matter_id,
        **case.model_dump(mode="python"),
        "outbox": outbox,
        "committed_at": committed_at,
    }
    if outbox:  # only cases with a transition in flight are in the (sparse) index
        body["outbox_since"] = committed_at
    if body.get("next_deadline") is None:
        body.pop("next_deadline", None)
    return body


def stored_case(doc: MongoDoc) -> StoredCase:
    return StoredCase(Case.model_validate(doc), list(doc.get("outbox") or []), doc.get("committed_at"))


class CaseStore:
    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.cases = db[CASES]

    async def ensure_indexes(self) -> None:
        await self.cases.create_indexes(CASE_INDEXES)

    async def load(self, matter_id: str) -> StoredCase | None:
        doc = await self.cases.find_one({"_id": matter_id})
        return None if doc is None else stored_case(doc)

    async def commit(
        self, previous_version: int, case: Case, outbox: list[dict[str, Any]], committed_at: datetime
    ) -> bool:
        """Write ``case`` (version ``previous_version + 1``) with its outbox; False when another writer won."""
        body = case_document(case, outbox, committed_at)
        if previous_version == 0:
            try:
                await self.cases.insert_one(body)
            except DuplicateKeyError:
                return False
            return True
        result = await self.cases.replace_one({"_id": case.matter_id, "version": previous_version}, body)
        return result.matched_count == 1

    async def outbox_sent(self, matter_id: str, version: int) -> None:
        """The broker confirmed the outbox of ``version``: clear it (a no-op if a later version exists)."""
        await self.cases.update_one(
            {"_id": matter_id, "version": version}, {"$set": {"outbox": []}, "$unset": {"outbox_since": ""}}
        )

    async def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Cases with an escalation level or a parked command's timeout due."""
        cursor = self.cases.find({"next_deadline": {"$lte": now}}, {"_id": 1}).sort("next_deadline", 1).limit(limit)
        return [str(doc["_id"]) async for doc in cursor]

    async def stalled(self, committed_before: datetime, limit: int = 500) -> list[str]:
        """Cases whose outbox was written before ``committed_before`` and is still not sent (a writer died)."""
        cursor = self.cases.find({"outbox_since": {"$lte": committed_before}}, {"_id": 1}).limit(limit)
        return [str(doc["_id"]) async for doc in cursor]

    async def snapshot(self, matter_id: str) -> Case | None:
        stored = await self.load(matter_id)
        return None if stored is None else stored.case
