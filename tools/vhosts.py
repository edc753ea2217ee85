"""Throw-away RabbitMQ virtual hosts for the simulator's sandboxes and the connected tests.

Blocking calls on the management API (set-up code, never inside a service's event loop); the URL
and credentials come from ``shared.management.connection_options``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from shared.management import connection_options

if TYPE_CHECKING:
    from shared.settings import GwSettings


def management_client(settings: GwSettings) -> httpx.Client:
    """A blocking management API client (for tools and test set-up, not the event loop)."""
    return httpx.Client(**connection_options(settings))


def create_vhost(settings: GwSettings, vhost: str) -> str:
    """Create ``vhost``, grant the URL's user everything on it; returns the AMQP URL for it."""
    user = urlsplit(settings.amqp_url).username or "guest"
    with management_client(settings) as client:
        client.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
        client.put(
            f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
    a = urlsplit(settings.amqp_url)
    return urlunsplit((a.scheme, a.netloc, "/" + quote(vhost, safe=""), "", ""))


DELETE_TIMEOUT = 180.0
"""Deleting a vhost deletes its queues: on a cluster, hundreds of quorum queues take a while."""


async def declare_registry_topology(settings: GwSettings) -> int:
    """The operator's step: declare the whole topology of ``settings.registry_path`` (every queue of
    every service and department) on the broker of ``settings.amqp_url``; returns the queue count.

    Services re-declare only the queues they own at start; the rest must exist before anyone
    publishes to it (in production: RabbitMQ definitions, the topology operator or
    ``gridwhistle topology declare``; locally: ``gridwhistle run``, the sandboxes, the tests)."""
    from shared.broker import make_broker
    from shared.registry import load_registry
    from shared.topology import declare_topology, topology_for

    whole = topology_for(load_registry(settings.registry_path))
    broker = make_broker(settings, service="admin")
    await broker.connect()
    try:
        await declare_topology(broker, whole)
    finally:
        await broker.stop()
    return len(whole.all_queues())


def declare_registry_topology_blocking(settings: GwSettings) -> int:
    """:func:`declare_registry_topology` from synchronous set-up code (in a thread of its own, so it
    works whether or not the caller runs an event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, declare_registry_topology(settings)).result()


def delete_vhost(settings: GwSettings, vhost: str) -> None:
    with management_client(settings) as client:
        client.delete(f"/api/vhosts/{quote(vhost, safe='')}", timeout=DELETE_TIMEOUT)


def create_user(settings: GwSettings, vhost: str, user: str, password: str, permissions: dict[str, str]) -> str:
    """Create ``user`` with ``permissions`` (configure/write/read regexes) on ``vhost``; its AMQP URL."""
    with management_client(settings) as client:
        client.put(f"/api/users/{quote(user, safe='')}", json={"password": password, "tags": ""}).raise_for_status()
        client.put(
            f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", json=permissions
        ).raise_for_status()
    a = urlsplit(settings.amqp_url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{a.hostname}:{a.port or 5672}"
    return urlunsplit((a.scheme, netloc, "/" + quote(vhost, safe=""), "", ""))


def delete_user(settings: GwSettings, user: str) -> None:
    with management_client(settings) as client:
        client.delete(f"/api/users/{quote(user, safe='')}")
