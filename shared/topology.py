"""RabbitMQ topology (DESIGN §4), defined once: exchanges, queues, bindings, routing keys.

Every work queue is a durable quorum queue with a delivery limit (RabbitMQ 3.10 has no
default, so a poison message would loop forever) and at-least-once dead-lettering to
``gw.dead``, where each queue has its own ``<queue>.dead``. Services take every name from
here; none spells a queue or exchange as a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared.domain import Priority, Tier

if TYPE_CHECKING:
    from collections.abc import Iterable

    from faststream.rabbit import RabbitBroker
    from faststream.rabbit.schemas.queue import QuorumQueueArgs

    from shared.registry import Registry

DELIVERY_LIMIT = 5
"""Deliveries after which the broker dead-letters a message on its own (the backstop)."""

# exchanges ------------------------------------------------------------------------------
EVENTS = RabbitExchange("gw.events", type=ExchangeType.TOPIC, durable=True)
DISPATCH = RabbitExchange("gw.dispatch", type=ExchangeType.TOPIC, durable=True)
COMMANDS = RabbitExchange("gw.commands", type=ExchangeType.TOPIC, durable=True)
INTAKE = RabbitExchange("gw.intake", type=ExchangeType.TOPIC, durable=True)
DEAD = RabbitExchange("gw.dead", type=ExchangeType.DIRECT, durable=True)
EXCHANGES: tuple[RabbitExchange, ...] = (EVENTS, DISPATCH, COMMANDS, INTAKE, DEAD)


def existing(exchange: RabbitExchange) -> RabbitExchange:
    """``exchange`` for a client that does not own it: publishing checks it exists (a passive
    declare) instead of declaring it, which needs no configure permission."""
    return RabbitExchange(exchange.name, type=exchange.type, durable=exchange.durable, declare=False)


# dead-letter headers written by shared.dead_letter ------------------------------------
HEADER_ERROR = "x-gw-error"
HEADER_ERROR_TYPE = "x-gw-error-type"
HEADER_SOURCE_QUEUE = "x-gw-source-queue"
HEADER_ORIGINAL_EXCHANGE = "x-gw-original-exchange"
HEADER_ORIGINAL_ROUTING_KEY = "x-gw-original-routing-key"
HEADER_DELIVERY_COUNT = "x-delivery-count"  # set by quorum queues on redelivery


# routing keys --------------------------------------------------------------------------
def event_routing_key(town_id: str, grid_id: str, event_type: str) -> str:
    """``gw.events``: ``<town_id>.<grid_id>.<event_type>``."""
    return f"{town_id}.{grid_id}.{event_type}"


def dispatch_routing_key(town_id: str, tier: Tier, owner_id: str, priority: Priority) -> str:
    """``gw.dispatch``: ``<town_id>.<tier>.<owner_id>.<priority>``.

    ``owner_id`` is a department id (which itself contains a dot, ``changjia.civil_affairs``),
    a grid staff id, or the town id for supervision; bindings below account for that.
    """
    return f"{town_id}.{tier.value}.{owner_id}.{priority.value}"


def command_routing_key(town_id: str, command_type: str) -> str:
    """``gw.commands``: ``<town_id>.<command_type>``."""
    return f"{town_id}.{command_type}"


def intake_routing_key(town_id: str, source: str) -> str:
    """``gw.intake``: ``<town_id>.<source>`` for machine sources."""
    return f"{town_id}.{source}"


# queues --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    exchange: RabbitExchange
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    """A work queue and its bindings; ``dead_letter_queue`` names its ``.dead`` twin."""

    name: str
    bindings: tuple[Binding, ...]
    purpose: str = ""
    is_dead_letter: bool = False

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"

    def arguments(self) -> dict[str, Any]:
        if self.is_dead_letter:
            return {}
        return {
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD.name,
            "x-dead-letter-routing-key": self.name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",  # required by at-least-once dead-lettering
        }

    def rabbit_queue(self, *, declare: bool = True) -> RabbitQueue:
        """The FastStream queue object; its routing key is the first binding's. ``declare=False``:
        a consumer that does not own the queue only checks that it exists (a passive declare, no
        binding), which needs no configure permission."""
        key = self.bindings[0].routing_key if self.bindings else self.name
        queue: RabbitQueue = RabbitQueue(
            self.name,
            durable=True,
            queue_type=QueueType.QUORUM,
            arguments=cast("QuorumQueueArgs", self.arguments()),
            routing_key=key,
            declare=declare,
        )
        return queue

    def dead_letter_spec(self) -> QueueSpec:
        return QueueSpec(
            self.dead_letter_queue,
            (Binding(DEAD, self.name),),
            purpose=f"dead letters of {self.name}",
            is_dead_letter=True,
        )


def _spec(name: str, exchange: RabbitExchange, *keys: str, purpose: str) -> QueueSpec:
    return QueueSpec(name, tuple(Binding(exchange, k) for k in keys), purpose)


INTAKE_REPORTS = _spec("intake.reports", INTAKE, "#", purpose="machine sources -> intake")
DISPATCH_EVENTS = _spec("dispatch.events", EVENTS, "*.*.matter_reported", purpose="new matters -> dispatch")
DISPATCH_COMMANDS = _spec("dispatch.commands", COMMANDS, "#", purpose="all commands -> dispatch")
STATS_EVENTS = _spec("stats.events", EVENTS, "#", purpose="every event -> stats")

SERVICE_QUEUES: tuple[QueueSpec, ...] = (INTAKE_REPORTS, DISPATCH_EVENTS, DISPATCH_COMMANDS, STATS_EVENTS)


def department_user(department_id: str) -> str:
    """The broker user of one department (its app or bot): ``dept-<department_id>``."""
    return f"dept-{department_id}"


def department_permissions(department_id: str) -> dict[str, str]:
    """A department reads its own work queue and sends commands; nothing else. No configure rights
    at all: it can neither declare, rebind nor delete a queue — the services declare every queue
    at start, and the department client consumes passively and publishes to the existing
    exchange. (Purging is a *read* operation in RabbitMQ: whoever may consume a queue may empty it.)"""
    own = re.escape(department_queue(department_id).name)
    return {"configure": "^$", "write": rf"^{re.escape(COMMANDS.name)}$", "read": rf"^{own}$"}


DEPARTMENT_QUEUE_PREFIX = "dept."
GRID_QUEUE_PREFIX = "grid."
SUPERVISION_QUEUE_PREFIX = "supervision."


def department_queue(department_id: str) -> QueueSpec:
    """``dept.<department_id>``: every matter where the department is lead or supporting."""
    return _spec(
        f"{DEPARTMENT_QUEUE_PREFIX}{department_id}",
        DISPATCH,
        f"*.{Tier.DEPARTMENT.value}.{department_id}.*",
        purpose=f"work for department {department_id}",
    )


def grid_queue(town_id: str) -> QueueSpec:
    """``grid.<town_id>``: grid-tier work (micro-grid member, grid member, grid leader)."""
    return _spec(
        f"{GRID_QUEUE_PREFIX}{town_id}",
        DISPATCH,
        *(f"{town_id}.{tier.value}.#" for tier in (Tier.MICRO_GRID, Tier.GRID_MEMBER, Tier.GRID_LEADER)),
        purpose=f"grid staff of {town_id}",
    )


def supervision_queue(town_id: str) -> QueueSpec:
    """``supervision.<town_id>``: returned and overdue matters for the town's supervisors."""
    return _spec(
        f"{SUPERVISION_QUEUE_PREFIX}{town_id}",
        DISPATCH,
        f"{town_id}.{Tier.SUPERVISION.value}.#",
        purpose=f"supervisors of {town_id}",
    )


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[RabbitExchange, ...]
    queues: tuple[QueueSpec, ...]
    dead_letter_queues: tuple[QueueSpec, ...] = field(default=())

    def all_queues(self) -> tuple[QueueSpec, ...]:
        return self.queues + self.dead_letter_queues

    def queue(self, name: str) -> QueueSpec:
        for spec in self.all_queues():
            if spec.name == name:
                return spec
        raise KeyError(f"no queue {name!r} in the topology")


