"""The store contract: every MongoDB property the design relies on, checked on the store in use.

Run against the local store by ``make test``; against a real MongoDB replica set with
``GW_MONGO_URL=mongodb://host/?replicaSet=rs0 .venv/bin/python -m pytest tests/connected/test_store_contract.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from shared.mongo import MongoDoc, make_mongo_client
from shared.settings import GwSettings

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.connected


@pytest.fixture
async def db(
    base_settings: GwSettings, mongo_db_name: str, mongo_ready: None
) -> AsyncIterator[AsyncDatabase[MongoDoc]]:
    client = make_mongo_client(base_settings)
    try:
        yield client[mongo_db_name]
    finally:
        await client.close()


async def test_fifty_concurrent_increments_of_one_document_keep_fifty(db: AsyncDatabase[MongoDoc]) -> None:
    counters = db["counters"]
    await counters.insert_one({"_id": "town|changjia", "reported": 0})
    await asyncio.gather(*(counters.update_one({"_id": "town|changjia"}, {"$inc": {"reported": 1}}) for _ in range(50)))
    assert await counters.find_one({"_id": "town|changjia"}) == {"_id": "town|changjia", "reported": 50}


async def test_a_guarded_update_applied_twice_counts_once_even_when_raced(db: AsyncDatabase[MongoDoc]) -> None:
    """Filter "not applied yet" + ``$inc`` + ``$push`` of the id: a race of duplicates applies one."""
    buckets = db["buckets"]
    await buckets.insert_one({"_id": "b", "n": 0, "seen": []})

    async def apply(message_id: str) -> int:
        done = await buckets.update_one(
            {"_id": "b", "seen": {"$ne": message_id}}, {"$inc": {"n": 1}, "$push": {"seen": message_id}}
        )
        return done.modified_count

    applied = await asyncio.gather(*(apply(f"m-{i % 20}") for i in range(200)))  # each id ten times
    assert sum(applied) == 20
    doc = await buckets.find_one({"_id": "b"})
    assert doc is not None and doc["n"] == 20 and sorted(doc["seen"]) == sorted(f"m-{i}" for i in range(20))


async def test_exactly_one_winner_among_concurrent_find_one_and_update_on_one_version(
    db: AsyncDatabase[MongoDoc],
) -> None:
    cases = db["cases"]
    await cases.insert_one({"_id": "c", "version": 1, "state": "dispatched"})

    async def transition(writer: int) -> MongoDoc | None:
        return await cases.find_one_and_update(
            {"_id": "c", "version": 1},
            {"$set": {"state": f"accepted-by-{writer}"}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    results = await asyncio.gather(*(transition(i) for i in range(20)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await cases.find_one({"_id": "c"}) == winners[0]
    assert winners[0]["version"] == 2


async def test_replace_filtered_on_version_is_a_compare_and_set(db: AsyncDatabase[MongoDoc]) -> None:
    """Dispatch's commit: of concurrent replaces of version v, exactly one matches."""
    cases = db["cases"]
    await cases.insert_one({"_id": "c", "version": 3})
    results = await asyncio.gather(
        *(cases.replace_one({"_id": "c", "version": 3}, {"version": 4, "by": i}) for i in range(20))
    )
    assert sum(r.matched_count for r in results) == 1


async def test_unordered_insert_many_reports_the_duplicates_and_inserts_the_rest(db: AsyncDatabase[MongoDoc]) -> None:
    log = db["event_log"]
    await log.insert_many([{"_id": "m-1"}, {"_id": "m-3"}])
    with pytest.raises(BulkWriteError) as raised:
        await log.insert_many([{"_id": f"m-{i}"} for i in range(1, 6)], ordered=False)
    details = raised.value.details
    assert details["nInserted"] == 3
    assert sorted(e["op"]["_id"] for e in details["writeErrors"]) == ["m-1", "m-3"]
    assert {e["code"] for e in details["writeErrors"]} == {11000}
    assert sorted([d["_id"] async for d in log.find({})]) == ["m-1", "m-2", "m-3", "m-4", "m-5"]


async def test_push_with_slice_keeps_a_bounded_array(db: AsyncDatabase[MongoDoc]) -> None:
    window = db["window"]
    for i in range(30):
        await window.update_one({"_id": "w"}, {"$push": {"recent": {"$each": [i], "$slice": -10}}}, upsert=True)
    doc = await window.find_one({"_id": "w"})
    assert doc is not None and doc["recent"] == list(range(20, 30))


