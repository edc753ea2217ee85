"""Queue -> handler, nothing else: machine sources' reports on ``intake.reports``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.rabbit import RabbitMessage, RabbitRouter

from services.intake.handlers import on_intake_report
from shared import topology
from shared.broker import subscriber_channel

if TYPE_CHECKING:
    from services.intake.deps import IntakeDeps


def build_router(deps: IntakeDeps) -> RabbitRouter:
    router = RabbitRouter()

    @router.subscriber(
        topology.INTAKE_REPORTS.rabbit_queue(),
        topology.INTAKE,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
        title=topology.INTAKE_REPORTS.name,
        description="ReportSubmission from machine sources; invalid ones are dead-lettered with the reason",
    )
    async def on_machine_report(message: RabbitMessage) -> None:
        await on_intake_report(deps, message.body)

    return router
