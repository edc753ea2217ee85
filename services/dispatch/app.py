"""Dispatch service wiring: ``create_app(settings)``; ``gridwhistle dispatch serve`` runs it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from services.dispatch.config import DispatchSettings
from services.dispatch.deps import DispatchDeps, broker_publisher, system_clock
from services.dispatch.handlers import run_sweeper
from services.dispatch.metrics import DispatchMetrics
from services.dispatch.rules import load_rules
from services.dispatch.store import CaseStore
from services.dispatch.subscribers import build_router
from shared.catalogue import DISPATCH_EVENT_TYPES, declare_event_publishers, declare_work_publishers
from shared.service import build_runtime, create_service_app

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from fastapi import FastAPI

    from services.dispatch.config import DispatchSettings
    from shared.registry import Registry
    from shared.service import ServiceRuntime

SERVICE = "dispatch"


def create_app(
    settings: DispatchSettings,
    *,
    registry: Registry | None = None,
    clock: Callable[[], datetime] = system_clock,
    sweeper: bool = True,
) -> FastAPI:
    """The dispatch app; the rules are validated here, so a bad rules file fails at start."""
    runtime = build_runtime(settings, SERVICE, registry=registry)
    store = CaseStore(runtime.db)
    deps = DispatchDeps(
        store=store,
        publish=broker_publisher(runtime.broker),
        rules=load_rules(settings.rules_path, runtime.registry),
        registry=runtime.registry,
        metrics=DispatchMetrics(runtime.metrics),
        clock=clock,
        park_timeout=timedelta(seconds=settings.park_timeout),
        outbox_grace=timedelta(seconds=settings.outbox_grace),
        max_retries=settings.max_cas_retries,
        prefetch=settings.prefetch,
    )
    runtime.broker.include_router(build_router(deps))
    declare_event_publishers(runtime.broker, DISPATCH_EVENT_TYPES)  # what dispatch sends (AsyncAPI)
    declare_work_publishers(runtime.broker)

    async def on_started(rt: ServiceRuntime) -> None:
        await store.ensure_indexes()
        if sweeper:
            rt.background.append(asyncio.create_task(run_sweeper(deps, settings.sweep_interval)))

    app = create_service_app(runtime, title="Gridwhistle dispatch", on_started=on_started)
    app.state.deps = deps
    return app
