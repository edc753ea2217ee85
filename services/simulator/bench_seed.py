"""History for the bench's flat-cost phase: grow the read models fast (copies of real documents,
written with ``insert_many``, not through the bots), then time the read API against them."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from pymongo.errors import BulkWriteError

from services.simulator.latency import percentiles
from services.stats.effects import BUCKET_SHARDS
from shared.mongo import make_mongo_client
from shared.read_models import COUNTERS, MATTERS

if TYPE_CHECKING:
    from shared.settings import GwSettings

TOWN = "changjia"
MATTERS_PER_DAY = 274  # 100,000 matters a year: a busy town
CHUNK = 5000


async def seed_history(settings: GwSettings, size: int) -> None:
    """Top ``matters`` up to ``size`` closed matters and ``counters`` up to ``size / MATTERS_PER_DAY`` days."""
    client = make_mongo_client(settings)
    try:
        db = client[settings.mongo_db]
        templates = [doc async for doc in db[MATTERS].find({"state": "closed", "in_backlog": False}).limit(50)]
        if not templates:
            raise RuntimeError("no closed matter to copy: run the system phase first")
        missing = size - await db[MATTERS].count_documents({})
        while missing > 0:
            sizes = [min(CHUNK, missing - first) for first in range(0, min(missing, 4 * CHUNK), CHUNK)]
            batches = [[{**templates[i % len(templates)], "_id": str(uuid.uuid4())} for i in range(n)] for n in sizes]
            await asyncio.gather(*(db[MATTERS].insert_many(batch, ordered=False) for batch in batches))
            missing -= sum(sizes)
        bucket = await db[COUNTERS].find_one({"town_id": TOWN})
        if bucket is None:
            return
        today = date.fromisoformat(bucket["day"])
        days = max(1, size // MATTERS_PER_DAY)
        docs = [
            {**bucket, "_id": f"{TOWN}|{day}|{shard:02d}", "day": day}
            for back in range(1, days + 1)
            for day in [(today - timedelta(days=back)).isoformat()]
            for shard in range(BUCKET_SHARDS)
        ]
        for first in range(0, len(docs), CHUNK):
            with contextlib.suppress(BulkWriteError):  # days seeded at the smaller size are there already
                await db[COUNTERS].insert_many(docs[first : first + CHUNK], ordered=False)
    finally:
        await client.close()


async def _time(http: httpx.AsyncClient, paths: list[str]) -> dict[str, float]:
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = await http.get(path)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return percentiles(samples)


async def measure_reads(stats_url: str, settings: GwSettings, requests: int) -> dict[str, Any]:
    """p50/p95/p99 (ms) of ``/v1/matters/{id}``, the town's last 30 days and ``/v1/backlog``."""
    client = make_mongo_client(settings)
    try:
        matters = client[settings.mongo_db][MATTERS]
        ids = []
        for _ in range(requests):  # spread over the whole _id index, not the newest documents
            doc = await matters.find_one({"_id": {"$gte": str(uuid.uuid4())}}, {"_id": 1}) or await matters.find_one({})
            if doc is not None:
                ids.append(str(doc["_id"]))
        bucket = await client[settings.mongo_db][COUNTERS].find_one({"town_id": TOWN}, sort=[("day", -1)])
    finally:
        await client.close()
    last = date.fromisoformat(bucket["day"]) if bucket else date.today()
    window = f"from={(last - timedelta(days=29)).isoformat()}&to={last.isoformat()}"
    async with httpx.AsyncClient(base_url=stats_url, timeout=30.0) as http:
        return {
            "matter_ms": await _time(http, [f"/v1/matters/{m}" for m in ids]),
            "town_30_days_ms": await _time(http, [f"/v1/stats/towns/{TOWN}?{window}"] * requests),
            "backlog_ms": await _time(http, [f"/v1/backlog?town_id={TOWN}"] * requests),
        }
