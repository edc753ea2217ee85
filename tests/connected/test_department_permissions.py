"""A department's broker user can do exactly its job — consume its own work queue, send commands —
and the broker refuses the rest (real AMQP connections with the provisioned permissions)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aiormq.exceptions import ChannelAccessRefused

from services.department.client import DepartmentClient
from shared.broker import make_broker, publish_confirmed
from shared.domain import Priority, Tier
from shared.settings import GwSettings
from shared.topology import (
    DISPATCH,
    department_queue,
    dispatch_routing_key,
)
from tests.connected.broker_users import provisioned_department
from tests.connected.stats_harness import Matter

pytestmark = pytest.mark.connected

CIVIL = "changjia.civil_affairs"
PETITIONS = "changjia.petitions"


@pytest.fixture
async def department_url(settings: GwSettings) -> AsyncIterator[str]:
    async with provisioned_department(settings, CIVIL) as url:
        yield url


async def ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    return None


async def refused(url: str, what: str) -> None:
    """Run ``what`` on a fresh channel of ``url`` and expect the broker's ACCESS_REFUSED."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        with pytest.raises(ChannelAccessRefused):
            if what == "delete own queue":
                await channel.queue_delete(department_queue(CIVIL).name)
            elif what == "declare a queue":
                await channel.declare_queue(f"dept.{CIVIL}.mine", durable=True)
            elif what == "consume another department":
                queue = await channel.get_queue(department_queue(PETITIONS).name, ensure=False)
                await queue.consume(ignore)
            elif what == "publish an event":
                exchange = await channel.get_exchange("gw.events", ensure=False)
                await exchange.publish(aio_pika.Message(b"{}"), routing_key="changjia.x.matter_reported")
                await channel.declare_queue(f"probe-{uuid.uuid4().hex}", passive=True)  # the refusal arrives async
    finally:
        await connection.close()


async def test_a_department_consumes_its_own_queue_and_sends_commands(
    settings: GwSettings, department_url: str
) -> None:
    broker = make_broker(settings.model_copy(update={"amqp_url": department_url}), service="test-department")
    client = DepartmentClient(broker, CIVIL)
    client.subscribe()
    await broker.connect()
    await broker.start()  # a passive declare of dept.<id>: no configure rights needed
    admin = make_broker(settings, service="test-dispatch-side")
    await admin.connect()
    try:
        matter = Matter()
        matter.reported()
        dispatched = matter.dispatched(CIVIL)
        await publish_confirmed(  # what dispatch routes to the department's queue
            admin,
            dispatched.model_dump(mode="json"),
            exchange=DISPATCH,
            routing_key=dispatch_routing_key("changjia", Tier.DEPARTMENT, CIVIL, Priority.P2),
        )
        for _ in range(100):
            if dispatched.matter_id in client.items:
                break
            await asyncio.sleep(0.05)
        assert client.items[dispatched.matter_id].role == "lead"
        await client.accept(dispatched.matter_id)  # confirmed by the broker on gw.commands
    finally:
        await admin.stop()
        await broker.stop()


@pytest.mark.parametrize(
    "what", ["delete own queue", "declare a queue", "consume another department", "publish an event"]
)
async def test_a_department_cannot_do_what_is_not_its_job(department_url: str, what: str) -> None:
    await refused(department_url, what)
