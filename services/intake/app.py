"""Wiring of the intake service: one process serving HTTP (FastAPI) and AMQP (FastStream).

``create_app(settings)`` builds everything without I/O; the lifespan (``shared.service``)
connects, declares the topology, creates intake's indexes and starts consuming
``intake.reports``. ``main()`` runs it on ``GW_INTAKE_PORT`` (8010).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.intake import api, open311
from services.intake.config import IntakeSettings
from services.intake.deps import IntakeContext
from services.intake.handlers import timed_publisher
from services.intake.metrics import IntakeMetrics
from services.intake.store import ReportStore
from services.intake.subscribers import build_router
from services.intake.views import RequestViews
from shared.logging import configure_logging
from shared.service import build_runtime, create_service_app, serve

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "intake"


def create_app(settings: IntakeSettings | None = None, *, registry: Registry | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = build_runtime(settings, SERVICE, registry=registry)
    metrics = IntakeMetrics(runtime.metrics)
    store = ReportStore(runtime.db)
    publish = timed_publisher(runtime.broker, metrics.publish_confirm)
    runtime.broker.include_router(
        build_router(settings, registry=runtime.registry, store=store, publish=publish, metrics=metrics)
    )

    async def on_started(_: ServiceRuntime) -> None:
        await store.ensure_indexes()

    app = create_service_app(runtime, title="Gridwhistle intake", on_started=on_started)
    app.state.intake = IntakeContext(
        settings=settings,
        registry=runtime.registry,
        store=store,
        views=RequestViews(runtime.db, store),
        publish=publish,
        metrics=metrics,
    )
    app.include_router(api.router)
    app.include_router(open311.router)
    return app


def main(port: int | None = None) -> None:
    settings = IntakeSettings()
    configure_logging(SERVICE, level=settings.log_level, fmt=settings.log_format)
    serve(create_app(settings), port=port or settings.intake_port, graceful_timeout=settings.graceful_timeout)


if __name__ == "__main__":
    main()
