"""Real broker users for the connected tests (a module of helpers, no tests of its own)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from shared.broker import make_broker
from shared.management import ManagementApi
from shared.topology import declare_topology, department_permissions, topology_for
from tests import factories

if TYPE_CHECKING:
    from shared.settings import GwSettings


@asynccontextmanager
async def provisioned_department(settings: GwSettings, department_id: str) -> AsyncIterator[str]:
    """The AMQP URL of a fresh user with ``department_permissions(department_id)``, in the test's
    vhost with its topology declared (by an admin, as the services do); the user is deleted after."""
    admin = make_broker(settings, service="test-admin")
    await admin.connect()
    await declare_topology(admin, topology_for(factories.changjia_registry()))
    await admin.stop()
    user, password = f"dept-test-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    async with ManagementApi(settings) as api:
        await api.put_user(user, password)
        await api.set_permissions(user, **department_permissions(department_id))
    parts = urlsplit(settings.amqp_url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))
    finally:
        async with ManagementApi(settings) as api:
            await api.delete_user(user)
