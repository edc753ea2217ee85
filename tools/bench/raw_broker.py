"""Broker single hop: aio-pika, persistent messages on a quorum queue, publisher confirms
(pipelined in windows), one consumer acking each message. Prints ``{"messages_per_s": ...}``.

    python -m tools.bench.raw_broker --url amqp://guest:guest@127.0.0.1:5672/ --messages 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import aio_pika


async def run(url: str, messages: int, window: int, prefetch: int) -> dict[str, float]:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(
            f"bench.raw.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
        )
        body = json.dumps({"matter_id": str(uuid.uuid4()), "event_type": "matter_reported", "pad": "x" * 400}).encode()
        received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received >= messages:
                done.set()

        started = time.perf_counter()
        consumer_tag = await queue.consume(on_message)
        for first in range(0, messages, window):
            batch = [
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(i)),
                    routing_key=queue.name,
                )
                for i in range(first, min(first + window, messages))
            ]
            await asyncio.gather(*batch)  # each awaits its confirm
        published = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), timeout=300)
        total = time.perf_counter() - started
        await queue.cancel(consumer_tag)
        await queue.delete(if_unused=False, if_empty=False)
    return {"messages": messages, "publish_per_s": messages / published, "messages_per_s": messages / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100, help="publishes in flight awaiting confirms")
    parser.add_argument("--prefetch", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.messages, args.window, args.prefetch))))  # noqa: T201 - the result line the bench reads


if __name__ == "__main__":
    main()