async def test_an_aborted_transaction_leaves_nothing(db: AsyncDatabase[MongoDoc]) -> None:
    client = db.client
    await db["a"].insert_one({"_id": "kept", "n": 1})
    async with client.start_session() as session:
        await session.start_transaction()
        await db["a"].update_one({"_id": "kept"}, {"$inc": {"n": 1}}, session=session)
        await db["a"].insert_one({"_id": "new"}, session=session)
        await db["b"].insert_one({"_id": "other"}, session=session)
        await session.abort_transaction()
    assert [d async for d in db["a"].find({})] == [{"_id": "kept", "n": 1}]
    assert await db["b"].count_documents({}) == 0


async def test_a_committed_transaction_is_all_there(db: AsyncDatabase[MongoDoc]) -> None:
    async def work(session: AsyncClientSession) -> None:
        await db["log"].insert_many([{"_id": "m-1"}, {"_id": "m-2"}], session=session)
        await db["counters"].update_one({"_id": "t"}, {"$inc": {"n": 2}}, upsert=True, session=session)

    async with db.client.start_session() as session:
        await session.with_transaction(work)
    assert await db["log"].count_documents({}) == 2
    assert await db["counters"].find_one({"_id": "t"}) == {"_id": "t", "n": 2}


async def test_a_duplicate_key_inside_a_transaction_aborts_all_of_it(db: AsyncDatabase[MongoDoc]) -> None:
    """Stats applies a batch in one transaction guarded by the event log's ``_id``: a duplicate undoes all."""
    await db["log"].insert_one({"_id": "m-2"})
    async with db.client.start_session() as session:
        with pytest.raises(PyMongoError):
            async with await session.start_transaction():
                await db["counters"].update_one({"_id": "t"}, {"$inc": {"n": 1}}, upsert=True, session=session)
                await db["log"].insert_many([{"_id": "m-1"}, {"_id": "m-2"}], session=session)
    assert await db["counters"].count_documents({}) == 0
    assert sorted([d["_id"] async for d in db["log"].find({})]) == ["m-2"]


async def test_concurrent_transactions_on_one_document_conflict_and_retries_keep_every_increment(
    db: AsyncDatabase[MongoDoc],
) -> None:
    """Snapshot isolation: two transactions writing one document cannot both commit blindly."""
    await db["counters"].insert_one({"_id": "t", "n": 0})

    async def add_one() -> None:
        async def work(session: AsyncClientSession) -> None:
            doc = await db["counters"].find_one({"_id": "t"}, session=session)
            assert doc is not None
            await asyncio.sleep(0.01)  # widen the window between read and write
            await db["counters"].update_one({"_id": "t"}, {"$set": {"n": doc["n"] + 1}}, session=session)

        async with db.client.start_session() as session:
            await session.with_transaction(work)

    await asyncio.gather(*(add_one() for _ in range(10)))
    assert await db["counters"].find_one({"_id": "t"}) == {"_id": "t", "n": 10}


async def test_rename_collection_with_drop_target_swaps_a_rebuilt_read_model(db: AsyncDatabase[MongoDoc]) -> None:
    await db["matters"].insert_one({"_id": "old"})
    await db["matters__rebuild"].insert_one({"_id": "new"})
    await db["matters__rebuild"].rename("matters", dropTarget=True)
    assert [d async for d in db["matters"].find({})] == [{"_id": "new"}]
    assert "matters__rebuild" not in await db.list_collection_names()


async def test_create_indexes_twice_is_idempotent(db: AsyncDatabase[MongoDoc]) -> None:
    from pymongo import ASCENDING, IndexModel

    indexes = [IndexModel([("a", ASCENDING)], name="a"), IndexModel([("b", ASCENDING)], name="b", sparse=True)]
    await db["x"].create_indexes(indexes)
    await db["x"].create_indexes(indexes)
    assert {"_id_", "a", "b"} <= set(await db["x"].index_information())


async def test_limited_sorted_find_uses_the_index_order(db: AsyncDatabase[MongoDoc]) -> None:
    await db["cases"].create_index("next_deadline", sparse=True)
    await db["cases"].insert_many([{"_id": str(i), "next_deadline": 100 - i} for i in range(50)] + [{"_id": "none"}])
    found = [
        d["_id"] async for d in db["cases"].find({"next_deadline": {"$lte": 60}}).sort("next_deadline", 1).limit(5)
    ]
    assert found == ["49", "48", "47", "46", "45"]


async def test_an_unknown_operator_is_an_error_not_a_silent_no_op(db: AsyncDatabase[MongoDoc]) -> None:
    with pytest.raises(OperationFailure):
        await db["x"].update_one({"_id": "a"}, {"$frobnicate": {"n": 1}}, upsert=True)
