"""A Gridwhistle department in Python (aio-pika), written as any integrator would: no Gridwhistle
imports, only the contract (docs/asyncapi/department.json, guide: docs/integrators.md).

Takes one work item from ``dept.<department_id>``, prints it, accepts it on ``gw.commands``, exits 0.

    GW_AMQP_URL=amqp://user:password@host:5672/vhost GW_DEPARTMENT_ID=changjia.emergency_safety \
        python examples/department/python/department.py

``GW_EXAMPLE_TIMEOUT``: seconds to wait for a work item (default 30).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika

COMMANDS = "gw.commands"  # topic exchange, routing key <town_id>.<command_type>
SCHEMA_VERSION = 2  # the contract version this client was written against


async def accept_one(url: str, department_id: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        # Publisher confirms, and an unroutable mandatory message raises instead of vanishing.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=1)
        # Passive declares only: a department user has no configure permission, so it never
        # declares or binds; the services declared the queue and the exchange.
        queue = await channel.declare_queue(f"dept.{department_id}", passive=True)
        commands = await channel.get_exchange(COMMANDS, ensure=True)
        async with queue.iterator() as deliveries:
            async for delivery in deliveries:
                if await handle(commands, delivery, department_id):
                    return


async def handle(
    commands: aio_pika.abc.AbstractExchange, delivery: aio_pika.abc.AbstractIncomingMessage, department_id: str
) -> bool:
    """True once a ``matter_dispatched`` was accepted; other work items are acknowledged and skipped."""
    event: dict[str, Any] = json.loads(delivery.body)
    if event.get("event_type") != "matter_dispatched":
        await delivery.ack()  # e.g. matter_escalated: a notice, nothing to accept
        return False
    matter = event["matter"]  # MatterSnapshot: this department's part is among its owners
    me = next((o for o in matter.get("owners", []) if o["owner_id"] == department_id), None)
    if me is None:
        await delivery.ack()
        return False
    print(f"matter {event['matter_id']} round {event['round']} role {me['role']} state {me['state']}", flush=True)

    command = {
        "message_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "matter_id": event["matter_id"],
        "town_id": event["town_id"],
        "grid_id": event["grid_id"],
        "correlation_id": event["matter_id"],
        "command_type": "accept_matter",
        "actor_id": department_id,
        "round": event["round"],  # the round this command acts on
    }
    await commands.publish(  # returns once the broker confirmed it
        aio_pika.Message(
            json.dumps(command).encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=command["message_id"],
            correlation_id=command["correlation_id"],
            type=command["command_type"],
        ),
        routing_key=f"{command['town_id']}.{command['command_type']}",
        mandatory=True,
    )
    await delivery.ack()  # only after the command is safely on the broker
    print(f"accepted matter {event['matter_id']} round {event['round']}", flush=True)
    return True


def main() -> int:
    url, department_id = os.environ.get("GW_AMQP_URL"), os.environ.get("GW_DEPARTMENT_ID")
    if not url or not department_id:
        print("GW_AMQP_URL and GW_DEPARTMENT_ID are required", file=sys.stderr)
        return 2
    try:
        timeout = float(os.environ.get("GW_EXAMPLE_TIMEOUT", "30"))
        asyncio.run(asyncio.wait_for(accept_one(url, department_id), timeout))
    except TimeoutError:
        print(f"no work item on dept.{department_id}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
