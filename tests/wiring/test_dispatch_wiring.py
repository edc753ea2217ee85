"""Dispatch's subscribers: ``dispatch.events`` and ``dispatch.commands`` -> their handlers, and the
events and work items they publish, on the in-memory and the real broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from services.department.client import DepartmentClient
from services.dispatch.deps import DispatchDeps, broker_publisher
from services.dispatch.metrics import DispatchMetrics
from services.dispatch.subscribers import build_router
from shared import topology
from shared.broker import publish_command, publish_event
from shared.contracts import AcceptMatter
from tests.fakes.dispatch import FakeCaseStore, FakeClock, registry_and_rules, reported

if TYPE_CHECKING:
    from tests.wiring.conftest import Wired


async def test_reported_matter_and_command_reach_their_handlers_and_publish_events(wired: Wired) -> None:
    broker = wired.broker()
    registry, rules = registry_and_rules()
    store = FakeCaseStore()
    deps = DispatchDeps(
        store=store,
        publish=broker_publisher(broker),
        rules=rules,
        registry=registry,
        metrics=DispatchMetrics(CollectorRegistry()),
        clock=FakeClock(),
        prefetch=4,
    )
    broker.include_router(build_router(deps))
    published: list[dict[str, Any]] = []

    @broker.subscriber(topology.STATS_EVENTS.rabbit_queue(), topology.EVENTS)
    async def stats_side(body: dict[str, Any]) -> None:
        published.append(body)

    lead = DepartmentClient(broker, "changjia.emergency_safety")
    supporting = DepartmentClient(broker, "county.emergency")
    for client in (lead, supporting):
        client.subscribe()

    def types() -> list[Any]:
        return [b["event_type"] for b in published]

    async with wired.running(broker, registry) as running:
        event = reported("safety_hazard", "urgent")
        await publish_event(running, event)
        await wired.until(
            lambda: event.matter_id in lead.items and event.matter_id in supporting.items, "both work items"
        )
        case = await store.snapshot(str(event.matter_id))
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
        await publish_command(running, accept)
        await wired.until(lambda: "matter_accepted" in types(), "MatterAccepted on gw.events")
        case = await store.snapshot(str(event.matter_id))
        assert case is not None and case.state == "accepted"
    assert "matter_dispatched" in types()
