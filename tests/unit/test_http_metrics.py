"""Every service's HTTP latency histogram: labelled by route template, bounded."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry

from shared.http import UNMATCHED, HttpMetricsMiddleware

pytestmark = pytest.mark.unit


def app_with_metrics() -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware, service="stats", registry=registry)

    @app.get("/v1/matters/{matter_id}")
    async def matter(matter_id: str) -> dict[str, str]:
        if matter_id == "missing":
            raise HTTPException(404)
        return {"matter_id": matter_id}

    return app, registry


def count(registry: CollectorRegistry, **labels: str) -> float:
    value = registry.get_sample_value("gridwhistle_http_request_duration_seconds_count", labels)
    return value or 0.0


async def test_requests_are_timed_by_route_template_not_by_path() -> None:
    app, registry = app_with_metrics()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for matter_id in ("a", "b", "c", "missing"):
            await client.get(f"/v1/matters/{matter_id}")
        await client.get("/no/such/path")
    route = "/v1/matters/{matter_id}"
    assert count(registry, service="stats", method="GET", route=route, status="200") == 3
    assert count(registry, service="stats", method="GET", route=route, status="404") == 1
    assert count(registry, service="stats", method="GET", route=UNMATCHED, status="404") == 1
    routes = {s.labels["route"] for metric in registry.collect() for s in metric.samples if s.name.endswith("_count")}
    assert routes == {route, UNMATCHED}
