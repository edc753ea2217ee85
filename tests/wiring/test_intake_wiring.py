"""Intake's subscriber: ``intake.reports`` -> the accept flow, on the in-memory and the real broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.intake.subscribers import build_router
from shared import topology
from shared.domain import Channel
from tests.fakes.intake import FakePublisher, FakeReportStore, changjia, intake_deps

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker

    from tests.wiring.conftest import Wired


def machine_report(report_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "town_id": "changjia",
        "grid_id": "changjia-g003",
        "category": "safety_hazard",
        "severity": "urgent",
        "origin": "machine",
        "summary": "Gas sensor above threshold",
        **changes,
    }


async def send(broker: RabbitBroker, body: dict[str, Any]) -> None:
    await broker.publish(body, exchange=topology.INTAKE, routing_key=topology.intake_routing_key("changjia", "gas"))


async def test_report_on_intake_queue_reaches_the_accept_flow_as_channel_amqp(wired: Wired) -> None:
    published = FakePublisher()
    broker = wired.broker()
    broker.include_router(build_router(intake_deps(FakeReportStore(), published)))
    async with wired.running(broker, changjia()) as running:
        await send(running, machine_report("sensor-1"))
        await wired.until(lambda: len(published.published) == 1, "MatterReported")
    assert [(e.report_id, e.channel, e.grid_id) for e in published.published] == [
        ("sensor-1", Channel.AMQP, "changjia-g003")
    ]


async def test_report_for_an_unknown_grid_is_refused_and_publishes_nothing(wired: Wired) -> None:
    published, store = FakePublisher(), FakeReportStore()
    broker = wired.broker()
    broker.include_router(build_router(intake_deps(store, published, prefetch=1)))
    async with wired.running(broker, changjia()) as running:
        with wired.refused():
            await send(running, machine_report("sensor-bad", grid_id="changjia-g999"))
        # the barrier: a good report sent after the bad one (prefetch 1: one at a time, in order)
        await send(running, machine_report("sensor-marker"))
        await wired.until(lambda: len(published.published) == 1, "the marker's MatterReported")
    assert [e.report_id for e in published.published] == ["sensor-marker"]
    assert list(store.records) == ["changjia:sensor-marker"]
