"""Stats in-process against the real RabbitMQ and the local Mongo-wire store: backlog, metrics, API contract."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.broker import make_broker, publish_confirmed, publish_event
from shared.contracts import AnyEvent, MatterAccepted, MatterEscalated, MatterResolved
from shared.domain import Priority, Tier
from shared.settings import GwSettings
from shared.topology import DISPATCH, department_queue, dispatch_routing_key
from tests.connected.stats_harness import Matter, eventually, running_stats

pytestmark = pytest.mark.connected

CIVIL = "changjia.civil_affairs"
PETITIONS = "changjia.petitions"


def _metric_values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def _management_queue(settings: GwSettings, queue: str) -> dict[str, Any]:
    parts = urlsplit(settings.amqp_management_url)
    vhost = urlsplit(settings.amqp_url).path[1:]
    response = httpx.get(
        f"{parts.scheme}://{parts.hostname}:{parts.port}/api/queues/{vhost}/{quote(queue, safe='')}",
        auth=(parts.username or "guest", parts.password or "guest"),
        timeout=5.0,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def test_department_with_seven_unaccepted_matters_shows_seven_in_backlog_and_metrics(
    settings: GwSettings,
) -> None:
    events: list[AnyEvent] = []
    for i in range(7):
        m = Matter()
        events += [m.reported(), m.dispatched(CIVIL, [PETITIONS] if i < 2 else None)]
        if i == 0:
            events.append(m.next(MatterEscalated, round=1, level=1, deadline="accept", owner=CIVIL, due_at=m.t))
    accepted = Matter()
    events += [accepted.reported(), accepted.dispatched(CIVIL)]
    events.append(accepted.next(MatterAccepted, round=1, by=CIVIL, role="lead"))
    done = Matter()
    events += [done.reported(), done.dispatched(CIVIL)]
    events.append(done.next(MatterAccepted, round=1, by=CIVIL, role="lead"))
    events.append(done.next(MatterResolved, round=1, by=CIVIL, role="lead"))

    async with running_stats(settings) as (_app, client):
        publisher = make_broker(settings, service="test-publisher")
        await publisher.connect()
        try:
            for event in events:
                await publish_event(publisher, event)
            for n in range(7):  # what dispatch would have routed to the department's queue
                await publish_confirmed(
                    publisher,
                    {"n": n},
                    exchange=DISPATCH,
                    routing_key=dispatch_routing_key("changjia", Tier.DEPARTMENT, CIVIL, Priority.P2),
                )
        finally:
            await publisher.stop()

        expected_row = {
            "department_id": CIVIL,
            "open": 8,
            "unaccepted": 7,
            "by_lateness": {"on_time": 7, "overdue_l1": 1, "overdue_l2": 0, "overdue_l3": 0},
        }

        async def civil_backlog() -> tuple[bool, dict[str, Any]]:
            body = (await client.get("/v1/backlog", params={"town_id": "changjia"})).json()
            row: dict[str, Any] = next(r for r in body["departments"] if r["department_id"] == CIVIL)
            return {k: row[k] for k in expected_row} == expected_row, row

        row = await eventually(civil_backlog, f"{expected_row} in /v1/backlog")
        assert row["oldest_open_age_seconds"] > 0
        petitions = (await client.get("/v1/stats/departments/" + PETITIONS)).json()
        assert petitions["backlog"]["unaccepted"] == 2

        queue_name = department_queue(CIVIL).name
        civil_labels = (("department", CIVIL), ("town", "changjia"))

        async def metrics_settled() -> tuple[bool, Any]:
            text = (await client.get("/metrics")).text
            unaccepted = _metric_values(text, "gridwhistle_unaccepted_matters").get(civil_labels)
            open_matters = sum(
                v for k, v in _metric_values(text, "gridwhistle_open_matters").items() if dict(k)["department"] == CIVIL
            )
            breaches_total = _metric_values(text, "gridwhistle_sla_breaches_total")
            breaches = breaches_total.get((("deadline", "accept"), *civil_labels))
            # the queue depth itself is RabbitMQ's own metric (rabbitmq_prometheus), not stats'
            broker_ready = _management_queue(settings, queue_name).get("messages_ready")
            figures = (unaccepted, open_matters, breaches, broker_ready)
            return figures == (7, 8, 1, 7), (text, figures)

        text, _ = await eventually(metrics_settled, "unaccepted 7, open 8, 1 breach, 7 ready in the department queue")
        open_by_lateness = {
            dict(k)["lateness"]: v
            for k, v in _metric_values(text, "gridwhistle_open_matters").items()
            if dict(k)["department"] == CIVIL
        }
        assert open_by_lateness == {"on_time": 7, "overdue_l1": 1, "overdue_l2": 0, "overdue_l3": 0}
        assert _metric_values(text, "gridwhistle_read_model_snapshot_up") == {(): 1.0}
        assert "gridwhistle_department_queue_messages" not in text  # RabbitMQ exports queue depths once
        promtool = await asyncio.create_subprocess_exec(
            "/usr/bin/promtool",
            "check",
            "metrics",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        lint, _ = await promtool.communicate(text.encode())
        assert (promtool.returncode, lint.decode()) == (0, "")
        assert not any(
            "matter_id" in line or "changjia-g0" in line
            for line in text.splitlines()
            if line.startswith("gridwhistle_")
        )


async def test_api_answers_404_for_unknown_ids_and_422_naming_a_bad_date(settings: GwSettings) -> None:
    async with running_stats(settings) as (_, client):
        assert (await client.get(f"/v1/matters/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/v1/stats/towns/atlantis")).status_code == 404
        assert (await client.get("/v1/stats/grids/changjia-g999")).status_code == 404
        assert (await client.get("/v1/stats/departments/changjia.nothing")).status_code == 404
        assert (await client.get("/v1/backlog", params={"town_id": "atlantis"})).status_code == 404
        bad = await client.get("/v1/stats/towns/changjia", params={"from": "2026-13-01"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "from"
        reversed_period = await client.get(
            "/v1/stats/grids/changjia-g001", params={"from": "2026-11-20", "to": "2026-11-01"}
        )
        assert reversed_period.status_code == 422
        assert reversed_period.json()["errors"][0]["field"] == "from"
        empty = await client.get("/v1/stats/towns/changjia", params={"from": "2026-11-01", "to": "2026-11-30"})
        assert empty.status_code == 200
        assert empty.json()["kpis"]["reported"] == 0
        assert empty.json()["kpis"]["closure_rate"] is None
