"""HTTP pieces every service serves the same way: ``/healthz``, ``/metrics`` and the server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

HealthCheck = Callable[[], Awaitable[bool]]
HEALTH_CHECK_TIMEOUT = 3.0


class Health(BaseModel):
    service: str
    status: Literal["ok", "degraded"]
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
) -> APIRouter:
    """``/healthz`` (200 when every dependency answers, else 503) and ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "A dependency does not answer"}},
    )
    async def healthz() -> JSONResponse:
        current = checks()
        results = await asyncio.gather(*(_run_check(c) for c in current.values()))
        detail = {name: text for name, (_, text) in zip(current, results, strict=True)}
        healthy = all(ok for ok, _ in results)
        return JSONResponse(
            {"service": service, "status": "ok" if healthy else "degraded", "checks": detail},
            status_code=200 if healthy else 503,
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
