"""Queue depths as the console and the replay read them: the services' own queues, the work
queues people take matters from, and the dead letters folded into their queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import topology

if TYPE_CHECKING:
    from shared.management import QueueDepth

SERVICE_QUEUE_NAMES = frozenset(spec.name for spec in topology.SERVICE_QUEUES)
"""The services' own queues (``shared.topology``); every other queue is a work queue people take
matters from (department, grid staff, supervisors)."""


def split_queues(queues: list[QueueDepth]) -> tuple[list[QueueDepth], list[QueueDepth], dict[str, int]]:
    """(service queues, work queues, dead letters per queue) — ``<queue>.dead`` folds into its queue."""
    dead = {q.name.removesuffix(".dead"): q.ready + q.unacked for q in queues if q.name.endswith(".dead")}
    live = [q for q in queues if not q.name.endswith(".dead")]
    services = [q for q in live if q.name in SERVICE_QUEUE_NAMES]
    work = [q for q in live if q.name not in SERVICE_QUEUE_NAMES]
    return services, work, dead
