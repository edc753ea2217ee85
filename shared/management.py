"""A small client for RabbitMQ's management HTTP API: queue depths, vhosts, users.

Used by stats (queue-depth gauges), the ``dlq``/``users`` commands and the simulator; the blocking
vhost helpers of the simulator and the tests are ``tools.vhosts``. Every call
has a bounded timeout; the URL comes from ``GwSettings.amqp_management_url`` and the
vhost from ``GwSettings.amqp_url``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

if TYPE_CHECKING:
    from shared.settings import GwSettings

TIMEOUT = httpx.Timeout(5.0)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    ready: int
    unacked: int
    consumers: int


def vhost_of(amqp_url: str) -> str:
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def connection_options(settings: GwSettings) -> dict[str, Any]:
    """``base_url``, ``auth`` and ``timeout`` for an httpx client of the management API."""
    parts = urlsplit(settings.amqp_management_url)
    host = parts.hostname or "127.0.0.1"
    base = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, "", "", ""))
    return {"base_url": base, "auth": (parts.username or "guest", parts.password or "guest"), "timeout": TIMEOUT}


class ManagementApi:
    """Async client; use as ``async with ManagementApi(settings) as api:``."""

    def __init__(self, settings: GwSettings) -> None:
        self.vhost = vhost_of(settings.amqp_url)
        self._client = httpx.AsyncClient(**connection_options(settings))

    async def __aenter__(self) -> ManagementApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    def _vh(self, vhost: str | None = None) -> str:
        return quote(vhost or self.vhost, safe="")

    async def queues(self, prefix: str = "") -> list[QueueDepth]:
        response = await self._client.get(
            f"/api/queues/{self._vh()}",
            params={"columns": "name,messages_ready,messages_unacknowledged,consumers"},
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return [
            QueueDepth(
                r["name"],
                int(r.get("messages_ready") or 0),
                int(r.get("messages_unacknowledged") or 0),
                int(r.get("consumers") or 0),
            )
            for r in rows
            if r["name"].startswith(prefix)
        ]

    async def queue(self, name: str) -> QueueDepth:
        response = await self._client.get(f"/api/queues/{self._vh()}/{quote(name, safe='')}")
        response.raise_for_status()
        r = response.json()
        return QueueDepth(
            r["name"],
            int(r.get("messages_ready") or 0),
            int(r.get("messages_unacknowledged") or 0),
            int(r.get("consumers") or 0),
        )

    async def put_user(self, user: str, password: str, tags: str = "") -> None:
        response = await self._client.put(
            f"/api/users/{quote(user, safe='')}", json={"password": password, "tags": tags}
        )
        response.raise_for_status()

    async def delete_user(self, user: str) -> None:
        response = await self._client.delete(f"/api/users/{quote(user, safe='')}")
        if response.status_code != 404:
            response.raise_for_status()

    async def set_permissions(self, user: str, *, configure: str, write: str, read: str) -> None:
        response = await self._client.put(
            f"/api/permissions/{self._vh()}/{quote(user, safe='')}",
            json={"configure": configure, "write": write, "read": read},
        )
        response.raise_for_status()
