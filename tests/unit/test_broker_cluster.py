"""Client-side failover over a cluster's node list (no broker needed)."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika import RobustConnection
from yarl import URL

from shared.broker import ClusterConnection, cluster_connection, make_broker
from shared.settings import GwSettings

pytestmark = pytest.mark.unit


def test_node_list_is_the_url_then_each_failover_address_with_its_login_and_vhost() -> None:
    settings = GwSettings(
        amqp_url="amqp://gw:s3cret@127.0.0.1:5701/gw-town",
        amqp_failover="127.0.0.1:5702, 127.0.0.1:5703",
        amqp_heartbeat=7,
    )
    assert settings.amqp_nodes == [
        "amqp://gw:s3cret@127.0.0.1:5701/gw-town?heartbeat=7",
        "amqp://gw:s3cret@127.0.0.1:5702/gw-town?heartbeat=7",
        "amqp://gw:s3cret@127.0.0.1:5703/gw-town?heartbeat=7",
    ]


def test_a_heartbeat_in_the_url_is_kept_and_one_node_is_a_list_of_one() -> None:
    settings = GwSettings(amqp_url="amqp://guest:guest@127.0.0.1:5672/?heartbeat=30")
    assert settings.amqp_nodes == ["amqp://guest:guest@127.0.0.1:5672/?heartbeat=30"]


def test_aio_pika_still_has_the_private_step_the_failover_overrides() -> None:
    # If an aio-pika upgrade renames it, failover would silently stop: this test says so first.
    assert callable(getattr(RobustConnection, "_RobustConnection__connect_transport", None))
    assert "_RobustConnection__connect_transport" in vars(ClusterConnection)


async def test_each_connection_attempt_goes_to_the_next_node_round_robin() -> None:
    nodes = [f"amqp://guest:guest@127.0.0.1:{port}/" for port in (5701, 5702, 5703)]
    connection_class = cluster_connection(nodes)
    connection = connection_class(URL(nodes[0]), loop=asyncio.get_running_loop())
    first = connection.next_node()
    turns = [first] + [connection.next_node() for _ in range(5)]
    ports = [url.port or 0 for url in turns]
    assert sorted(ports[:3]) == [5701, 5702, 5703]  # every node once per round, from a random start
    assert ports[3:] == ports[:3]


def test_every_broker_connects_through_the_cluster_connection_with_all_nodes() -> None:
    settings = GwSettings(amqp_url="amqp://guest:guest@127.0.0.1:5701/", amqp_failover="127.0.0.1:5702")
    broker = make_broker(settings, service="test")
    kwargs = broker._connection_kwargs
    connection_class = kwargs["connection_class"]
    assert issubclass(connection_class, ClusterConnection)
    assert [url.port for url in connection_class.NODES] == [5701, 5702]
    assert URL(kwargs["url"]).query["heartbeat"] == str(settings.amqp_heartbeat)
