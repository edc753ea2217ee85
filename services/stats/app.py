"""Wiring of the stats service: runtime, subscriber, API, metrics; ``main()`` serves it on 8030.

Run it with ``python -m services.stats.app`` or ``gridwhistle stats serve``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from services.stats.api import router as api_router
from services.stats.batcher import EventBatcher
from services.stats.config import StatsSettings
from services.stats.handlers import when_events_arrive_update_read_models
from services.stats.metrics import EventMetrics, MetricsRefresher
from services.stats.store import StatsStore
from services.stats.subscribers import build_router
from shared.contracts import AnyEvent
from shared.logging import configure_logging
from shared.service import build_runtime, connect_with_retry, create_service_app, serve

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "stats"


@dataclass(frozen=True)
class StatsService:
    """What the lifespan starts: the store's indexes and the metrics refresher."""

    store: StatsStore
    refresher: MetricsRefresher

    async def on_started(self, runtime: ServiceRuntime) -> None:
        await connect_with_retry("mongodb indexes", self.store.ensure_indexes)
        runtime.background.append(asyncio.create_task(self.refresher.run(), name="stats-metrics-refresh"))


def create_app(settings: StatsSettings | None = None, *, registry: Registry | None = None) -> FastAPI:
    """The stats app (no I/O here: the lifespan connects, declares the topology, consumes)."""
    settings = settings or StatsSettings()
    runtime = build_runtime(settings, SERVICE, registry=registry)
    store = StatsStore(runtime.db)
    apply_events = partial(
        when_events_arrive_update_read_models,
        store=store,
        registry=runtime.registry,
        zone=settings.zone,
        observer=EventMetrics(runtime.metrics),
    )
    # Each delivery joins the next batch and is acknowledged (by returning) once that batch committed.
    batcher: EventBatcher[AnyEvent] = EventBatcher(
        apply_events, key=lambda e: str(e.message_id), max_batch=settings.stats_batch_max
    )
    refresher = MetricsRefresher(
        db=runtime.db,
        registry=runtime.registry,
        metrics=runtime.metrics,
        interval=settings.stats_refresh_seconds,
    )
    service = StatsService(store, refresher)
    runtime.broker.include_router(build_router(batcher.apply, prefetch=settings.stats_prefetch))
    app = create_service_app(runtime, title="Gridwhistle stats", on_started=service.on_started)
    app.include_router(api_router)
    app.state.stats = service
    return app


def main() -> None:
    settings = StatsSettings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), port=settings.stats_port, graceful_timeout=settings.graceful_timeout)


if __name__ == "__main__":
    main()
