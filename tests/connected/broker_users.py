"""Real broker users for the connected tests (a module of helpers, no tests of its own)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

import aio_pika

from shared.broker import make_broker
from shared.management import ManagementApi
from shared.topology import INTAKE_REPORTS, declare_topology, department_permissions, topology_for
from tests import factories

if TYPE_CHECKING:
    from shared.settings import GwSettings


@asynccontextmanager
async def provisioned_department(settings: GwSettings, department_id: str) -> AsyncIterator[str]:
    """The AMQP URL of a fresh user with ``department_permissions(department_id)``, in the test's
    vhost with its topology declared (by an admin, as the services do); the user is deleted after."""
    async with provisioned_user(settings, department_permissions(department_id)) as url:
        yield url


@asynccontextmanager
async def provisioned_user(settings: GwSettings, permissions: dict[str, str]) -> AsyncIterator[str]:
    """The AMQP URL of a fresh user with these permissions in the test's vhost, whose whole
    topology an admin declared first; the user is deleted after."""
    admin = make_broker(settings, service="test-admin")
    await admin.connect()
    await declare_topology(admin, topology_for(factories.changjia_registry()))
    await admin.stop()
    user, password = f"role-test-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    async with ManagementApi(settings) as api:
        await api.put_user(user, password)
        await api.set_permissions(user, **permissions)
    parts = urlsplit(settings.amqp_url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))
    finally:
        async with ManagementApi(settings) as api:
            await api.delete_user(user)


@dataclass(frozen=True)
class Attempt:
    """One thing a broker user tries on a fresh channel: consume, publish, declare, delete or purge."""

    action: Literal["consume", "publish", "declare", "delete", "purge"]
    target: str
    routing_key: str = "changjia.test"

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


async def _ignore(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.reject(requeue=True)


async def attempt(url: str, what: Attempt) -> None:
    """Do ``what`` as the user of ``url``; raises ``ChannelAccessRefused`` when the broker refuses it."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        if what.action == "consume":
            queue = await channel.get_queue(what.target, ensure=False)
            tag = await queue.consume(_ignore)
            await queue.cancel(tag)
        elif what.action == "publish":
            exchange = await channel.get_exchange(what.target, ensure=False)
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=what.routing_key)
            # A refused publish closes the channel asynchronously: a passive declare of a queue that
            # always exists (no permission needed) waits for it.
            await channel.declare_queue(INTAKE_REPORTS.name, passive=True)
        elif what.action == "declare":
            await channel.declare_queue(what.target, durable=True, arguments={"x-queue-type": "quorum"})
        elif what.action == "delete":
            await channel.queue_delete(what.target)
        else:
            queue = await channel.get_queue(what.target, ensure=False)
            await queue.purge()
    finally:
        await connection.close()
