"""One wiring test body, two brokers, as in FastStream's ``tests/brokers/rabbit``: every test
here takes ``wired`` and runs once on the in-memory ``TestRabbitBroker`` (marked ``inmemory``:
queues to handlers and message shapes) and once on the real RabbitMQ in a vhost of its own
(marked ``connected``: acks, dead-lettering and prefetch are real there)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from shared.broker import make_broker
from shared.registry import Registry
from shared.settings import GwSettings
from shared.topology import declare_topology, topology_for

WITHIN = 10.0


@dataclass(frozen=True)
class Wired:
    real: bool
    settings: GwSettings
    """The real broker: this test's own vhost and database. In memory: defaults, never connected."""

    def broker(self) -> RabbitBroker:
        return make_broker(self.settings, service="wiring-test")

    @asynccontextmanager
    async def running(self, broker: RabbitBroker, registry: Registry) -> AsyncIterator[RabbitBroker]:
        """The broker with its subscribers consuming; on RabbitMQ, after the topology is declared."""
        if not self.real:
            async with TestRabbitBroker(broker) as test_broker:
                yield test_broker
            return
        await broker.connect()
        await declare_topology(broker, topology_for(registry))
        await broker.start()
        try:
            yield broker
        finally:
            await broker.stop()

    @contextmanager
    def refused(self) -> Iterator[None]:
        """A publish the handler refuses: in memory the error reaches the publisher; on RabbitMQ
        the message is nacked (dead-lettered), and the publisher only sees the confirm."""
        if self.real:
            yield
            return
        with pytest.raises(Exception):  # noqa: B017 - the handler's own error, whatever it is
            yield

    async def until(self, check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
        """Wait (bounded) for a positive signal; in memory it holds as soon as the publish returned."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WITHIN
        while True:
            outcome = check()
            if outcome if isinstance(outcome, bool) else await outcome:
                return
            if loop.time() > deadline:
                raise AssertionError(f"no {what} within {WITHIN}s")
            await asyncio.sleep(0.02)


@pytest.fixture(
    params=[
        pytest.param(False, marks=pytest.mark.inmemory, id="inmemory"),
        pytest.param(True, marks=pytest.mark.connected, id="rabbitmq"),
    ]
)
def wired(request: pytest.FixtureRequest) -> Wired:
    if request.param:
        return Wired(real=True, settings=request.getfixturevalue("settings"))
    return Wired(real=False, settings=GwSettings())
