"""Hand-written fakes at intake's ports: the report store, the publisher, the Open311 lookups."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from services.intake.config import IntakeSettings
from services.intake.deps import IntakeDeps
from services.intake.metrics import IntakeMetrics
from services.intake.store import ReportRecord
from shared.registry import Registry
from tests.factories import changjia_registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.intake.views import RequestFilter, RequestView
    from shared.contracts import MatterReported


@functools.cache
def changjia() -> Registry:
    return changjia_registry()


class FakeReportStore:
    """The ``ReportRepository`` port: ``insert_pending`` refuses a key it holds (the unique key)."""

    def __init__(self) -> None:
        self.records: dict[str, ReportRecord] = {}
        self.lose_insert_race_to: ReportRecord | None = None

    async def get(self, key: str) -> ReportRecord | None:
        return self.records.get(key)

    async def insert_pending(self, record: ReportRecord) -> bool:
        if self.lose_insert_race_to is not None:  # another request inserted first
            self.records[record.key] = self.lose_insert_race_to
            return False
        if record.key in self.records:
            return False
        self.records[record.key] = record
        return True

    async def mark_published(self, key: str) -> None:
        old = self.records[key]
        self.records[key] = ReportRecord(old.key, old.body_hash, old.event, "published")


class FakePublisher:
    """The ``Publish`` port: records each confirmed event; ``down`` makes it fail like a lost broker."""

    def __init__(self) -> None:
        self.published: list[MatterReported] = []
        self.down = False

    async def __call__(self, event: MatterReported) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.published.append(event)


class NoRequests:
    """The ``RequestLookup`` port with nothing recorded."""

    async def by_ids(self, matter_ids: Sequence[str]) -> list[RequestView]:
        return []

    async def search(self, wanted: RequestFilter, *, limit: int) -> list[RequestView]:
        return []


def intake_deps(store: FakeReportStore, publish: FakePublisher, *, prefetch: int = 8) -> IntakeDeps:
    return IntakeDeps(
        settings=IntakeSettings(prefetch=prefetch),
        registry=changjia(),
        store=store,
        views=NoRequests(),
        publish=publish,
        metrics=IntakeMetrics(CollectorRegistry()),
    )
