"""Read-only: a town's figures per day (the console's charts), from the day buckets.

O(days x shards) via the ``(town_id, day)`` index: the buckets of the period, summed per day.
Days without a bucket are filled with zeros, so a chart has one point per calendar day.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from shared.read_models import COUNTERS

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc

DAILY_FIGURES = ("reported", "dispatched", "accepted", "resolved", "closed")
MAX_DAYS = 366


async def town_daily(db: AsyncDatabase[MongoDoc], town_id: str, start: date, end: date) -> dict[str, Any]:
    per_day: dict[str, Counter[str]] = {}
    query: MongoDoc = {"town_id": town_id, "day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}
    async for bucket in db[COUNTERS].find(query, {"day": 1, "totals": 1}):
        totals = bucket.get("totals") or {}
        day = per_day.setdefault(str(bucket["day"]), Counter())
        day.update({k: v for k, v in totals.items() if k in DAILY_FIGURES and isinstance(v, int)})
    days = []
    moment = start
    while moment <= end:
        figures = per_day.get(moment.isoformat(), Counter())
        days.append({"day": moment.isoformat(), **{name: figures[name] for name in DAILY_FIGURES}})
        moment += timedelta(days=1)
    return {"town_id": town_id, "from": start.isoformat(), "to": end.isoformat(), "days": days}
