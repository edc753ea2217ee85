"""A listener beside the system for ``make bench``: when each matter reached a work queue and
when it was closed, seen on the broker itself (an exclusive, auto-deleted queue bound to
``gw.dispatch`` and to the ``matter_closed`` events), so no service is changed to be measured."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aio_pika

from shared import topology

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection


def percentiles(samples: Sequence[float], points: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds (``nan`` when there is no sample)."""
    ordered = sorted(samples)
    out: dict[str, float] = {}
    for point in points:
        if not ordered:
            out[f"p{point:g}"] = math.nan
            continue
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        out[f"p{point:g}"] = ordered[rank - 1] * 1000
    return out


@dataclass
class LatencyTap:
    amqp_url: str
    to_work_queue: dict[str, float] = field(default_factory=dict)  # matter_id -> first work item seen
    to_department: dict[str, float] = field(default_factory=dict)  # matter_id -> first department item seen
    closed: dict[str, float] = field(default_factory=dict)  # matter_id -> matter_closed seen
    _connection: AbstractRobustConnection | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(topology.DISPATCH.name, "#")
        await queue.bind(topology.EVENTS.name, "*.*.matter_closed")
        await queue.consume(self._seen, no_ack=True)

    async def _seen(self, message: AbstractIncomingMessage) -> None:
        now = time.monotonic()
        try:
            matter_id = str(json.loads(message.body)["matter_id"])
        except (ValueError, KeyError, TypeError):
            return
        if message.exchange == topology.EVENTS.name:
            self.closed.setdefault(matter_id, now)
            return
        self.to_work_queue.setdefault(matter_id, now)
        if (message.routing_key or "").split(".")[1:2] == ["department"]:
            self.to_department.setdefault(matter_id, now)

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def since(self, seen: dict[str, float], sent_at: dict[str, float]) -> list[float]:
        return [seen[m] - t for m, t in sent_at.items() if m in seen]
