"""Queue -> handler: machine sources' reports on ``intake.reports``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.rabbit import RabbitMessage, RabbitRouter

from services.intake.handlers import on_intake_report
from shared import topology
from shared.broker import subscriber_channel

if TYPE_CHECKING:
    from services.intake.handlers import Publish, ReportRepository
    from services.intake.metrics import IntakeMetrics
    from shared.registry import Registry
    from shared.settings import GwSettings


def build_router(
    settings: GwSettings,
    *,
    registry: Registry,
    store: ReportRepository,
    publish: Publish,
    metrics: IntakeMetrics,
) -> RabbitRouter:
    router = RabbitRouter()

    @router.subscriber(
        topology.INTAKE_REPORTS.rabbit_queue(),
        topology.INTAKE,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(settings.prefetch),
        title=topology.INTAKE_REPORTS.name,
        description="ReportSubmission from machine sources; invalid ones are dead-lettered with the reason",
    )
    async def on_machine_report(message: RabbitMessage) -> None:
        await on_intake_report(message.body, registry=registry, store=store, publish=publish, metrics=metrics)

    return router
