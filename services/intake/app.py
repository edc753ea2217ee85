"""Wiring of the intake service: one process serving HTTP (FastAPI) and AMQP (FastStream).

``create_app(settings)`` builds everything without I/O; the lifespan (``shared.service``)
connects, declares the topology, creates intake's indexes and starts consuming
``intake.reports``. ``gridwhistle intake serve`` runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.intake import api, open311, open311_discovery
from services.intake.deps import IntakeDeps
from services.intake.handlers import timed_publisher
from services.intake.metrics import IntakeMetrics
from services.intake.store import ReportStore
from services.intake.subscribers import build_router
from services.intake.views import RequestViews
from shared.catalogue import declare_event_publishers
from shared.contracts import ReportSubmission
from shared.problems import with_component_schemas
from shared.service import build_runtime, create_service_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.intake.config import IntakeSettings
    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "intake"


def create_app(settings: IntakeSettings, *, registry: Registry | None = None) -> FastAPI:
    runtime = build_runtime(settings, SERVICE, registry=registry)
    metrics = IntakeMetrics(runtime.metrics)
    store = ReportStore(runtime.db)
    deps = IntakeDeps(
        settings=settings,
        registry=runtime.registry,
        store=store,
        views=RequestViews(runtime.db, store),
        publish=timed_publisher(runtime.broker, metrics.publish_confirm, confirm_timeout=settings.publish_timeout),
        metrics=metrics,
    )
    runtime.broker.include_router(build_router(deps))
    declare_event_publishers(runtime.broker, ["matter_reported"])  # what intake sends (AsyncAPI)

    async def on_started(_: ServiceRuntime) -> None:
        await store.ensure_indexes()

    app = create_service_app(runtime, title="Gridwhistle intake", on_started=on_started)
    app.state.deps = deps
    app.include_router(api.router)
    app.include_router(open311.router)
    app.include_router(open311_discovery.router)
    with_component_schemas(app, ReportSubmission, api.ReportBatch)
    return app
