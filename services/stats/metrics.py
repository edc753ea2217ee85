"""Business metrics of stats (``gridwhistle_`` prefix; labels town, department, category, ...).

Transport metrics come from FastStream's ``RabbitPrometheusMiddleware`` (``shared.broker``).
Figures from the read models are served by a custom collector from a snapshot that a
background task refreshes every ``stats_refresh_seconds``: a scrape never queries MongoDB.
Queue depths of the ``dept.<department_id>`` queues come from the RabbitMQ management API on
the same loop; a failed read keeps the last values and sets ``gridwhistle_broker_stats_up 0``.
No label ever carries a matter id or a grid id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.stats.queries import LATENESS, BacklogSnapshot, TownTotals, all_time_totals, backlog_snapshot
from shared.management import ManagementApi
from shared.topology import department_queue

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc
    from shared.registry import Registry
    from shared.settings import GwSettings

log = logging.getLogger("gridwhistle.stats.metrics")

QUEUE_STATES = ("ready", "unacked")


class EventMetrics:
    """Process counters of the consumer (``deps.ApplyObserver``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.applied = Counter(
            "gridwhistle_events_applied",
            "Events whose effect this process applied to the read models (first complete delivery)",
            ["event_type"],
            registry=registry,
        )
        self.duplicates = Counter(
            "gridwhistle_events_duplicate",
            "Deliveries of events whose effects were all applied before (duplicates, redeliveries)",
            registry=registry,
        )

        self.batch_events = Histogram(
            "gridwhistle_stats_batch_events",
            "Events per transaction (a quiet queue gives 1; a backlog up to GW_STATS_BATCH_MAX)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
            registry=registry,
        )

    def batch_written(self, size: int) -> None:
        self.batch_events.observe(size)

    def event_applied(self, event_type: str) -> None:
        self.applied.labels(event_type=event_type).inc()

    def event_duplicate(self) -> None:
        self.duplicates.inc()


@dataclass
class Snapshot:
    backlog: BacklogSnapshot = field(default_factory=BacklogSnapshot)
    totals: TownTotals = field(default_factory=TownTotals)
    taken_at: datetime | None = None
    queues: dict[tuple[str, str], int] = field(default_factory=dict)  # (department, state) -> messages


class ReadModelCollector(Collector):
    """Serves the last snapshot; series for every registry (town, department) pair, zeros included."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.snapshot = Snapshot()

    def _town_departments(self) -> Iterable[tuple[str, str]]:
        for town_id in self.registry.town_ids:
            for department in self.registry.departments_of_town(town_id):
                yield town_id, department.department_id

    def describe(self) -> list[Metric]:
        return list(self._families(Snapshot(), with_samples=False))

    def collect(self) -> Iterable[Metric]:
        return self._families(self.snapshot, with_samples=True)

    def _families(self, snap: Snapshot, *, with_samples: bool) -> Iterable[Metric]:
        open_matters = GaugeMetricFamily(
            "gridwhistle_open_matters",
            "Open matters per department (lead or supporting of the current round) by lateness level",
            labels=["town", "department", "lateness"],
        )
        unaccepted = GaugeMetricFamily(
            "gridwhistle_unaccepted_matters",
            "Open matters the department has not accepted yet in the current round",
            labels=["town", "department"],
        )
        oldest = GaugeMetricFamily(
            "gridwhistle_oldest_open_matter_age_seconds",
            "Age of the department's oldest open matter since its round was dispatched (0 when none)",
            labels=["town", "department"],
        )
        queue = GaugeMetricFamily(
            "gridwhistle_department_queue_messages",
            "Messages in the department's dispatch queue, from the RabbitMQ management API",
            labels=["department", "state"],
        )
        breaches = CounterMetricFamily(
            "gridwhistle_sla_breaches",
            "SLA breaches (first escalations) of matters owned by the department, by deadline",
            labels=["town", "department", "deadline"],
        )
        returns = CounterMetricFamily(
            "gridwhistle_returns", "Matters returned (or released) by the department", labels=["town", "department"]
        )
        reported = CounterMetricFamily("gridwhistle_matters_reported", "Matters reported", labels=["town", "category"])
        closed = CounterMetricFamily("gridwhistle_matters_closed", "Matters closed", labels=["town", "category"])
        closure = GaugeMetricFamily(
            "gridwhistle_closure_ratio", "Closed / reported matters of the town, all time (办结率)", labels=["town"]
        )
        families: list[Metric] = [open_matters, unaccepted, oldest, queue, breaches, returns, reported, closed, closure]
        if not with_samples:
            return families
        now = snap.taken_at or datetime.now(UTC)
        for town_id, department_id in self._town_departments():
            row = snap.backlog.per_town.get((town_id, department_id))
            for label in LATENESS:
                open_matters.add_metric([town_id, department_id, label], row.by_lateness[label] if row else 0)
            unaccepted.add_metric([town_id, department_id], row.unaccepted if row else 0)
            since = row.oldest_open_since if row else None
            oldest.add_metric([town_id, department_id], max(0.0, (now - since).total_seconds()) if since else 0.0)
            figures = snap.totals.by_department.get((town_id, department_id))
            for deadline in ("accept", "resolve"):
                breached = figures[f"breached_{deadline}"] if figures else 0
                breaches.add_metric([town_id, department_id, deadline], breached)
            returns.add_metric([town_id, department_id], figures["returned"] if figures else 0)
        for department in self.registry.all_departments():
            for state in QUEUE_STATES:
                value = snap.queues.get((department.department_id, state))
                if value is not None:
                    queue.add_metric([department.department_id, state], value)
        town_reported: dict[str, int] = {}
        town_closed: dict[str, int] = {}
        for (town_id, category), figures in sorted(snap.totals.by_category.items()):
            reported.add_metric([town_id, category], figures["reported"])
            closed.add_metric([town_id, category], figures["closed"])
            town_reported[town_id] = town_reported.get(town_id, 0) + figures["reported"]
            town_closed[town_id] = town_closed.get(town_id, 0) + figures["closed"]
        for town_id, count in sorted(town_reported.items()):
            if count:
                closure.add_metric([town_id], town_closed[town_id] / count)
        return families


async def read_queue_depths(api: ManagementApi, queues: dict[str, str]) -> dict[tuple[str, str], int]:
    """``messages_ready`` / ``messages_unacknowledged`` of the department queues (name -> department)."""
    depths: dict[tuple[str, str], int] = {}
    for queue in await api.queues():
        department = queues.get(queue.name)
        if department is not None:
            depths[(department, "ready")] = queue.ready
            depths[(department, "unacked")] = queue.unacked
    return depths


class MetricsRefresher:
    """Refreshes the collector's snapshot and the broker gauge on a loop (a background task)."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[MongoDoc],
        registry: Registry,
        settings: GwSettings,
        metrics: CollectorRegistry,
        interval: float,
        timeout: float,
    ) -> None:
        self.db = db
        self.registry = registry
        self.interval = interval
        self.collector = ReadModelCollector(registry)
        metrics.register(self.collector)
        self.broker_up = Gauge(
            "gridwhistle_broker_stats_up",
            "1 when the last read of queue depths from the RabbitMQ management API succeeded",
            registry=metrics,
        )
        self.read_models_up = Gauge(
            "gridwhistle_read_model_snapshot_up",
            "1 when the last refresh of the read-model metrics snapshot succeeded",
            registry=metrics,
        )
        self.management = ManagementApi(settings)  # an httpx client: no I/O until the first read
        self.timeout = timeout
        self.queues = {department_queue(d.department_id).name: d.department_id for d in registry.all_departments()}

    async def refresh_read_models(self) -> None:
        try:
            backlog = await backlog_snapshot(self.db)
            totals = await all_time_totals(self.db)
        except Exception as error:
            self.read_models_up.set(0)
            log.warning("read-model snapshot failed, keeping the last one", extra={"error": type(error).__name__})
            return
        snap = self.collector.snapshot
        self.collector.snapshot = Snapshot(backlog, totals, datetime.now(UTC), snap.queues)
        self.read_models_up.set(1)

    async def refresh_queues(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                depths = await read_queue_depths(self.management, self.queues)
        except (httpx.HTTPError, ValueError, TimeoutError) as error:
            self.broker_up.set(0)
            log.warning("queue depths unavailable, keeping the last values", extra={"error": type(error).__name__})
            return
        self.collector.snapshot.queues = depths
        self.broker_up.set(1)

    async def refresh(self) -> None:
        await asyncio.gather(self.refresh_read_models(), self.refresh_queues())

    async def run(self) -> None:
        async with self.management:  # closes its HTTP client when the task is cancelled
            while True:
                await self.refresh()
                await asyncio.sleep(self.interval)
