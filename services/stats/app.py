"""Wiring of the stats service: runtime, subscriber, API, metrics; ``main()`` serves it on 8030.

Run it with ``python -m services.stats.app`` or ``gridwhistle stats serve``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.stats.api import router as api_router
from services.stats.batcher import EventBatcher
from services.stats.config import StatsSettings
from services.stats.handlers import when_events_arrive_update_read_models
from services.stats.metrics import EventMetrics, MetricsRefresher
from services.stats.store import StatsStore
from services.stats.subscribers import build_router
from shared.logging import configure_logging
from shared.service import build_runtime, connect_with_retry, create_service_app, serve

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import FastAPI

    from shared.contracts import AnyEvent
    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "stats"


@dataclass(frozen=True)
class StatsService:
    """The consumer's dependencies, bound once per process."""

    runtime: ServiceRuntime
    settings: StatsSettings
    store: StatsStore
    event_metrics: EventMetrics
    refresher: MetricsRefresher
    batcher: EventBatcher[AnyEvent] = field(init=False)

    def __post_init__(self) -> None:
        batcher = EventBatcher(
            self.apply_events, key=lambda e: str(e.message_id), max_batch=self.settings.stats_batch_max
        )
        object.__setattr__(self, "batcher", batcher)

    async def apply_events(self, events: Sequence[AnyEvent]) -> set[str]:
        return await when_events_arrive_update_read_models(
            events,
            store=self.store,
            registry=self.runtime.registry,
            zone=self.settings.zone,
            observer=self.event_metrics,
        )

    async def on_event(self, event: AnyEvent) -> bool:
        """Applied with the batch it joins; acknowledged (by returning) only once that batch committed."""
        return await self.batcher.apply(event)

    async def on_started(self, runtime: ServiceRuntime) -> None:
        await connect_with_retry("mongodb indexes", self.store.ensure_indexes)
        runtime.background.append(asyncio.create_task(self.refresher.run(), name="stats-metrics-refresh"))


def create_app(settings: StatsSettings | None = None, *, registry: Registry | None = None) -> FastAPI:
    """The stats app (no I/O here: the lifespan connects, declares the topology, consumes)."""
    settings = settings or StatsSettings()
    runtime = build_runtime(settings, SERVICE, registry=registry)
    service = StatsService(
        runtime=runtime,
        settings=settings,
        store=StatsStore(runtime.db),
        event_metrics=EventMetrics(runtime.metrics),
        refresher=MetricsRefresher(
            db=runtime.db,
            registry=runtime.registry,
            settings=settings,
            metrics=runtime.metrics,
            interval=settings.stats_refresh_seconds,
            timeout=settings.stats_management_timeout,
        ),
    )
    runtime.broker.include_router(build_router(service.on_event, prefetch=settings.stats_prefetch))
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
