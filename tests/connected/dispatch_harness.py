"""Helpers for the connected dispatch tests (no tests here): the service in-process, a tap on
``gw.events``, a client broker, and polling with a bounded deadline."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import aio_pika
from faststream.rabbit import RabbitBroker

from services.dispatch.app import create_app
from services.dispatch.config import DispatchSettings
from services.dispatch.deps import DispatchDeps
from shared import topology
from shared.broker import make_broker, publish_confirmed
from shared.settings import GwSettings
from tests import factories
from tests.factories import GRID, TOWN
from tools.vhosts import declare_registry_topology

if TYPE_CHECKING:
    from shared.contracts import MatterReported

__all__ = ["GRID", "TOWN"]
T = TypeVar("T")


def dispatch_settings(settings: GwSettings, **overrides: Any) -> DispatchSettings:
    return DispatchSettings.model_validate({**settings.model_dump(), "prefetch": 16, **overrides})


@asynccontextmanager
async def running_dispatch(
    settings: GwSettings, *, clock: Callable[[], datetime] | None = None, sweeper: bool = False
) -> AsyncIterator[DispatchDeps]:
    kwargs: dict[str, Any] = {"sweeper": sweeper}
    if clock is not None:
        kwargs["clock"] = clock
    await declare_registry_topology(settings)  # the operator's step: every queue exists before dispatch publishes
    app = create_app(dispatch_settings(settings), **kwargs)
    async with app.router.lifespan_context(app):
        yield app.state.deps


@asynccontextmanager
async def client_broker(
    settings: GwSettings, setup: Callable[[RabbitBroker], None] | None = None
) -> AsyncIterator[RabbitBroker]:
    broker = make_broker(settings, service="test-client")
    if setup is not None:
        setup(broker)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


class EventTap:
    """Every event on gw.events, in arrival order (a private auto-delete queue)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self, settings: GwSettings) -> EventTap:
        self._connection = await aio_pika.connect_robust(settings.amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(topology.EVENTS.name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                self.events.append(json.loads(message.body))

        await queue.consume(on_message)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def barrier(self, broker: RabbitBroker, within: float = 20.0) -> None:
        """Publish a marker on gw.events and wait until it arrives: whatever was confirmed on the
        exchange before it has arrived too, so an absence can then be asserted."""
        marker = uuid.uuid4().hex
        await publish_confirmed(
            broker, {"event_type": "test_marker", "marker": marker}, exchange=topology.EVENTS, routing_key="test.marker"
        )
        await eventually(
            lambda: asyncio.sleep(0, [e for e in self.events if e.get("marker") == marker]),
            bool,
            within=within,
            what="the tap's marker",
        )

    def of(self, event_type: str, matter_id: uuid.UUID | str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("event_type") == event_type and (matter_id is None or e["matter_id"] == str(matter_id))
        ]


@asynccontextmanager
async def event_tap(settings: GwSettings) -> AsyncIterator[EventTap]:
    tap = await EventTap().start(settings)
    try:
        yield tap
    finally:
        await tap.close()


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, within: float = 20.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until ``check`` holds (bounded); fail with the last value seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {within}s; last value: {value!r}")
        await asyncio.sleep(0.1)


def reported(
    category: str,
    severity: str,
    *,
    grid_id: str = GRID,
    matter_id: uuid.UUID | None = None,
    reported_at: datetime | None = None,
) -> MatterReported:
    """Reported a minute ago unless told otherwise (the connected tests run on the real clock)."""
    at = reported_at or datetime.now(UTC) - timedelta(minutes=1)
    return factories.reported(category, severity, reported_at=at, grid_id=grid_id, matter_id=matter_id)


command = factories.command
