"""The message catalogue: every contract message as a declared FastStream publisher.

A publisher declared here carries the message's pydantic schema, its channel (exchange and
routing-key pattern from ``shared.topology``), a title and a description, so the AsyncAPI
document FastStream generates for a service lists what it sends with full schemas. The
publishes themselves go through ``shared.broker.publish_confirmed`` (persistent, confirmed,
mandatory, unroutable raised) with the same exchange and routing-key functions.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, get_args

from shared import topology
from shared.contracts import AnyDispatchCommand, AnyEvent, AnyStatsEvent, GridMessage, MatterReported
from shared.domain import Tier

if TYPE_CHECKING:
    from collections.abc import Iterable

    from faststream.rabbit import RabbitBroker, RabbitRouter
    from faststream.rabbit.publisher import RabbitPublisher

EVENT_MODELS: dict[str, type[GridMessage]] = {
    m.model_fields["event_type"].default: m for m in get_args(get_args(AnyStatsEvent)[0])
}
"""Every event on ``gw.events``: the matter events and the grids' supervision visits."""
COMMAND_MODELS: dict[str, type[GridMessage]] = {
    m.model_fields["command_type"].default: m for m in get_args(get_args(AnyDispatchCommand)[0])
}
"""Every command on ``gw.commands``: the matter commands and the supervision visits."""
DISPATCH_EVENT_TYPES: tuple[str, ...] = tuple(t for t, m in EVENT_MODELS.items() if m is not MatterReported)
"""Every event dispatch publishes (all but ``matter_reported``, which is intake's)."""


def describe(model: type[Any]) -> str:
    """A model's own docstring, or its base's: the text integrators read in the document."""
    return inspect.getdoc(model) or ""


def declare_event_publishers(
    where: RabbitBroker | RabbitRouter, event_types: Iterable[str]
) -> dict[str, RabbitPublisher]:
    """One publisher per event type on ``gw.events``, key ``<town_id>.<grid_id>.<event_type>``."""
    return {
        event_type: where.publisher(
            exchange=topology.EVENTS,
            routing_key=topology.event_routing_key("*", "*", event_type),
            persist=True,
            schema=EVENT_MODELS[event_type],
            title=f"{topology.EVENTS.name}/{event_type}",
            description=f"{describe(EVENT_MODELS[event_type])}\n\nRouting key "
            f"`<town_id>.<grid_id>.{event_type}` on the topic exchange `{topology.EVENTS.name}`.",
        )
        for event_type in event_types
    }


def declare_work_publishers(where: RabbitBroker | RabbitRouter) -> dict[str, RabbitPublisher]:
    """Work items on ``gw.dispatch``: the same event bodies, keyed ``<town_id>.<tier>.<owner_id>.<priority>``."""
    found: dict[str, RabbitPublisher] = {}
    for tier in Tier:
        found[tier.value] = where.publisher(
            exchange=topology.DISPATCH,
            routing_key=f"*.{tier.value}.#",
            persist=True,
            schema=AnyEvent,
            title=f"{topology.DISPATCH.name}/{tier.value}",
            description=f"Work for the {tier.value} tier: the dispatch events of a matter (MatterDispatched, "
            f"MatterEscalated, ...) with the matter's snapshot, routing key `<town_id>.{tier.value}.<owner_id>."
            f"<priority>` on `{topology.DISPATCH.name}`; queues `dept.<department_id>`, `grid.<town_id>`, "
            "`supervision.<town_id>`.",
        )
    return found


def declare_command_publishers(where: RabbitBroker | RabbitRouter) -> dict[str, RabbitPublisher]:
    """One publisher per command on ``gw.commands``, key ``<town_id>.<command_type>``."""
    return {
        command_type: where.publisher(
            exchange=topology.COMMANDS,
            routing_key=topology.command_routing_key("*", command_type),
            persist=True,
            schema=model,
            title=f"{topology.COMMANDS.name}/{command_type}",
            description=f"{describe(model)}\n\nRouting key `<town_id>.{command_type}` on the topic exchange "
            f"`{topology.COMMANDS.name}`; dispatch consumes them from `{topology.DISPATCH_COMMANDS.name}`.",
        )
        for command_type, model in COMMAND_MODELS.items()
    }
