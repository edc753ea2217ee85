"""The ``intake_reports`` collection: one document per accepted ``report_id`` (per town).

It is the idempotency record of a report: ``_id`` is ``<town_id>:<report_id>``, the unique key
that catches a duplicate even when two requests race; it keeps the body hash (to tell a retry
from a different report reusing the id) and the full ``MatterReported`` as first built, so a
retry republishes the very same message (same ``message_id``: consumers dedupe it). Every write
is a single-document operation that is safe to repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from shared.contracts import MatterReported
from shared.read_models import REPORTS

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc

ReportStatus = Literal["pending", "published"]


def report_key(town_id: str, report_id: str) -> str:
    return f"{town_id}:{report_id}"


@dataclass(frozen=True, slots=True)
class ReportRecord:
    key: str
    body_hash: str
    event: MatterReported
    status: ReportStatus

    @property
    def matter_id(self) -> str:
        return str(self.event.matter_id)

    def to_document(self) -> MongoDoc:
        return {
            "_id": self.key,
            "matter_id": self.matter_id,
            "report_id": self.event.report_id,
            "town_id": self.event.town_id,
            "grid_id": self.event.grid_id,
            "category": self.event.category.value,
            "service_item": self.event.service_item,
            "reported_at": self.event.reported_at,
            "body_hash": self.body_hash,
            "event": self.event.model_dump(mode="json"),
            "status": self.status,
            "created_at": datetime.now(UTC),
        }

    @classmethod
    def from_document(cls, doc: MongoDoc) -> ReportRecord:
        return cls(
            key=doc["_id"],
            body_hash=doc["body_hash"],
            event=MatterReported.model_validate(doc["event"]),
            status=doc["status"],
        )


class ReportStore:
    """Reads and writes ``intake_reports``."""

    def __init__(self, db: AsyncDatabase[MongoDoc]) -> None:
        self.collection: AsyncCollection[MongoDoc] = db[REPORTS]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("matter_id", ASCENDING)], unique=True, name="matter_id")
        await self.collection.create_index(
            [("town_id", ASCENDING), ("reported_at", DESCENDING)], name="town_reported_at"
        )

    async def get(self, key: str) -> ReportRecord | None:
        doc = await self.collection.find_one({"_id": key})
        return None if doc is None else ReportRecord.from_document(doc)

    async def insert_pending(self, record: ReportRecord) -> bool:
        """Store a new report as ``pending``; False when the key exists already (a race)."""
        try:
            await self.collection.insert_one(record.to_document())
        except DuplicateKeyError:
            return False
        return True

    async def mark_published(self, key: str) -> None:
        await self.collection.update_one(
            {"_id": key}, {"$set": {"status": "published", "published_at": datetime.now(UTC)}}
        )

    async def by_matter_id(self, matter_id: str) -> ReportRecord | None:
        doc = await self.collection.find_one({"matter_id": matter_id})
        return None if doc is None else ReportRecord.from_document(doc)

    async def find(self, query: dict[str, Any], *, limit: int) -> list[ReportRecord]:
        """Reports matching ``query`` on the top-level fields, newest first."""
        cursor = self.collection.find(query).sort("reported_at", DESCENDING).limit(limit)
        return [ReportRecord.from_document(doc) async for doc in cursor]
