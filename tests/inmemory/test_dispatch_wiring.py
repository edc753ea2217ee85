"""Dispatch wiring on FastStream's TestRabbitBroker: queues to handlers and message shapes only
(no acks, dead-lettering or prefetch here: the connected tests cover those)."""

from __future__ import annotations

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from prometheus_client import CollectorRegistry

from services.department.client import DepartmentClient
from services.dispatch.deps import DispatchDeps, broker_publisher
from services.dispatch.metrics import DispatchMetrics
from services.dispatch.subscribers import register_subscribers
from shared import topology
from shared.broker import publish_command, publish_event
from shared.contracts import AcceptMatter
from tests.unit.test_dispatch_fakes import FakeCaseStore, FakeClock, registry_and_rules, reported

pytestmark = pytest.mark.inmemory


async def test_reported_matter_and_command_reach_their_handlers_and_publish_events() -> None:
    broker = RabbitBroker()
    registry, rules = registry_and_rules()
    deps = DispatchDeps(
        store=FakeCaseStore(),
        publish=broker_publisher(broker),
        rules=rules,
        registry=registry,
        metrics=DispatchMetrics(CollectorRegistry()),
        clock=FakeClock(),
    )
    register_subscribers(broker, deps, prefetch=4)
    published: list[dict[str, object]] = []

    @broker.subscriber(topology.STATS_EVENTS.rabbit_queue(), topology.EVENTS)
    async def stats_side(body: dict[str, object]) -> None:
        published.append(body)

    lead = DepartmentClient(broker, "changjia.emergency_safety")
    supporting = DepartmentClient(broker, "county.emergency")
    for client in (lead, supporting):
        client.subscribe()

    async with TestRabbitBroker(broker) as test_broker:
        event = reported("safety_hazard", "urgent")
        await publish_event(test_broker, event)
        case = await deps.store.snapshot(str(event.matter_id))
        assert case is not None and case.lead == "changjia.emergency_safety"
        assert lead.items[event.matter_id].role == "lead"
        assert supporting.items[event.matter_id].role == "supporting"
        accept = AcceptMatter(
            matter_id=event.matter_id,
            town_id=event.town_id,
            grid_id=event.grid_id,
            actor_id="changjia.emergency_safety",
            round=1,
        )
        await publish_command(test_broker, accept)
        case = await deps.store.snapshot(str(event.matter_id))
        assert case is not None and case.state == "accepted"
    types = [b["event_type"] for b in published]
    assert "matter_dispatched" in types and "matter_accepted" in types
