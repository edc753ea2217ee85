"""Queue -> handler, nothing else: machine sources' reports on ``intake.reports``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter

from services.intake.handlers import on_intake_report, report_decoder
from shared import topology
from shared.broker import subscriber_channel
from shared.contracts import ReportSubmission

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
        description="ReportSubmission from machine sources (exchange gw.intake, key `<town_id>.<source>`); "
        "invalid ones are dead-lettered to intake.reports.dead with the reason in `x-gw-error`",
        decoder=report_decoder(deps.metrics),
    )
    async def on_machine_report(report: ReportSubmission) -> None:
        await on_intake_report(deps, report)

    return router
