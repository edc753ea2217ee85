"""Read-only queries behind Open311's ``GET requests``: the stats read model ``matters`` first,
then intake's own ``intake_reports`` for matters stats has not recorded yet (always ``open``).

Each query is bounded by ``limit``; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING

from shared.domain import MatterState
from shared.read_models import MATTERS, MatterView

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from datetime import datetime

    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.database import AsyncDatabase

    from services.intake.store import ReportStore
    from shared.contracts import MatterReported
    from shared.mongo import MongoDoc


@dataclass(frozen=True, slots=True)
class RequestFilter:
    town_id: str | None
    categories: Sequence[str]  # Open311 service codes that are categories ...
    start: datetime
    end: datetime
    statuses: frozenset[str]  # subset of {"open", "closed"}
    service_items: Sequence[str] = ()  # ... and those that are service items (either matches)


@dataclass(frozen=True, slots=True)
class RequestView:
    """One matter as Open311 sees it: the stats view when there is one, else the intake record."""

    matter: MatterView | None
    reported: MatterReported | None

    @property
    def town_id(self) -> str:
        if self.matter is not None:
            return self.matter.town_id
        assert self.reported is not None
        return self.reported.town_id

    @property
    def reported_at(self) -> datetime | None:
        if self.matter is not None and self.matter.reported_at is not None:
            return self.matter.reported_at
        return self.reported.reported_at if self.reported is not None else None


class RequestViews:
    def __init__(self, db: AsyncDatabase[MongoDoc], reports: ReportStore) -> None:
        self.matters: AsyncCollection[MongoDoc] = db[MATTERS]
        self.reports = reports

    async def by_ids(self, matter_ids: Sequence[str]) -> list[RequestView]:
        found = {
            view.matter_id: RequestView(view, None)
            async for view in self._matters({"_id": {"$in": list(matter_ids)}}, len(matter_ids))
        }
        for matter_id in matter_ids:
            if matter_id not in found:
                record = await self.reports.by_matter_id(matter_id)
                if record is not None:
                    found[matter_id] = RequestView(None, record.event)
        return [found[m] for m in matter_ids if m in found]

    async def search(self, wanted: RequestFilter, *, limit: int) -> list[RequestView]:
        window: dict[str, Any] = {"reported_at": {"$gte": wanted.start, "$lte": wanted.end}}
        if wanted.town_id is not None:
            window["town_id"] = wanted.town_id
        wanted_codes: list[dict[str, Any]] = []
        if wanted.categories:
            wanted_codes.append({"category": {"$in": list(wanted.categories)}})
        if wanted.service_items:
            wanted_codes.append({"service_item": {"$in": list(wanted.service_items)}})
        if len(wanted_codes) == 1:
            window.update(wanted_codes[0])
        elif wanted_codes:
            window["$or"] = wanted_codes
        query = dict(window)
        if wanted.statuses == {"closed"}:
            query["state"] = MatterState.CLOSED.value
        elif wanted.statuses == {"open"}:
            query["state"] = {"$ne": MatterState.CLOSED.value}
        views = [RequestView(view, None) async for view in self._matters(query, limit)]
        if "open" in wanted.statuses:  # reports stats has not seen yet are open
            records = await self.reports.find(window, limit=limit)
            pending_ids = [r.matter_id for r in records]
            known = {doc["_id"] async for doc in self.matters.find({"_id": {"$in": pending_ids}}, {"_id": 1})}
            views += [RequestView(None, r.event) for r in records if r.matter_id not in known]
        views.sort(key=lambda v: v.reported_at.timestamp() if v.reported_at else 0.0, reverse=True)
        return views[:limit]

    async def _matters(self, query: dict[str, Any], limit: int) -> AsyncIterator[MatterView]:
        cursor = self.matters.find(query).sort("reported_at", DESCENDING).limit(limit)
        async for doc in cursor:
            yield MatterView.model_validate(doc)
