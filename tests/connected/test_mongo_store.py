"""The Mongo-wire store through the shared client factory (SecantusDB locally, MongoDB in production)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

import pytest
from pymongo.errors import DuplicateKeyError

from shared.mongo import make_mongo_client
from shared.settings import GwSettings

pytestmark = pytest.mark.connected


async def test_document_written_with_async_client_reads_back(settings: GwSettings, mongo_ready: None) -> None:
    client = make_mongo_client(settings)
    try:
        collection = client[settings.mongo_db]["probe"]
        matter_id = uuid.uuid4()
        written_at = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
        await collection.insert_one({"_id": str(matter_id), "matter": matter_id, "at": written_at, "n": 3})
        found = await collection.find_one({"_id": str(matter_id)})
        assert found == {"_id": str(matter_id), "matter": matter_id, "at": written_at, "n": 3}
    finally:
        await client.close()


async def test_unique_index_rejects_a_duplicate(settings: GwSettings, mongo_ready: None) -> None:
    client = make_mongo_client(settings)
    try:
        collection = client[settings.mongo_db]["event_log_probe"]
        await collection.create_index("message_id", unique=True)
        await collection.insert_one({"message_id": "m-1", "seq": 1})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"message_id": "m-1", "seq": 2})
        assert await collection.count_documents({}) == 1
    finally:
        await client.close()


async def test_guarded_update_applies_a_message_once(settings: GwSettings, mongo_ready: None) -> None:
    """The exactly-once building block the read models rely on: filter on "not yet applied"."""
    client = make_mongo_client(settings)
    try:
        buckets = client[settings.mongo_db]["bucket_probe"]
        for _ in range(3):  # the same message delivered three times
            # an upsert that finds the bucket already holding m-7 collides on _id: already applied
            with contextlib.suppress(DuplicateKeyError):
                await buckets.update_one(
                    {"_id": "town|changjia|2026-11-26", "applied": {"$ne": "m-7"}},
                    {"$inc": {"reported": 1}, "$push": {"applied": "m-7"}},
                    upsert=True,
                )
        doc = await buckets.find_one({"_id": "town|changjia|2026-11-26"})
        assert doc is not None
        assert doc["reported"] == 1
        assert doc["applied"] == ["m-7"]
    finally:
        await client.close()
