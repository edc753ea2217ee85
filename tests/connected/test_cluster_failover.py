"""The local three-node RabbitMQ cluster: quorum queues on every node, clients failing over.

Runs against the real cluster (`gridwhistle stack up --cluster`, started here when missing):
the node a client is connected to is SIGKILLed; the client must publish again through another
node within the recovery goal, and nothing confirmed before the kill may be missing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from faststream.rabbit import RabbitBroker

from shared import topology
from shared.broker import make_broker, publish_confirmed
from shared.management import connection_options, vhost_of
from shared.settings import GwSettings
from tools.stack.cluster import cluster_settings, cluster_up, kill_node, queue_leaders, restart_node, set_disk_alarm
from tools.stack.model import cluster_nodes
from tools.vhosts import create_vhost, delete_vhost

pytestmark = pytest.mark.connected

RECOVERY_GOAL = 30.0
"""Seconds a client may need to publish again after its node died (issue 17's goal)."""

WORK = topology.QueueSpec("test.cluster", (topology.Binding(topology.EVENTS, "cluster.#"),), purpose="failover test")


@pytest.fixture(scope="module")
def cluster(base_settings: GwSettings) -> GwSettings:
    cluster_up(base_settings)
    return cluster_settings(base_settings)


@pytest.fixture
def cluster_vhost(cluster: GwSettings) -> Iterator[GwSettings]:
    name = f"gw-cluster-test-{uuid.uuid4().hex[:8]}"
    url = create_vhost(cluster, name)
    yield cluster.model_copy(update={"amqp_url": url})
    delete_vhost(cluster, name)


def _connected_port(broker: RabbitBroker) -> int:
    connection = broker._connection
    assert connection is not None
    port = connection.url.port
    assert port is not None
    return port


async def _publish(broker: RabbitBroker, n: int) -> None:
    await publish_confirmed(broker, {"n": n}, exchange=topology.EVENTS, routing_key="cluster.test", message_id=str(n))


async def test_quorum_queues_have_a_member_on_every_node(cluster_vhost: GwSettings) -> None:
    broker = make_broker(cluster_vhost, service="test")
    await broker.connect()
    try:
        specs = tuple(topology.QueueSpec(f"test.spread.{i}", (), purpose="spread") for i in range(6))
        await topology.declare_topology(broker, topology.Topology(topology.EXCHANGES, specs, ()))
    finally:
        await broker.stop()
    vhost = vhost_of(cluster_vhost.amqp_url)
    every_node = {n.nodename for n in cluster_nodes()}
    async with httpx.AsyncClient(**connection_options(cluster_vhost)) as client:
        for spec in specs:
            answer = await client.get(f"/api/queues/{quote(vhost, safe='')}/{spec.name}")
            queue = answer.raise_for_status().json()
            assert queue["type"] == "quorum"
            assert set(queue["members"]) == every_node, spec.name
    assert sum(queue_leaders(cluster_vhost, vhost, prefix="test.spread.").values()) == len(specs)


async def test_client_fails_over_when_its_node_is_killed_and_nothing_confirmed_is_lost(
    base_settings: GwSettings, cluster_vhost: GwSettings
) -> None:
    broker = make_broker(cluster_vhost, service="test")
    await broker.connect()
    await topology.declare_topology(broker, topology.Topology(topology.EXCHANGES, (WORK,), (WORK.dead_letter_spec(),)))
    victim = next(n.component for n in cluster_nodes() if n.amqp_port == _connected_port(broker))
    try:
        for n in range(20):
            await _publish(broker, n)
        kill_node(base_settings, victim)
        killed_at = time.monotonic()
        while True:  # the client retries as an application would; each failure is bounded by the publish timeout
            try:
                await _publish(broker, 20)
                break
            except Exception:
                assert time.monotonic() - killed_at < RECOVERY_GOAL, "no failover within the goal"
                await asyncio.sleep(0.5)
        recovered = time.monotonic() - killed_at
        assert _connected_port(broker) != next(n.amqp_port for n in cluster_nodes() if n.component == victim)
        assert recovered < RECOVERY_GOAL

        received: set[str] = set()
        done = asyncio.Event()

        @broker.subscriber(WORK.rabbit_queue(declare=False))
        async def take(body: dict[str, int]) -> None:
            received.add(str(body["n"]))
            if len(received) == 21:
                done.set()

        await broker.start()
        await asyncio.wait_for(done.wait(), timeout=30)
        assert received == {str(n) for n in range(21)}
    finally:
        await broker.stop()
        restart_node(base_settings, victim)


async def test_a_disk_alarm_makes_a_publish_fail_within_its_timeout_instead_of_hanging(
    base_settings: GwSettings, cluster_vhost: GwSettings
) -> None:
    broker = make_broker(cluster_vhost, service="test")
    await broker.connect()
    await topology.declare_topology(broker, topology.Topology(topology.EXCHANGES, (WORK,), (WORK.dead_letter_spec(),)))
    try:
        await _publish(broker, 1)
        set_disk_alarm(base_settings, "rabbitmq-2", on=True)  # the whole cluster blocks its publishers
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await publish_confirmed(
                    broker, {"n": 2}, exchange=topology.EVENTS, routing_key="cluster.test", confirm_timeout=2.0
                )
            assert time.monotonic() - started < 3.5
        finally:
            set_disk_alarm(base_settings, "rabbitmq-2", on=False)
        deadline = time.monotonic() + 15
        while True:  # publishes are confirmed again once the alarm clears
            try:
                await _publish(broker, 3)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "publishes still blocked after the alarm cleared"
    finally:
        await broker.stop()
