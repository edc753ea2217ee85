"""Store from one client: ``insert_many``, ``insert_one``, update by ``_id`` (plain PyMongo async).
Prints ``{"insert_many_per_s": ..., "insert_one_per_s": ..., "update_by_id_per_s": ...}``.

    python -m tools.bench.raw_store --url mongodb://127.0.0.1:27017 --ops 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from pymongo import AsyncMongoClient


async def run(url: str, ops: int) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    db = client[f"bench_raw_{uuid.uuid4().hex[:8]}"]
    try:
        docs = [{"_id": f"m-{i}", "state": "reported", "n": 0, "summary": "x" * 200} for i in range(ops * 5)]
        started = time.perf_counter()
        for first in range(0, len(docs), 500):
            await db["many"].insert_many(docs[first : first + 500])
        insert_many = len(docs) / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(ops):
            await db["one"].insert_one({"_id": f"m-{i}", "state": "reported", "n": 0, "summary": "x" * 200})
        insert_one = ops / (time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(ops):
            await db["one"].update_one({"_id": f"m-{i}"}, {"$inc": {"n": 1}, "$set": {"state": "accepted"}})
        update = ops / (time.perf_counter() - started)
    finally:
        await client.drop_database(db.name)
        await client.close()
    return {"insert_many_per_s": insert_many, "insert_one_per_s": insert_one, "update_by_id_per_s": update}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017")
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.ops))))  # noqa: T201 - the result line the bench reads


if __name__ == "__main__":
    main()
