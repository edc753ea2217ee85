"""Machine sources on intake.reports against the real RabbitMQ and the local Mongo-wire store."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aio_pika
import pytest

from shared import topology
from tests.connected.intake_harness import (
    GRID_A,
    EventObserver,
    Intake,
    body_of,
    intake_settings,
    report,
    running_intake,
)

if TYPE_CHECKING:
    from shared.settings import GwSettings

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]


async def send(settings: GwSettings, body: bytes) -> None:
    """What a sensor gateway does: publish a ReportSubmission on gw.intake (confirmed)."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.INTAKE.name)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topology.intake_routing_key("changjia", "sensor"),
            mandatory=True,
        )


async def dead_letters(settings: GwSettings, expect: int, within: float = 10.0) -> list[Any]:
    connection = await aio_pika.connect(settings.amqp_url)
    got: list[Any] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.INTAKE_REPORTS.dead_letter_queue, ensure=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(got) < expect and loop.time() < deadline:
            message = await queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            got.append(message)
    return got


def machine_report(**changes: Any) -> dict[str, Any]:
    return report(origin="machine", reporter_role="sensor", reporter_id="smoke-sensor-17", contact=None, **changes)


async def amqp_outcome(intake: Intake, outcome: str, expect: float, within: float = 10.0) -> None:
    """Wait (bounded) until intake's metrics show ``expect`` AMQP reports with ``outcome``."""
    route = f"amqp:{topology.INTAKE_REPORTS.name}"
    line = f'gridwhistle_intake_requests_total{{outcome="{outcome}",route="{route}"}} {expect}'
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while line not in (text := (await intake.client.get("/metrics")).text):
        assert loop.time() < deadline, f"never saw: {line}\n{text}"
        await asyncio.sleep(0.05)


async def test_machine_report_becomes_one_matter_reported_even_when_sent_twice(settings: GwSettings) -> None:
    submitted = machine_report()
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        await send(settings, json.dumps(submitted).encode())
        await amqp_outcome(intake, "accepted", 1.0)
        await send(settings, json.dumps(submitted).encode())  # the gateway retried
        await amqp_outcome(intake, "duplicate", 1.0)
        got = await events.take(1)
        assert [body_of(m)["report_id"] for m in got] == [submitted["report_id"]]
        event = body_of(got[0])
        assert got[0].routing_key == f"changjia.{GRID_A}.matter_reported"
        assert event["channel"] == "amqp" and event["origin"] == "machine"
        assert await events.count_now() == 0
        assert await dead_letters(settings, expect=1, within=0.2) == []


async def test_invalid_machine_reports_are_dead_lettered_with_the_reason(settings: GwSettings) -> None:
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        await send(settings, json.dumps(machine_report(grid_id="changjia-g999", micro_grid_id=None)).encode())
        await send(settings, json.dumps({k: v for k, v in machine_report().items() if k != "summary"}).encode())
        await send(settings, b"{not json")
        dead = await dead_letters(settings, expect=3)
        reasons = sorted(str(m.headers[topology.HEADER_ERROR]) for m in dead)
        assert len(reasons) == 3
        assert all(m.headers[topology.HEADER_ERROR_TYPE] == "permanent" for m in dead)
        assert all(m.headers[topology.HEADER_SOURCE_QUEUE] == topology.INTAKE_REPORTS.name for m in dead)
        assert any("grid_id: unknown grid 'changjia-g999'" in r for r in reasons), reasons
        assert any("summary: Field required" in r for r in reasons), reasons
        assert any(r.startswith("JSONDecodeError") for r in reasons), reasons
        assert await events.count_now() == 0
        await amqp_outcome(intake, "invalid", 2.0)  # the JSON error never reaches the handler
