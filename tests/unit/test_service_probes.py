"""Probes and the shutdown budget every service shares (shared.http, shared.settings)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.http import ops_router
from shared.settings import GwSettings

pytestmark = pytest.mark.unit


async def up() -> bool:
    return True


async def broker_away() -> bool:
    raise ConnectionError("broker unreachable")


def client(*, broker_ok: bool, draining: bool = False) -> httpx.AsyncClient:
    app = FastAPI()
    checks = {"rabbitmq": up if broker_ok else broker_away, "mongodb": up}
    app.include_router(ops_router("test", CollectorRegistry(), lambda: checks, draining=lambda: draining))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_a_broker_outage_makes_the_service_unready_but_not_dead() -> None:
    async with client(broker_ok=False) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"rabbitmq": "ConnectionError", "mongodb": "ok"}
        assert (await http.get("/livez")).status_code == 200
        assert (await http.get("/healthz")).status_code == 503  # the older name of readiness


async def test_a_healthy_service_is_ready_until_it_starts_draining() -> None:
    async with client(broker_ok=True) as http:
        assert (await http.get("/readyz")).status_code == 200
    async with client(broker_ok=True, draining=True) as http:
        answer = await http.get("/readyz")
        assert (answer.status_code, answer.json()["status"]) == (503, "draining")
        assert (await http.get("/livez")).status_code == 200


@pytest.mark.parametrize("budget", [20.0, 8.0, 60.0])
def test_the_shutdown_phases_fit_the_configured_budget(budget: float) -> None:
    http, messages = GwSettings(graceful_timeout=budget).shutdown_budget
    assert 0 < http <= 5.0 and messages > 0
    assert http + messages == pytest.approx(budget)
