"""Wiring of intake.reports with FastStream's TestRabbitBroker (no acks/DLX here: see connected)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from prometheus_client import CollectorRegistry

from services.intake.metrics import IntakeMetrics
from services.intake.store import ReportRecord
from services.intake.subscribers import build_router
from shared import topology
from shared.domain import Channel
from shared.settings import GwSettings
from tests.factories import changjia_registry

if TYPE_CHECKING:
    from shared.contracts import MatterReported

pytestmark = pytest.mark.inmemory


class Store:
    def __init__(self) -> None:
        self.records: dict[str, ReportRecord] = {}

    async def get(self, key: str) -> ReportRecord | None:
        return self.records.get(key)

    async def insert_pending(self, record: ReportRecord) -> bool:
        return self.records.setdefault(record.key, record) is record

    async def mark_published(self, key: str) -> None:
        old = self.records[key]
        self.records[key] = ReportRecord(old.key, old.body_hash, old.event, "published")


async def test_report_on_intake_queue_reaches_the_accept_flow_as_channel_amqp() -> None:
    published: list[MatterReported] = []

    async def publish(event: MatterReported) -> None:
        published.append(event)

    broker = RabbitBroker()
    registry = changjia_registry()
    broker.include_router(
        build_router(
            GwSettings(), registry=registry, store=Store(), publish=publish, metrics=IntakeMetrics(CollectorRegistry())
        )
    )
    body = {
        "report_id": "sensor-1",
        "town_id": "changjia",
        "grid_id": "changjia-g003",
        "category": "safety_hazard",
        "severity": "urgent",
        "origin": "machine",
        "summary": "Gas sensor above threshold",
    }
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            body, exchange=topology.INTAKE, routing_key=topology.intake_routing_key("changjia", "gas")
        )
    assert [(e.report_id, e.channel, e.grid_id) for e in published] == [("sensor-1", Channel.AMQP, "changjia-g003")]
