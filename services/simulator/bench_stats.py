"""The bench's stats-alone phase: one stats process working off a backlog of real events.

The events are the system phase's own event log, published again (persistent, confirmed) into
a fresh vhost while the stats process is stopped; then it starts and the time until its queue
is empty and every event is in its event log gives events applied per second."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import aio_pika

from services.simulator.sandbox import ServiceSandbox
from shared import topology
from shared.mongo import make_mongo_client
from shared.read_models import EVENT_LOG

if TYPE_CHECKING:
    from shared.settings import GwSettings


async def logged_events(settings: GwSettings) -> list[dict[str, Any]]:
    client = make_mongo_client(settings)
    try:
        return [doc["payload"] async for doc in client[settings.mongo_db][EVENT_LOG].find({}, {"payload": 1})]
    finally:
        await client.close()


async def publish_backlog(amqp_url: str, events: list[dict[str, Any]], window: int = 200) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.EVENTS.name)
        for first in range(0, len(events), window):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            json.dumps(e).encode(),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=e["message_id"],
                            content_type="application/json",
                        ),
                        routing_key=topology.event_routing_key(e["town_id"], e["grid_id"], e["event_type"]),
                        mandatory=True,
                    )
                    for e in events[first : first + window]
                )
            )


async def applied_rate(settings: GwSettings, count: int) -> dict[str, float]:
    """Events per second from the first logged event to the last (the process start-up left out).
    Bound it with ``asyncio.timeout``."""
    client = make_mongo_client(settings)
    log = client[settings.mongo_db][EVENT_LOG]
    try:
        first = 0
        while first == 0:  # polling the store: the only witness of what stats applied
            await asyncio.sleep(0.02)
            first = await log.count_documents({})
        started = time.monotonic()
        done = first
        while done < count:
            await asyncio.sleep(0.05)
            done = await log.count_documents({})
        seconds = time.monotonic() - started
    finally:
        await client.close()
    return {"events": count, "seconds": seconds, "events_per_s": (count - first) / seconds}


async def _bounded_rate(settings: GwSettings, count: int, within: float) -> dict[str, float]:
    async with asyncio.timeout(within):
        return await applied_rate(settings, count)


def stats_alone(base: GwSettings, events: list[dict[str, Any]], timeout: float = 600.0) -> dict[str, float]:
    with ServiceSandbox(
        base, label="benchstats", services=("stats",), extra_env={"GW_LOG_LEVEL": "WARNING"}
    ) as sandbox:
        assert sandbox.settings is not None
        [stats] = sandbox.processes
        stats.stop(grace=30)  # its queue stays (durable): the backlog piles up there
        asyncio.run(publish_backlog(sandbox.settings.amqp_url, events))
        stats.start()
        return asyncio.run(_bounded_rate(sandbox.settings, len(events), timeout))
