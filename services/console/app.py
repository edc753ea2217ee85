"""Wiring of the console: ``create_app(settings)``; ``gridwhistle console serve`` runs it.

No I/O here: the lifespan connects the broker (publishing commands only: the console consumes no
queue) and opens the stats and intake API clients. It has no database: it reads the stats API, hands
grid staff's reports to intake and sends commands; it writes nothing itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from services.console.commands import DepartmentCommands
from services.console.deps import ConsoleDeps
from services.console.handlers import ForbiddenError
from services.console.intake_client import HttpIntakeReporter
from services.console.metrics import ConsoleMetrics
from services.console.stats_client import HttpStatsReader, StatsUnavailableError
from services.console.views import SignInRequiredError, render, request_lang
from services.console.views import router as pages_router
from services.console.views_work import router as work_router
from shared.broker import make_broker
from shared.http import ops_router
from shared.registry import load_registry
from shared.service import connect_with_retry
from shared.topology import EXCHANGES, Topology, declare_topology

if TYPE_CHECKING:
    from services.console.config import ConsoleSettings
    from shared.registry import Registry

SERVICE = "console"
log = logging.getLogger("gridwhistle.console")


class AssetsMissingError(RuntimeError):
    """htmx is not where ``GW_CONSOLE_ASSETS_DIR`` says: ``make install`` (npm ci) puts it there."""


def create_app(settings: ConsoleSettings, *, registry: Registry | None = None) -> FastAPI:
    assets = settings.console_assets_dir
    if not (assets / "htmx.min.js").is_file():
        raise AssetsMissingError(f"{assets / 'htmx.min.js'} is missing: run `make install` (npm ci)")
    registry = registry or load_registry(settings.registry_path)
    metrics_registry = CollectorRegistry(auto_describe=True)
    broker = make_broker(settings, service=SERVICE, metrics_registry=metrics_registry)
    http = httpx.AsyncClient(base_url=settings.console_stats_url, timeout=settings.console_stats_timeout)
    intake_http = httpx.AsyncClient(base_url=settings.console_intake_url, timeout=settings.console_stats_timeout)
    deps = ConsoleDeps(
        stats=HttpStatsReader(http),
        commands=DepartmentCommands(broker),
        registry=registry,
        secrets=settings.verification_secrets(),
        metrics=ConsoleMetrics(metrics_registry),
        clock=lambda: datetime.now(UTC),
        reports=HttpIntakeReporter(intake_http, settings.token_secret),
        zone=settings.zone,
        refresh_seconds=settings.console_refresh_seconds,
        session_hours=settings.console_session_hours,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await connect_with_retry("rabbitmq", broker.connect)
        await declare_topology(broker, Topology(EXCHANGES, ()))  # gw.commands must exist to publish
        await broker.start()
        log.info("service started", extra={"service": SERVICE, "stats_url": settings.console_stats_url})
        try:
            yield
        finally:
            await broker.stop()
            await http.aclose()
            await intake_http.aclose()
            log.info("service stopped", extra={"service": SERVICE})

    async def broker_healthy() -> bool:
        return await broker.ping(timeout=2.0)

    async def stats_healthy() -> bool:
        return (await http.get("/healthz")).status_code == 200

    app = FastAPI(title="Gridwhistle console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.deps = deps
    app.include_router(
        ops_router(SERVICE, metrics_registry, lambda: {"rabbitmq": broker_healthy, "stats": stats_healthy})
    )
    app.include_router(work_router)  # before the pages: /matters/{id}/whistle|reroute are its own
    app.include_router(pages_router)
    app.mount("/assets", StaticFiles(directory=assets), name="assets")
    _refusal_pages(app)
    return app


def _refusal_pages(app: FastAPI) -> None:
    """401 → the sign-in page (htmx follows ``HX-Redirect``), 403 → a page saying why, 503 when
    the stats API is away (the live parts keep polling and recover by themselves)."""

    @app.exception_handler(SignInRequiredError)
    async def sign_in_first(request: Request, _: Exception) -> Response:
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/signin"})
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(ForbiddenError)
    async def forbidden(request: Request, error: Exception) -> HTMLResponse:
        assert isinstance(error, ForbiddenError)
        return render(request, "forbidden.html", request_lang(request), status_code=403, who=None, reason=error.key)

    @app.exception_handler(StatsUnavailableError)
    async def stats_down(request: Request, error: Exception) -> HTMLResponse:
        await asyncio.sleep(0)
        log.warning("stats API unavailable", extra={"error": str(error)})
        return render(request, "forbidden.html", request_lang(request), status_code=503, who=None, reason="stats_down")
