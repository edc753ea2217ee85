"""A small client for RabbitMQ's management HTTP API: queue depths, vhosts, users.

Used by stats (queue-depth gauges), the ``dlq``/``users`` commands and tests. Every call
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


class ManagementApi:
    """Async client; use as ``async with ManagementApi(settings) as api:``."""

    def __init__(self, settings: GwSettings) -> None:
        parts = urlsplit(settings.amqp_management_url)
        host = parts.hostname or "127.0.0.1"
        base = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, "", "", ""))
        self.vhost = vhost_of(settings.amqp_url)
        self._client = httpx.AsyncClient(
            base_url=base, auth=(parts.username or "guest", parts.password or "guest"), timeout=TIMEOUT
        )

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

    async def set_permissions(self, user: str, *, configure: str, write: str, read: str) -> None:
        response = await self._client.put(
            f"/api/permissions/{self._vh()}/{quote(user, safe='')}",
            json={"configure": configure, "write": write, "read": read},
        )
        response.raise_for_status()


def management_client(settings: GwSettings) -> httpx.Client:
    """A blocking management API client (for tools and test set-up, not the event loop)."""
    parts = urlsplit(settings.amqp_management_url)
    host = parts.hostname or "127.0.0.1"
    base = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, "", "", ""))
    return httpx.Client(base_url=base, auth=(parts.username or "guest", parts.password or "guest"), timeout=TIMEOUT)


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


def delete_vhost(settings: GwSettings, vhost: str) -> None:
    with management_client(settings) as client:
        client.delete(f"/api/vhosts/{quote(vhost, safe='')}")
