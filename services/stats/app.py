"""Wiring of the stats service: ``create_app(settings)``; ``gridwhistle stats serve`` runs it.

No I/O here: the lifespan (``shared.service``) connects, declares the topology, creates the
indexes, starts the metrics refresher and consumes ``stats.events``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from services.stats.api import router as api_router
from services.stats.api_work import router as work_router
from services.stats.deps import StatsDeps
from services.stats.metrics import EventMetrics, MetricsRefresher
from services.stats.store import StatsStore
from services.stats.subscribers import build_router
from shared.service import build_runtime, connect_with_retry, create_service_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.stats.config import StatsSettings
    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "stats"


def create_app(settings: StatsSettings, *, registry: Registry | None = None) -> FastAPI:
    runtime = build_runtime(settings, SERVICE, registry=registry)
    store = StatsStore(runtime.db)
    deps = StatsDeps(
        store=store,
        registry=runtime.registry,
        zone=settings.zone,
        observer=EventMetrics(runtime.metrics),
        prefetch=settings.stats_prefetch,
        batch_max=settings.stats_batch_max,
    )
    runtime.broker.include_router(build_router(deps))
    refresher = MetricsRefresher(
        db=runtime.db,
        registry=runtime.registry,
        metrics=runtime.metrics,
        interval=settings.stats_refresh_seconds,
    )

    async def on_started(rt: ServiceRuntime) -> None:
        await connect_with_retry("mongodb indexes", store.ensure_indexes)
        rt.background.append(asyncio.create_task(refresher.run(), name="stats-metrics-refresh"))

    app = create_service_app(runtime, title="Gridwhistle stats", on_started=on_started)
    app.state.deps = deps
    app.include_router(api_router)
    app.include_router(work_router)
    return app
