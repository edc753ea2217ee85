"""Business metrics of stats (``gridwhistle_`` prefix; labels town, department, category, ...).

Transport metrics come from FastStream's ``RabbitPrometheusMiddleware`` (``shared.broker``).
Figures from the read models are served by a custom collector from a snapshot that a
background task refreshes every ``stats_refresh_seconds``: a scrape never queries MongoDB.
They are *database-wide*: every stats replica exports the same values, so rules and dashboards
collapse replicas with ``max by (...)`` before summing (docs/operations.md, "Replica-safe
figures"). Process figures (events applied, batch sizes, snapshot health) are *per replica*
and say so in their help text. Queue depths are not exported here: RabbitMQ's own
``rabbitmq_prometheus`` plugin exports them once per queue (``rabbitmq_queue_messages_*``).
No label ever carries a matter id or a grid id.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.stats.queries import LATENESS, BacklogSnapshot, TownTotals, all_time_totals, backlog_snapshot

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.stats.metrics")

DATABASE_WIDE = " (database-wide: every replica exports the same value; aggregate with max)"
PER_REPLICA = " (per replica: this process only; sum over replicas)"


class EventMetrics:
    """Process counters of the consumer (``deps.ApplyObserver``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.applied = Counter(
            "gridwhistle_events_applied",
            "Events whose effect this process applied to the read models (first complete delivery)" + PER_REPLICA,
            ["event_type"],
            registry=registry,
        )
        self.duplicates = Counter(
            "gridwhistle_events_duplicate",
            "Deliveries of events whose effects were all applied before (duplicates, redeliveries)" + PER_REPLICA,
            registry=registry,
        )

        self.batch_events = Histogram(
            "gridwhistle_stats_batch_events",
            "Events per transaction (a quiet queue gives 1; a backlog up to GW_STATS_BATCH_MAX)" + PER_REPLICA,
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
            "Open matters per department (lead or supporting of the current round) by lateness level" + DATABASE_WIDE,
            labels=["town", "department", "lateness"],
        )
        unaccepted = GaugeMetricFamily(
            "gridwhistle_unaccepted_matters",
            "Open matters the department has not accepted yet in the current round" + DATABASE_WIDE,
            labels=["town", "department"],
        )
        oldest = GaugeMetricFamily(
            "gridwhistle_oldest_open_matter_age_seconds",
            "Age of the department's oldest open matter since its round was dispatched (0 when none)" + DATABASE_WIDE,
            labels=["town", "department"],
        )
        breaches = CounterMetricFamily(
            "gridwhistle_sla_breaches",
            "SLA breaches (first escalations) of matters owned by the department, by deadline" + DATABASE_WIDE,
            labels=["town", "department", "deadline"],
        )
        returns = CounterMetricFamily(
            "gridwhistle_returns",
            "Matters returned (or released) by the department" + DATABASE_WIDE,
            labels=["town", "department"],
        )
        reported = CounterMetricFamily(
            "gridwhistle_matters_reported", "Matters reported" + DATABASE_WIDE, labels=["town", "category"]
        )
        closed = CounterMetricFamily(
            "gridwhistle_matters_closed", "Matters closed" + DATABASE_WIDE, labels=["town", "category"]
        )
        closure = GaugeMetricFamily(
            "gridwhistle_closure_ratio",
            "Closed / reported matters of the town, all time (办结率)" + DATABASE_WIDE,
            labels=["town"],
        )
        families: list[Metric] = [open_matters, unaccepted, oldest, breaches, returns, reported, closed, closure]
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


class MetricsRefresher:
    """Refreshes the collector's snapshot on a loop (a background task)."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[MongoDoc],
        registry: Registry,
        metrics: CollectorRegistry,
        interval: float,
    ) -> None:
        self.db = db
        self.registry = registry
        self.interval = interval
        self.collector = ReadModelCollector(registry)
        metrics.register(self.collector)
        self.read_models_up = Gauge(
            "gridwhistle_read_model_snapshot_up",
            "1 when the last refresh of the read-model metrics snapshot succeeded" + PER_REPLICA,
            registry=metrics,
        )

    async def refresh_read_models(self) -> None:
        try:
            backlog = await backlog_snapshot(self.db)
            totals = await all_time_totals(self.db)
        except Exception as error:
            self.read_models_up.set(0)
            log.warning("read-model snapshot failed, keeping the last one", extra={"error": type(error).__name__})
            return
        self.collector.snapshot = Snapshot(backlog, totals, datetime.now(UTC))
        self.read_models_up.set(1)

    async def refresh(self) -> None:
        await self.refresh_read_models()

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)
