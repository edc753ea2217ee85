"""Helpers for intake's connected tests (no tests here): the app with a real broker and store,
a bound observer queue on ``gw.events``, and a TCP proxy that can cut the broker off."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import httpx

from services.intake.app import create_app
from services.intake.config import IntakeSettings
from services.intake.tokens import issue_token
from shared import topology
from shared.registry import Registry
from tests.factories import changjia_registry
from tools.vhosts import declare_registry_topology

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from shared.settings import GwSettings

TEST_SECRET = "intake-connected-test-secret-0123456789"
GRID_A = "changjia-g001"
GRID_B = "changjia-g002"


@functools.cache
def changjia() -> Registry:
    return changjia_registry()


def intake_settings(settings: GwSettings, **overrides: Any) -> IntakeSettings:
    values = {**settings.model_dump(), "token_secret": TEST_SECRET, **overrides}
    return IntakeSettings.model_validate(values)


def grid_token(grid_id: str = GRID_A, *, secret: str = TEST_SECRET) -> dict[str, str]:
    from pydantic import SecretStr

    token = issue_token(SecretStr(secret), town_id="changjia", grid_id=grid_id)
    return {"Authorization": f"Bearer {token}"}


def report(report_id: str | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": report_id or f"r-{uuid.uuid4().hex[:10]}",
        "town_id": "changjia",
        "grid_id": GRID_A,
        "micro_grid_id": f"{GRID_A}-m1",
        "category": "safety_hazard",
        "severity": "major",
        "origin": "grid_inspection",
        "summary": "Loose power line over the lane behind the school",
        "location": {"lat": 37.71, "long": 117.38, "address": "Lane 3"},
        "reporter_id": f"{GRID_A}-member1",
        "reporter_role": "grid_member",
        "contact": {"name": "Li Wei", "phone": "13800000000", "email": "li@example.org"},
        "attachments": ["https://files.example.org/photo1.jpg"],
        "occurred_at": "2026-03-01T08:30:00+08:00",
    }
    body.update(changes)
    return body


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IntakeSettings


@asynccontextmanager
async def running_intake(settings: IntakeSettings) -> AsyncIterator[Intake]:
    """The real app (lifespan: broker, topology, store) behind an in-process HTTP client."""
    await declare_registry_topology(settings)  # the operator's step: every queue exists first
    app = create_app(settings, registry=changjia())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake.test") as client:
            yield Intake(app, client, settings)


class EventObserver:
    """A queue of its own bound to ``gw.events`` with ``#``: every event the test causes."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self.queue: aio_pika.abc.AbstractQueue | None = None

    async def __aenter__(self) -> EventObserver:
        self.connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(topology.EVENTS.name, aio_pika.ExchangeType.TOPIC, durable=True)
        self.queue = await channel.declare_queue(f"test.observer.{uuid.uuid4().hex[:8]}", exclusive=True)
        await self.queue.bind(exchange, routing_key="#")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def take(self, expect: int, *, within: float = 10.0) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Wait (bounded) until ``expect`` messages arrived; return them all."""
        assert self.queue is not None
        got: list[aio_pika.abc.AbstractIncomingMessage] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(got) < expect and loop.time() < deadline:
            message = await self.queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            got.append(message)
        return got

    async def count_now(self) -> int:
        """Messages waiting right now (after the broker confirmed the publishes we care about)."""
        assert self.queue is not None
        declared = await self.queue.declare()
        return int(declared.message_count or 0)


def body_of(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(message.body)
    return decoded


class TcpProxy:
    """127.0.0.1:<port> -> target; ``cut()`` drops every connection and refuses new ones;
    ``freeze()`` keeps them open but passes nothing either way (a SIGSTOPped node), ``thaw()`` resumes."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()  # same port

    def url(self, amqp_url: str) -> str:
        parts = urlsplit(amqp_url)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{self.port}", parts.path, parts.query, ""))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, self.flowing)),
            asyncio.create_task(self._pump(up_reader, writer, self.flowing)),
        ]
        self.tasks.update(pumps)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for w in (writer, up_writer):
            w.transport.abort()
            self.writers.discard(w)
        self.tasks.difference_update(pumps)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                await flowing.wait()
                writer.write(data)
                await writer.drain()