def build_topology(town_ids: Iterable[str], department_ids: Iterable[str]) -> Topology:
    queues: list[QueueSpec] = list(SERVICE_QUEUES)
    queues += [department_queue(d) for d in sorted(set(department_ids))]
    for town_id in sorted(set(town_ids)):
        queues += [grid_queue(town_id), supervision_queue(town_id)]
    return Topology(EXCHANGES, tuple(queues), tuple(q.dead_letter_spec() for q in queues))


def topology_for(registry: Registry, service: str | None = None) -> Topology:
    """The registry's whole topology, or (``service``) the exchanges and the queues that service owns:
    what it declares at start, and all its broker user may configure."""
    towns = list(registry.town_ids)
    departments = [d.department_id for d in registry.all_departments()]
    whole = build_topology(towns, departments)
    if service is None:
        return whole
    owned = re.compile(QUEUE_OWNERS[service])
    return Topology(
        whole.exchanges,
        tuple(q for q in whole.queues if owned.match(q.name)),
        tuple(q for q in whole.dead_letter_queues if owned.match(q.name)),
    )


# who may do what on the broker -----------------------------------------------------------


def _exactly(names: Iterable[str]) -> str:
    listed = sorted(set(names))
    return rf"^({'|'.join(re.escape(n) for n in listed)})$" if listed else "^$"


