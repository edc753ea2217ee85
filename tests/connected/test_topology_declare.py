"""Declaring the topology on a real broker gives quorum queues with the contract arguments."""

from __future__ import annotations

import pytest

from shared import topology
from shared.broker import make_broker
from shared.management import ManagementApi
from shared.registry import load_registry
from shared.settings import GwSettings

pytestmark = pytest.mark.connected


async def test_declared_topology_matches_the_definition_and_redeclaring_is_harmless(settings: GwSettings) -> None:
    topo = topology.topology_for(load_registry(settings.registry_path))
    broker = make_broker(settings, service="test")
    await broker.connect()
    try:
        await topology.declare_topology(broker, topo)
        await topology.declare_topology(broker, topo)  # idempotent: same arguments, no error
    finally:
        await broker.stop()
    async with ManagementApi(settings) as api:
        declared = {q.name for q in await api.queues()}
    assert declared == {spec.name for spec in topo.all_queues()}
