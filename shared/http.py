"""HTTP pieces every service serves the same way: probes, ``/metrics``, a latency histogram.

Probes: ``/livez`` answers 200 while the process's event loop runs (liveness: only a wedged
process is restarted); ``/readyz`` answers 200 when every dependency answers and the service is
not shutting down, else 503 (readiness: a broker or store outage takes the pod out of service,
it does not restart it). ``/healthz`` is ``/readyz`` under its older name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

HealthCheck = Callable[[], Awaitable[bool]]
HEALTH_CHECK_TIMEOUT = 3.0


class Liveness(BaseModel):
    service: str
    status: Literal["alive"]


class Health(BaseModel):
    service: str
    status: Literal["ok", "degraded", "draining"]
    checks: dict[str, str] = Field(description="Per dependency: `ok`, `down` or the error's type")


async def _run_check(check: HealthCheck) -> tuple[bool, str]:
    try:
        ok = await asyncio.wait_for(check(), timeout=HEALTH_CHECK_TIMEOUT)
    except Exception as error:  # a failing dependency is a health answer, not a crash
        return False, type(error).__name__
    return ok, "ok" if ok else "down"


def ops_router(
    service: str,
    metrics_registry: CollectorRegistry,
    checks: Callable[[], Mapping[str, HealthCheck]],
    *,
    draining: Callable[[], bool] = lambda: False,
) -> APIRouter:
    """``/livez``, ``/readyz`` (and ``/healthz``) and ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/livez", response_model=Liveness)
    async def livez() -> JSONResponse:
        return JSONResponse({"service": service, "status": "alive"})

    async def readiness() -> JSONResponse:
        current = checks()
        results = await asyncio.gather(*(_run_check(c) for c in current.values()))
        detail = {name: text for name, (_, text) in zip(current, results, strict=True)}
        healthy = all(ok for ok, _ in results)
        status = "draining" if draining() else "ok" if healthy else "degraded"
        return JSONResponse(
            {"service": service, "status": status, "checks": detail},
            status_code=200 if status == "ok" else 503,
        )

    for path in ("/readyz", "/healthz"):
        router.add_api_route(
            path,
            readiness,
            methods=["GET"],
            response_model=Health,
            responses={503: {"model": Health, "description": "A dependency does not answer, or draining"}},
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return router


HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"
"""``route`` of a request no route matched (404s for random paths stay one series)."""


class HttpMetricsMiddleware:
    """``gridwhistle_http_request_duration_seconds{service,method,route,status}``, per replica.

    A plain ASGI middleware (no per-request task or body buffering). ``route`` is the matched
    route's template (``/v1/matters/{matter_id}``), never the raw path, so labels stay bounded.
    """

    def __init__(self, app: ASGIApp, *, service: str, registry: CollectorRegistry) -> None:
        self.app = app
        self.service = service
        self.duration = Histogram(
            "gridwhistle_http_request_duration_seconds",
            "HTTP requests by route template and status, seconds until the response was sent (per replica)",
            ["service", "method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started is what the client sees as 500

        async def send_and_time(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_time)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.duration.labels(self.service, scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
