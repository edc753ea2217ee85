"""A department's broker user (shared.topology.department_permissions) can do what its client does
— declare and bind its queue, consume, send commands — and cannot read another department's queue."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiormq
import pytest

from services.department.client import DepartmentClient, WorkItem
from shared import topology
from shared.broker import make_broker, publish_confirmed
from shared.contracts import MatterDispatched
from shared.management import ManagementApi
from shared.registry import load_registry
from shared.settings import GwSettings
from shared.topology import DISPATCH, department_queue, dispatch_routing_key
from tests.connected.test_stats_backlog import CIVIL, PETITIONS, Matter

pytestmark = pytest.mark.connected


def as_user(settings: GwSettings, user: str, password: str) -> GwSettings:
    url = urlsplit(settings.amqp_url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{url.hostname}:{url.port or 5672}"
    return settings.model_copy(update={"amqp_url": urlunsplit((url.scheme, netloc, url.path, "", ""))})


async def test_a_department_user_works_its_own_queue_and_cannot_read_another(settings: GwSettings) -> None:
    user, password = topology.department_user(CIVIL), secrets.token_urlsafe(12)
    async with ManagementApi(settings) as api:
        await api.put_user(user, password)
        await api.set_permissions(user, **topology.department_permissions(CIVIL))
    admin = make_broker(settings, service="permissions-test-admin")
    await admin.connect()
    await topology.declare_topology(admin, topology.topology_for(load_registry(settings.registry_path)))

    department = make_broker(as_user(settings, user, password), service="permissions-test-department")
    client = DepartmentClient(department, CIVIL)
    arrived: asyncio.Queue[WorkItem] = asyncio.Queue()

    async def on_item(item: WorkItem, event: Any) -> None:
        await arrived.put(item)

    client.on_item = on_item
    client.subscribe()
    try:
        await department.connect()
        await client.declare()  # configure + bind with the department's own user
        await department.start()
        matter = Matter()
        matter.reported()
        dispatched = matter.dispatched(CIVIL)
        assert isinstance(dispatched, MatterDispatched)
        await publish_confirmed(
            admin,
            dispatched.model_dump(mode="json"),
            exchange=DISPATCH,
            routing_key=dispatch_routing_key("changjia", dispatched.tier, CIVIL, dispatched.priority),
        )
        item = await asyncio.wait_for(arrived.get(), timeout=20)
        assert item.matter_id == matter.id
        await client.accept(matter.id)  # write on gw.commands, confirmed and routed

        async with ManagementApi(settings) as api:
            for _ in range(50):
                if (await api.queue("dispatch.commands")).ready >= 1:
                    break
                await asyncio.sleep(0.2)
            assert (await api.queue("dispatch.commands")).ready >= 1

        connection = await aio_pika.connect(as_user(settings, user, password).amqp_url)
        try:
            channel = await connection.channel()
            other = await channel.get_queue(department_queue(PETITIONS).name, ensure=True)  # passive
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await other.get(fail=False)
        finally:
            await connection.close()
    finally:
        await department.stop()
        await admin.stop()
