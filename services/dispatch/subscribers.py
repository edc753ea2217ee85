"""Queues -> handlers, nothing else: MatterReported and every command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream import AckPolicy
from faststream.rabbit import RabbitRouter

from services.dispatch.handlers import on_command, on_matter_reported
from shared import topology
from shared.broker import subscriber_channel
from shared.contracts import COMMAND_ADAPTER, MatterReported

if TYPE_CHECKING:
    from services.dispatch.deps import DispatchDeps


def build_router(deps: DispatchDeps) -> RabbitRouter:
    """``dispatch.events`` (MatterReported) and ``dispatch.commands`` (all commands)."""
    router = RabbitRouter()

    @router.subscriber(
        topology.DISPATCH_EVENTS.rabbit_queue(),
        topology.EVENTS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
    )
    async def matter_reported(body: dict[str, Any]) -> None:
        await on_matter_reported(deps, MatterReported.model_validate(body))

    @router.subscriber(
        topology.DISPATCH_COMMANDS.rabbit_queue(),
        topology.COMMANDS,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        channel=subscriber_channel(deps.prefetch),
    )
    async def command(body: dict[str, Any]) -> None:
        await on_command(deps, COMMAND_ADAPTER.validate_python(body))

    return router