def _or(*patterns: str) -> str:
    return "|".join(f"(?:{p})" for p in patterns if p != "^$") or "^$"


def _with_dead_letters(*queues: QueueSpec) -> list[str]:
    return [name for queue in queues for name in (queue.name, queue.dead_letter_queue)]


def _starting(*prefixes: str) -> str:
    return rf"^({'|'.join(re.escape(p) for p in prefixes)}).+$"


QUEUE_OWNERS: dict[str, str] = {
    "intake": _exactly(_with_dead_letters(INTAKE_REPORTS)),
    "dispatch": _or(
        _exactly(_with_dead_letters(DISPATCH_EVENTS, DISPATCH_COMMANDS)),
        _starting(DEPARTMENT_QUEUE_PREFIX, GRID_QUEUE_PREFIX, SUPERVISION_QUEUE_PREFIX),
    ),
    "stats": _exactly(_with_dead_letters(STATS_EVENTS)),
}
"""The queues each service declares, consumes and may configure (dead-letter queues included)."""

SERVICE_PUBLISHES: dict[str, tuple[RabbitExchange, ...]] = {
    "intake": (EVENTS,),
    "dispatch": (EVENTS, DISPATCH),
    "stats": (),
}
"""The exchanges each service publishes to (besides ``gw.dead``, where every service dead-letters)."""

SERVICE_BINDS_FROM: dict[str, tuple[RabbitExchange, ...]] = {
    "intake": (INTAKE,),
    "dispatch": (EVENTS, COMMANDS, DISPATCH),
    "stats": (EVENTS,),
}
"""The exchanges each service's queues are bound to (a binding needs read on its exchange)."""


def service_user(service: str) -> str:
    """The broker user of one service: ``gw-<service>``."""
    return f"gw-{service}"


def service_permissions(service: str) -> dict[str, str]:
    """A service configures the exchanges (it declares them, idempotently, at start) and only its own
    queues; writes only to the exchanges it publishes to, ``gw.dead`` and its own queues (binding
    them); reads only its own queues and the exchanges they are bound to. It can neither consume,
    declare, delete nor purge another service's or a department's queue, nor publish where it
    does not publish."""
    own = QUEUE_OWNERS[service]
    exchanges = _exactly(e.name for e in EXCHANGES)
    writes = _exactly([*(e.name for e in SERVICE_PUBLISHES[service]), DEAD.name])
    binds = _exactly([*(e.name for e in SERVICE_BINDS_FROM[service]), DEAD.name])
    return {"configure": _or(exchanges, own), "write": _or(writes, own), "read": _or(binds, own)}


def grid_staff_user(town_id: str) -> str:
    return f"grid-{town_id}"


def grid_staff_permissions(town_id: str) -> dict[str, str]:
    """The grid tier's app of one town (micro-grid members, grid members, leaders): consumes the
    town's ``grid.<town_id>`` queue and sends commands (accept, resolve, whistle); nothing else."""
    return {"configure": "^$", "write": _exactly([COMMANDS.name]), "read": _exactly([grid_queue(town_id).name])}


def supervisor_user(town_id: str) -> str:
    return f"supervisor-{town_id}"


def supervisor_permissions(town_id: str) -> dict[str, str]:
    """A town's supervisors: consume ``supervision.<town_id>`` (returned and overdue matters) and send
    commands (reroute); nothing else."""
    return {
        "configure": "^$",
        "write": _exactly([COMMANDS.name]),
        "read": _exactly([supervision_queue(town_id).name]),
    }


def source_user(name: str) -> str:
    return f"source-{name}"


def source_permissions() -> dict[str, str]:
    """A machine source (sensor gateway, another platform): publishes reports to ``gw.intake``, nothing else."""
    return {"configure": "^$", "write": _exactly([INTAKE.name]), "read": "^$"}


async def declare_topology(broker: RabbitBroker, topology: Topology) -> None:
    """Declare every exchange, queue and binding (idempotent; the broker must be connected)."""
    declared = {}
    for exchange in topology.exchanges:
        declared[exchange.name] = await broker.declare_exchange(exchange)
    for spec in topology.all_queues():
        queue = await broker.declare_queue(spec.rabbit_queue())
        for binding in spec.bindings:
            await queue.bind(declared[binding.exchange.name], routing_key=binding.routing_key)
