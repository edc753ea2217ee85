"""Queues -> handlers, nothing else: MatterReported and every command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter

from services.dispatch.handlers import on_command, on_matter_reported, on_supervision_visit
from shared import topology
from shared.broker import subscriber_channel
from shared.contracts import AnyDispatchCommand, MatterReported, RecordSupervisionVisit

if TYPE_CHECKING:
    from services.dispatch.deps import DispatchDeps


def build_router(deps: DispatchDeps) -> RabbitRouter:
    """``dispatch.events`` (MatterReported) and ``dispatch.commands`` (all commands).

    The bodies are typed with the contracts, so the AsyncAPI document carries their schemas; a
    body that fails validation raises ``ValidationError`` before the handler runs, and
    ``shared.broker.DeadLetterMiddleware`` dead-letters it at once with the fields named."""
    router = RabbitRouter()

    @router.subscriber(
        topology.DISPATCH_EVENTS.rabbit_queue(),
        topology.EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
        title=topology.DISPATCH_EVENTS.name,
        description="New matters (MatterReported, key `*.*.matter_reported` on gw.events): routed by the rules",
    )
    async def matter_reported(report: MatterReported) -> None:
        await on_matter_reported(deps, report)

    @router.subscriber(
        topology.DISPATCH_COMMANDS.rabbit_queue(),
        topology.COMMANDS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
        title=topology.DISPATCH_COMMANDS.name,
        description="Every command on gw.commands (key `<town_id>.<command_type>`), by `command_type`: "
        "the matter commands and the grids' supervision visits",
    )
    async def command(command: AnyDispatchCommand) -> None:
        if isinstance(command, RecordSupervisionVisit):
            await on_supervision_visit(deps, command)
        else:
            await on_command(deps, command)

    return router
