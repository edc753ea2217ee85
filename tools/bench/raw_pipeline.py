"""The same-shape lifecycle pipeline with no framework: raw aio-pika + raw PyMongo, one process
per role, doing the system's message shape for each matter:

    reporter   insert the intake record, publish ``matter_reported`` (confirmed), mark it published
    dispatch   per report or command: read the case, write the next version with its outbox,
               publish the event (and a work item for a report), clear the outbox
    department per work item: publish accept, resolve and feedback commands
    stats      per event: insert it into the event log and update one counter

Persistent messages, publisher confirms, quorum queues, the same prefetch as the services.
Prints ``{"matters": N, "seconds": ..., "matters_per_s": ..., "messages": ...}``.

    python -m tools.bench.raw_pipeline --amqp-url amqp://.../vhost --mongo-db bench_raw --matters 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
import uuid
from typing import Any

import aio_pika
from pymongo import AsyncMongoClient

EVENTS, DISPATCH, COMMANDS = "raw.events", "raw.dispatch", "raw.commands"
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": 5}
NEXT_EVENT = {
    "accept_matter": "matter_accepted",
    "resolve_matter": "matter_resolved",
    "record_feedback": "matter_closed",
}
PUBLISHED_PER_MATTER = 9
"""matter_reported, matter_dispatched + its work item, 3 commands, 3 lifecycle events."""
TOWN, GRID, DEPARTMENT = "changjia", "changjia-g017", "changjia.emergency_safety"


def message(body: dict[str, Any]) -> aio_pika.Message:
    return aio_pika.Message(
        json.dumps(body).encode(),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=body["message_id"],
        content_type="application/json",
    )


def event(kind: str, matter_id: str, sequence: int) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "event_type": kind,
        "matter_id": matter_id,
        "town_id": TOWN,
        "grid_id": GRID,
        "category": "safety_hazard",
        "sequence": sequence,
        "occurred_at": time.time(),
    }


async def declare(url: str) -> None:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        events = await channel.declare_exchange(EVENTS, aio_pika.ExchangeType.TOPIC, durable=True)
        dispatch = await channel.declare_exchange(DISPATCH, aio_pika.ExchangeType.TOPIC, durable=True)
        commands = await channel.declare_exchange(COMMANDS, aio_pika.ExchangeType.TOPIC, durable=True)
        for name, exchange, key in (
            ("raw.dispatch.events", events, "*.*.matter_reported"),
            ("raw.dispatch.commands", commands, "#"),
            ("raw.stats.events", events, "#"),
            ("raw.dept", dispatch, "#"),
        ):
            queue = await channel.declare_queue(name, durable=True, arguments=QUORUM)
            await queue.bind(exchange, key)


async def reporter(url: str, mongo_url: str, db_name: str, matters: int, window: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    records = client[db_name]["raw_intake_reports"]
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(EVENTS)

        async def report(i: int) -> None:
            reported = {**event("matter_reported", str(uuid.uuid4()), 1), "summary": "x" * 200}
            await records.insert_one({"_id": f"{TOWN}:r-{i}", "event": reported, "status": "pending"})
            await events.publish(message(reported), routing_key=f"{TOWN}.{GRID}.matter_reported", mandatory=True)
            await records.update_one({"_id": f"{TOWN}:r-{i}"}, {"$set": {"status": "published"}})

        for first in range(0, matters, window):
            await asyncio.gather(*(report(i) for i in range(first, min(first + window, matters))))
    await client.close()


async def dispatch(url: str, mongo_url: str, db_name: str, matters: int, prefetch: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    cases = client[db_name]["raw_cases"]
    closed = 0
    done = asyncio.Event()
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        events, work = await channel.get_exchange(EVENTS), await channel.get_exchange(DISPATCH)

        async def handle(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal closed
            body = json.loads(incoming.body)
            matter_id = body["matter_id"]
            case = await cases.find_one({"_id": matter_id})
            version = case["version"] if case else 0
            kind = (
                "matter_dispatched" if body.get("event_type") == "matter_reported" else NEXT_EVENT[body["command_type"]]
            )
            out = event(kind, matter_id, version + 1)
            doc = {"version": version + 1, "state": kind, "outbox": [out]}
            if case is None:
                await cases.insert_one({"_id": matter_id, **doc})
            else:
                await cases.replace_one({"_id": matter_id, "version": version}, doc)
            await events.publish(message(out), routing_key=f"{TOWN}.{GRID}.{kind}", mandatory=True)
            if kind == "matter_dispatched":
                await work.publish(message(out), routing_key=f"{TOWN}.department.{DEPARTMENT}.p1", mandatory=True)
            await cases.update_one({"_id": matter_id, "version": version + 1}, {"$set": {"outbox": []}})
            await incoming.ack()
            if kind == "matter_closed":
                closed += 1
                if closed >= matters:
                    done.set()

        for name in ("raw.dispatch.events", "raw.dispatch.commands"):
            queue = await channel.get_queue(name)
            await queue.consume(handle)
        await done.wait()
    await client.close()


async def department(url: str, matters: int, prefetch: int) -> None:
    handled = 0
    done = asyncio.Event()
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        commands = await channel.get_exchange(COMMANDS)

        async def handle(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal handled
            matter_id = json.loads(incoming.body)["matter_id"]
            for command_type in ("accept_matter", "resolve_matter", "record_feedback"):
                body = {"message_id": str(uuid.uuid4()), "command_type": command_type, "matter_id": matter_id}
                await commands.publish(message(body), routing_key=f"{TOWN}.{command_type}", mandatory=True)
            await incoming.ack()
            handled += 1
            if handled >= matters:
                done.set()

        await (await channel.get_queue("raw.dept")).consume(handle)
        await done.wait()


async def stats(url: str, mongo_url: str, db_name: str, matters: int, prefetch: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    log, counters = client[db_name]["raw_event_log"], client[db_name]["raw_counters"]
    closed = 0
    done = asyncio.Event()
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)

        async def handle(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal closed
            body = json.loads(incoming.body)
            await log.insert_one({"_id": body["message_id"], "payload": body})
            await counters.update_one({"_id": f"{TOWN}|day"}, {"$inc": {body["event_type"]: 1}}, upsert=True)
            await incoming.ack()
            if body["event_type"] == "matter_closed":
                closed += 1
                if closed >= matters:
                    done.set()

        await (await channel.get_queue("raw.stats.events")).consume(handle)
        await done.wait()
    await client.close()


def role_main(role: str, args: argparse.Namespace) -> None:
    runs = {
        "reporter": lambda: reporter(args.amqp_url, args.mongo_url, args.mongo_db, args.matters, args.window),
        "dispatch": lambda: dispatch(args.amqp_url, args.mongo_url, args.mongo_db, args.matters, args.prefetch),
        "department": lambda: department(args.amqp_url, args.matters, args.prefetch),
        "stats": lambda: stats(args.amqp_url, args.mongo_url, args.mongo_db, args.matters, args.prefetch),
    }
    asyncio.run(asyncio.wait_for(runs[role](), timeout=args.timeout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--mongo-url", default="mongodb://127.0.0.1:27017")
    parser.add_argument("--mongo-db", default=f"bench_raw_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--matters", type=int, default=300)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--window", type=int, default=64, help="reports in flight (like the bench's submitter)")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(declare(args.amqp_url))
    context = multiprocessing.get_context("spawn")
    consumers = [context.Process(target=role_main, args=(r, args)) for r in ("stats", "dispatch", "department")]
    for proc in consumers:
        proc.start()
    time.sleep(1.0)  # consumers attached before the first report
    started = time.perf_counter()
    role_main("reporter", args)
    for proc in consumers:
        proc.join(args.timeout)
    seconds = time.perf_counter() - started
    failed = [p.exitcode for p in consumers if p.exitcode != 0]
    asyncio.run(drop(args.mongo_url, args.mongo_db))
    result = {
        "matters": args.matters,
        "seconds": seconds,
        "matters_per_s": args.matters / seconds,
        "published": args.matters * PUBLISHED_PER_MATTER,
        "failed": failed,
    }
    print(json.dumps(result))  # noqa: T201 - the result line the bench reads


async def drop(mongo_url: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    await client.drop_database(db_name)
    await client.close()


if __name__ == "__main__":
    main()
