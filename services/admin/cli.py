"""Operator commands on the broker: ``topology show|declare``, ``dlq list|show|replay``, ``users``."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Annotated, Any

import aio_pika
import typer
from rich.console import Console
from rich.table import Table

from shared import topology
from shared.management import ManagementApi
from shared.registry import load_registry
from shared.settings import GwSettings

console = Console()

topology_app = typer.Typer(
    help="Show or declare the RabbitMQ topology (exchanges, queues, bindings).", no_args_is_help=True
)
dlq_app = typer.Typer(help="Inspect and replay dead-lettered messages.", no_args_is_help=True)
users_app = typer.Typer(help="Provision broker users with least-privilege permissions.", no_args_is_help=True)


def _topology(settings: GwSettings) -> topology.Topology:
    return topology.topology_for(load_registry(settings.registry_path))


def topology_rows(topo: topology.Topology) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for spec in topo.all_queues():
        rows.append(
            {
                "queue": spec.name,
                "type": "quorum",
                "arguments": spec.arguments(),
                "bindings": [f"{b.exchange.name} <- {b.routing_key}" for b in spec.bindings],
                "purpose": spec.purpose,
            }
        )
    return rows


@topology_app.command("show")
def topology_show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print every exchange, queue (with its arguments) and binding for the configured registry."""
    topo = _topology(GwSettings())
    if as_json:
        payload = {
            "exchanges": [{"name": e.name, "type": e.type.value, "durable": e.durable} for e in topo.exchanges],
            "queues": topology_rows(topo),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    exchanges = Table(title="Exchanges")
    for column in ("exchange", "type", "durable"):
        exchanges.add_column(column)
    for e in topo.exchanges:
        exchanges.add_row(e.name, e.type.value, str(e.durable))
    console.print(exchanges)
    queues = Table(title=f"Queues ({len(topo.all_queues())})")
    for column in ("queue", "type", "delivery limit", "dead letters to", "bindings"):
        queues.add_column(column)
    for spec in topo.all_queues():
        args = spec.arguments()
        queues.add_row(
            spec.name,
            "quorum",
            str(args.get("x-delivery-limit", "-")),
            f"{args['x-dead-letter-exchange']} -> {spec.dead_letter_queue}" if args else "-",
            "\n".join(f"{b.exchange.name} <- {b.routing_key}" for b in spec.bindings),
        )
    console.print(queues)


@topology_app.command("declare")
def topology_declare() -> None:
    """Declare the whole topology on the broker in GW_AMQP_URL (idempotent): the operator's step before
    the services start (each declares only the queues it owns)."""
    from tools.vhosts import declare_registry_topology

    queues = asyncio.run(declare_registry_topology(GwSettings()))
    console.print(f"declared {len(topology.EXCHANGES)} exchanges and {queues} queues")


@dlq_app.command("list")
def dlq_list() -> None:
    """Dead-letter queues and how many messages wait in each."""

    async def fetch() -> list[Any]:
        async with ManagementApi(GwSettings()) as api:
            return [q for q in await api.queues() if q.name.endswith(".dead")]

    table = Table(title="Dead-letter queues")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for q in sorted(asyncio.run(fetch()), key=lambda q: -q.ready):
        table.add_row(q.name, str(q.ready + q.unacked))
    console.print(table)


async def _peek_or_move(queue: str, limit: int, *, replay: bool) -> list[dict[str, Any]]:
    settings = GwSettings()
    moved: list[dict[str, Any]] = []
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        dead = await channel.get_queue(queue, ensure=True)
        held: list[aio_pika.abc.AbstractIncomingMessage] = []
        for _ in range(limit):
            message = await dead.get(fail=False, no_ack=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            info = {
                "message_id": message.message_id,
                "reason": headers.get(topology.HEADER_ERROR, _death_reason(headers)),
                "source": headers.get(topology.HEADER_SOURCE_QUEUE, ""),
                "routing_key": headers.get(topology.HEADER_ORIGINAL_ROUTING_KEY, message.routing_key),
            }
            if replay:
                exchange_name = str(headers.get(topology.HEADER_ORIGINAL_EXCHANGE) or _death_exchange(headers))
                broker_said = ("x-death", topology.HEADER_DELIVERY_COUNT)
                for key in [k for k in headers if k.startswith("x-gw-") or k in broker_said]:
                    headers.pop(key)
                exchange = await channel.get_exchange(exchange_name, ensure=False)
                await exchange.publish(
                    aio_pika.Message(
                        message.body,
                        headers=headers,
                        content_type=message.content_type,
                        message_id=message.message_id,
                        correlation_id=message.correlation_id,
                        type=message.type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=str(info["routing_key"]),
                    mandatory=True,
                )
                await message.ack()  # only after the broker confirmed the replay
            else:
                held.append(message)
            moved.append(info)
        for message in held:  # peeking: give them back untouched
            await message.nack(requeue=True)
    return moved


def _death_reason(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    return str(deaths[0].get("reason", "")) if deaths else ""


def _death_exchange(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    return str(deaths[0].get("exchange", "")) if deaths else ""


@dlq_app.command("show")
def dlq_show(
    queue: Annotated[str, typer.Argument(help="Dead-letter queue, e.g. dispatch.commands.dead")],
    limit: Annotated[int, typer.Option(help="At most this many messages")] = 20,
) -> None:
    """Show dead letters with their reasons (they stay in the queue)."""
    rows = asyncio.run(_peek_or_move(queue, limit, replay=False))
    table = Table(title=f"{queue}: {len(rows)} shown")
    for column in ("message_id", "source", "routing key", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["message_id"]), str(row["source"]), str(row["routing_key"]), str(row["reason"]))
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    queue: Annotated[str, typer.Argument(help="Dead-letter queue to replay, e.g. stats.events.dead")],
    limit: Annotated[int, typer.Option(help="At most this many messages")] = 1000,
) -> None:
    """Publish dead letters back to their original exchange and routing key (after a fix)."""
    rows = asyncio.run(_peek_or_move(queue, limit, replay=True))
    console.print(f"replayed {len(rows)} message(s) from {queue}")


@users_app.command("provision")
def users_provision(
    department: Annotated[
        list[str] | None, typer.Option(help="Also create a user for this department (repeatable)")
    ] = None,
    grid_town: Annotated[
        list[str] | None, typer.Option(help="Also a grid staff user for this town's grid queue (repeatable)")
    ] = None,
    supervisor_town: Annotated[
        list[str] | None, typer.Option(help="Also a supervisor user for this town's supervision queue (repeatable)")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="Also a machine-source user that may only publish reports (repeatable)")
    ] = None,
) -> None:
    """Create one broker user per service (and per department, town grid staff, town supervisors and
    machine source) with least-privilege permissions (``shared.topology``: ``*_permissions``).

    Passwords are printed once; store them as secrets (GW_AMQP_URL of each service).
    """
    users: list[tuple[str, dict[str, str]]] = [
        (topology.service_user(service), topology.service_permissions(service)) for service in topology.QUEUE_OWNERS
    ]
    users += [(topology.department_user(d), topology.department_permissions(d)) for d in department or []]
    users += [(topology.grid_staff_user(t), topology.grid_staff_permissions(t)) for t in grid_town or []]
    users += [(topology.supervisor_user(t), topology.supervisor_permissions(t)) for t in supervisor_town or []]
    users += [(topology.source_user(n), topology.source_permissions()) for n in source or []]

    async def provision() -> list[tuple[str, str]]:
        created: list[tuple[str, str]] = []
        async with ManagementApi(GwSettings()) as api:
            for user, perms in users:
                password = secrets.token_urlsafe(18)
                await api.put_user(user, password)
                await api.set_permissions(user, **perms)
                created.append((user, password))
        return created

    table = Table(title="Broker users (passwords shown once)")
    table.add_column("user")
    table.add_column("password")
    for user, password in asyncio.run(provision()):
        table.add_row(user, password)
    console.print(table)
