"""Hand-written fakes for the dispatch unit tests (a module of helpers, no tests of its own).

``FakeCollection`` keeps documents by ``_id`` and yields to the event loop on every call, so
two coroutines racing on one case interleave the way two processes would. ``FakeBroker``
records what was published and can fail on demand (a crash between commit and publish).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from pymongo.errors import DuplicateKeyError

from services.dispatch.handlers import DispatchDeps
from services.dispatch.metrics import DispatchMetrics
from services.dispatch.rules import RuleBook, load_rules
from services.dispatch.store import CaseStore, Entry
from shared.contracts import MatterReported
from shared.registry import Registry, load_registry
from shared.settings import GwSettings
from tests import factories
from tests.factories import GRID, TOWN

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
__all__ = ["GRID", "TOWN"]
INSTRUCTOR = "changjia-instructor-04"  # supervises g016..g020


@functools.cache
def registry_and_rules() -> tuple[Registry, RuleBook]:
    settings = GwSettings()
    registry = load_registry(settings.registry_path)
    return registry, load_rules(settings.rules_path, registry)


class FakeCollection:
    """Documents by ``_id``; filters are equality on top-level fields (what the store uses)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        doc = self.docs.get(query["_id"])
        return copy.deepcopy(doc) if doc is not None else None

    async def insert_one(self, doc: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def replace_one(self, query: dict[str, Any], doc: dict[str, Any], upsert: bool = False) -> None:
        await asyncio.sleep(0)
        current = self.docs.get(query["_id"])
        if (current is not None and all(current.get(k) == v for k, v in query.items())) or (current is None and upsert):
            self.docs[query["_id"]] = {"_id": query["_id"], **copy.deepcopy(doc)}
        elif upsert:
            raise DuplicateKeyError("E11000 duplicate key")

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        doc = self.docs.get(query["_id"])
        if doc is not None:
            doc.update(copy.deepcopy(update.get("$set", {})))
            for key in update.get("$unset", {}):
                doc.pop(key, None)


class FakeCaseStore(CaseStore):
    def __init__(self) -> None:
        self.case_docs, self.journal_docs = FakeCollection(), FakeCollection()
        self.cases = self.case_docs  # type: ignore[assignment]
        self.journal = self.journal_docs  # type: ignore[assignment]

    async def ensure_indexes(self) -> None:
        return None

    async def due(self, now: datetime, limit: int = 500) -> list[str]:
        docs = self.case_docs.docs.items()
        return [m for m, d in docs if d.get("next_deadline") is not None and d["next_deadline"] <= now][:limit]

    async def versions(self, matter_ids: set[str]) -> dict[str, int]:
        docs = self.case_docs.docs
        return {m: docs[m]["version"] for m in matter_ids if m in docs}

    async def open_entries(self, limit: int = 2000) -> list[Entry]:
        docs = self.journal_docs.docs.values()
        return [Entry.from_document(d) for d in docs if not d["done"]][:limit]

    async def tombstone(self, entry_ids: list[str]) -> None:
        for key in entry_ids:
            await self.journal_docs.update_one(
                {"_id": key}, {"$set": {"done": True}, "$unset": {"case": "", "outbox": ""}}
            )


@dataclass
class FakeBroker:
    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0

    async def publish(self, body: Any, *, exchange: Any, routing_key: str, **_: Any) -> None:
        await asyncio.sleep(0)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("broker went away")
        self.published.append((getattr(exchange, "name", str(exchange)), routing_key, body))

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            b
            for ex, _, b in self.published
            if ex == "gw.events" and (event_type is None or b.get("event_type") == event_type)
        ]

    def dispatch_keys(self) -> list[str]:
        return [key for ex, key, _ in self.published if ex == "gw.dispatch"]


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_deps(clock: FakeClock | None = None, store: FakeCaseStore | None = None) -> DispatchDeps:
    registry, rules = registry_and_rules()
    return DispatchDeps(
        store=store or FakeCaseStore(),
        broker=FakeBroker(),  # type: ignore[arg-type]
        rules=rules,
        registry=registry,
        metrics=DispatchMetrics(CollectorRegistry()),
        clock=clock or FakeClock(),
        park_timeout=timedelta(minutes=15),
    )


def reported(
    category: str,
    severity: str,
    *,
    grid_id: str = GRID,
    matter_id: uuid.UUID | None = None,
    micro_grid_id: str | None = None,
) -> MatterReported:
    """Reported at ``T0`` (the fake clock's start)."""
    return factories.reported(
        category, severity, reported_at=T0, grid_id=grid_id, matter_id=matter_id, micro_grid_id=micro_grid_id
    )
