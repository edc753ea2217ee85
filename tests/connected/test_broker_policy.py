"""The shared broker factory's promises, against a real RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import pytest
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker

from shared import topology
from shared.broker import make_broker, publish_confirmed, subscriber_channel
from shared.errors import UnroutableError
from shared.settings import GwSettings

pytestmark = pytest.mark.connected

TEST_QUEUE = topology.QueueSpec("test.work", (topology.Binding(topology.EVENTS, "test.#"),), purpose="test work queue")


async def _declared(settings: GwSettings, *specs: topology.QueueSpec) -> RabbitBroker:
    broker = make_broker(settings, service="test")
    await broker.connect()
    await topology.declare_topology(
        broker, topology.Topology(topology.EXCHANGES, specs, tuple(s.dead_letter_spec() for s in specs))
    )
    return broker


async def _get_all(settings: GwSettings, queue: str, expect: int, wait_s: float = 15.0) -> list[Any]:
    """Read ``expect`` messages from a queue with a plain aio-pika consumer (acking them)."""
    connection = await aio_pika.connect(settings.amqp_url)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        deadline = asyncio.get_running_loop().time() + wait_s
        while len(got) < expect and asyncio.get_running_loop().time() < deadline:
            message = await q.get(fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            got.append(message)
    return got


async def test_publish_to_routing_key_without_queue_raises(settings: GwSettings) -> None:
    broker = await _declared(settings, TEST_QUEUE)
    try:
        with pytest.raises(UnroutableError, match="no queue bound"):
            await publish_confirmed(broker, {"x": 1}, exchange=topology.EVENTS, routing_key="nobody.listens")
        # and a routable publish is confirmed without error
        await publish_confirmed(broker, {"x": 1}, exchange=topology.EVENTS, routing_key="test.ok")
    finally:
        await broker.stop()


async def test_message_failing_past_delivery_limit_is_dead_lettered_with_reason(settings: GwSettings) -> None:
    attempts: list[int] = []
    marker_seen = asyncio.Event()
    broker = await _declared(settings, TEST_QUEUE)

    @broker.subscriber(
        TEST_QUEUE.rabbit_queue(),
        topology.EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(4),
    )
    async def always_fails(body: dict[str, Any]) -> None:
        if body.get("marker"):  # the barrier: handled, not failed
            marker_seen.set()
            return
        attempts.append(body["n"])
        raise RuntimeError("department system unavailable")

    await broker.start()
    try:
        await publish_confirmed(broker, {"n": 1}, exchange=topology.EVENTS, routing_key="test.poison")
        dead = await _get_all(settings, TEST_QUEUE.dead_letter_queue, expect=1)
        assert len(dead) == 1
        headers = dead[0].headers
        assert headers[topology.HEADER_SOURCE_QUEUE] == "test.work"
        assert "RuntimeError: department system unavailable" in str(headers[topology.HEADER_ERROR])
        assert headers[topology.HEADER_ERROR_TYPE] == "retries_exhausted"
        assert headers[topology.HEADER_ORIGINAL_ROUTING_KEY] == "test.poison"
        # would it come back? A marker published after it is handled first, then we look
        await publish_confirmed(broker, {"marker": True}, exchange=topology.EVENTS, routing_key="test.marker")
        await asyncio.wait_for(marker_seen.wait(), timeout=15)
        assert len(attempts) == topology.DELIVERY_LIMIT
    finally:
        await broker.stop()


async def test_malformed_message_is_dead_lettered_at_once_with_the_field(settings: GwSettings) -> None:
    from shared.contracts import MatterReported

    handled: list[MatterReported] = []
    broker = await _declared(settings, TEST_QUEUE)

    @broker.subscriber(
        TEST_QUEUE.rabbit_queue(),
        topology.EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(4),
    )
    async def on_reported(body: dict[str, Any]) -> None:
        handled.append(MatterReported.model_validate(body))

    await broker.start()
    try:
        bad = {"matter_id": str(uuid.uuid4()), "town_id": "changjia", "grid_id": "changjia-g001"}
        await publish_confirmed(broker, bad, exchange=topology.EVENTS, routing_key="test.bad")
        dead = await _get_all(settings, TEST_QUEUE.dead_letter_queue, expect=1)
        assert len(dead) == 1
        reason = str(dead[0].headers[topology.HEADER_ERROR])
        assert dead[0].headers[topology.HEADER_ERROR_TYPE] == "permanent"
        assert "category: Field required" in reason
        assert "summary: Field required" in reason
        assert handled == []
    finally:
        await broker.stop()


async def test_typed_subscriber_dead_letters_a_malformed_body_before_the_handler(settings: GwSettings) -> None:
    """Subscribers take the contract models (for AsyncAPI): validation fails before the handler
    runs and the message is still dead-lettered at once, with the fields named."""
    from shared.contracts import MatterReported

    handled: list[MatterReported] = []
    broker = await _declared(settings, TEST_QUEUE)

    @broker.subscriber(
        TEST_QUEUE.rabbit_queue(),
        topology.EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(4),
    )
    async def on_reported(report: MatterReported) -> None:
        handled.append(report)

    await broker.start()
    try:
        bad = {"matter_id": str(uuid.uuid4()), "town_id": "changjia", "grid_id": "changjia-g001"}
        await publish_confirmed(broker, bad, exchange=topology.EVENTS, routing_key="test.bad")
        await publish_confirmed(broker, b"{not json", exchange=topology.EVENTS, routing_key="test.bad")
        dead = await _get_all(settings, TEST_QUEUE.dead_letter_queue, expect=2)
        assert len(dead) == 2
        assert all(m.headers[topology.HEADER_ERROR_TYPE] == "permanent" for m in dead)
        reasons = [str(m.headers[topology.HEADER_ERROR]) for m in dead]
        assert "summary: Field required" in reasons[0]
        assert "category: Field required" in reasons[0]
        assert reasons[1].startswith("validation failed") or reasons[1].startswith("JSONDecodeError"), reasons[1]
        assert handled == []
    finally:
        await broker.stop()


async def test_broker_dead_letters_by_itself_when_consumers_keep_dying(settings: GwSettings) -> None:
    """The queue's x-delivery-limit is the backstop when no handler gets to say why."""
    broker = await _declared(settings, TEST_QUEUE)
    try:
        await publish_confirmed(broker, {"n": 2}, exchange=topology.EVENTS, routing_key="test.crash")
        connection = await aio_pika.connect(settings.amqp_url)
        async with connection:
            for _ in range(topology.DELIVERY_LIMIT + 1):
                channel = await connection.channel()
                q = await channel.get_queue("test.work", ensure=True)
                message = await q.get(fail=False, timeout=5)
                if message is None:
                    break
                await channel.close()  # a crash: unacked, returned to the queue
        dead = await _get_all(settings, TEST_QUEUE.dead_letter_queue, expect=1)
        assert len(dead) == 1
        death = dead[0].headers["x-death"][0]
        assert death["reason"] == "delivery_limit"
        assert death["queue"] == "test.work"
    finally:
        await broker.stop()
