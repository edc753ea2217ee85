"""Hand-written fakes for dispatch (the store port, a recording broker, a clock) and its test deps.

``FakeCaseStore`` is the store port (not an emulator of the driver). ``FakePublisher`` is the
publish port: it records what was published and can fail on demand (a crash between commit
and publish).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from services.dispatch.case import Case
from services.dispatch.deps import DispatchDeps
from services.dispatch.metrics import DispatchMetrics
from services.dispatch.rules import RuleBook, load_rules
from services.dispatch.store import StoredCase, case_document, stored_case
from shared.contracts import Event, MatterReported, SupervisionVisitRecorded
from shared.registry import Registry, load_registry
from shared.settings import GwSettings
from tests import factories
from tests.factories import GRID, TOWN

if TYPE_CHECKING:
    from collections.abc import Sequence

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
__all__ = ["GRID", "TOWN"]
INSTRUCTOR = "changjia-instructor-04"  # supervises g016..g020


@functools.cache
def registry_and_rules() -> tuple[Registry, RuleBook]:
    settings = GwSettings()
    registry = load_registry(settings.registry_path)
    return registry, load_rules(settings.rules_path, registry)


class FakeCaseStore:
    """The ``CaseRepository`` port in a dict, with the same compare-and-set on ``version``.

    Every call yields to the event loop first, so two coroutines racing on one case interleave
    the way two processes would.
    """

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def load(self, matter_id: str) -> StoredCase | None:
        await asyncio.sleep(0)
        doc = self.docs.get(matter_id)
        return None if doc is None else stored_case(copy.deepcopy(doc))

    async def commit(
        self, previous_version: int, case: Case, outbox: list[dict[str, Any]], committed_at: datetime
    ) -> bool:
        await asyncio.sleep(0)
        current = self.docs.get(case.matter_id)
        if (current["version"] if current is not None else 0) != previous_version:
            return False
        self.docs[case.matter_id] = copy.deepcopy(case_document(case, outbox, committed_at))
        return True

    async def outbox_sent(self, matter_id: str, version: int) -> None:
        await asyncio.sleep(0)
        doc = self.docs.get(matter_id)
        if doc is not None and doc["version"] == version:
            doc["outbox"] = []
            doc.pop("outbox_since", None)

    async def due(self, now: datetime, limit: int = 500) -> list[str]:
        docs = self.docs.items()
        return [m for m, d in docs if d.get("next_deadline") is not None and d["next_deadline"] <= now][:limit]

    async def stalled(self, committed_before: datetime, limit: int = 500) -> list[str]:
        docs = self.docs.items()
        return [m for m, d in docs if "outbox_since" in d and d["outbox_since"] <= committed_before][:limit]

    async def snapshot(self, matter_id: str) -> Case | None:
        stored = await self.load(matter_id)
        return None if stored is None else stored.case


@dataclass
class FakePublisher:
    """``(exchange, routing key, body)`` of everything published, in order."""

    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0

    async def __call__(self, event: Event | SupervisionVisitRecorded, dispatch_keys: Sequence[str]) -> None:
        await asyncio.sleep(0)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("broker went away")
        body = event.model_dump(mode="json")
        self.published.append(("gw.events", event.event_type, body))
        self.published += [("gw.dispatch", key, body) for key in dispatch_keys]

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


def make_deps(
    clock: FakeClock | None = None, store: FakeCaseStore | None = None, publisher: FakePublisher | None = None
) -> DispatchDeps:
    registry, rules = registry_and_rules()
    return DispatchDeps(
        store=store or FakeCaseStore(),
        publish=publisher or FakePublisher(),
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
