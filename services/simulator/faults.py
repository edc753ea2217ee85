"""The faults ``make chaos`` injects, one per phase, each on a process of ours (found by PID).

A fault is a coroutine that breaks something, waits as long as the fault lasts, repairs it and
returns a note for the table. Blocking steps (signals, ``rabbitmqctl``, process restarts) run in
a thread so the replay beside it keeps submitting.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aio_pika
from faststream.rabbit import RabbitExchange

from shared import topology
from shared.management import connection_options, vhost_of
from tools.stack import stack_down, stack_up
from tools.stack.cluster import (
    kill_node,
    pause_node,
    queue_leaders,
    restart_node,
    resume_node,
    set_disk_alarm,
)
from tools.stack.model import CLUSTER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.simulator.processes import ManagedProcess
    from services.simulator.sandbox import ServiceSandbox
    from shared.settings import GwSettings
    from shared.topology import QueueSpec

POISON_PER_EXCHANGE = 10
NODE_DOWN_SECONDS = 5.0
PAUSE_SECONDS = 30.0
DISK_ALARM_SECONDS = 10.0
DEAD_LETTER_WAIT = 60.0


@dataclass
class ChaosRig:
    """What a fault may act on: the dev stack (the store), the cluster and the sandboxed services."""

    base: GwSettings
    sandbox: ServiceSandbox

    @property
    def settings(self) -> GwSettings:
        assert self.sandbox.settings is not None
        return self.sandbox.settings

    @property
    def vhost(self) -> str:
        return vhost_of(self.settings.amqp_url)

    def process(self, label: str) -> ManagedProcess:
        return next(p for p in self.sandbox.processes if p.name == label)


@dataclass(frozen=True)
class Fault:
    key: str
    label: str
    inject: Callable[[ChaosRig], Awaitable[str]]
    lasts: float = 0.0
    """Seconds the fault itself goes on (the phase is long enough to hold it)."""
    rate_factor: float = 1.0


def _kill_and_restart(proc: ManagedProcess) -> float:
    started = time.monotonic()
    pid = proc.pid
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        assert proc.process is not None
        proc.process.wait(timeout=10)
    proc.start()
    proc.wait_healthy()
    return time.monotonic() - started


def kill_service(label: str) -> Callable[[ChaosRig], Awaitable[str]]:
    async def inject(rig: ChaosRig) -> str:
        back = await asyncio.to_thread(_kill_and_restart, rig.process(label))
        return f"SIGKILL, restarted, healthy after {back:.1f} s"

    return inject


async def kill_department_leader(rig: ChaosRig) -> str:
    leaders = await asyncio.to_thread(queue_leaders, rig.settings, rig.vhost, "dept.")
    victim, led = leaders.most_common(1)[0]
    await asyncio.to_thread(kill_node, rig.base, victim)
    await asyncio.sleep(NODE_DOWN_SECONDS)
    started = time.monotonic()
    await asyncio.to_thread(restart_node, rig.base, victim)
    return (
        f"{victim} led {led} of {sum(leaders.values())} department queues; SIGKILL, "
        f"down {NODE_DOWN_SECONDS:.0f} s, rejoined after {time.monotonic() - started:.1f} s"
    )


async def pause_busiest_node(rig: ChaosRig) -> str:
    leaders = await asyncio.to_thread(queue_leaders, rig.settings, rig.vhost)
    # Not node 1: it serves the management API the books are read through.
    victim = max(CLUSTER[1:], key=lambda name: leaders.get(name, 0))
    pid = await asyncio.to_thread(pause_node, rig.base, victim)
    try:
        await asyncio.sleep(PAUSE_SECONDS)
    finally:
        resume_node(pid)
    return f"SIGSTOP {victim} ({leaders.get(victim, 0)} queue leaders) for {PAUSE_SECONDS:.0f} s, then SIGCONT"


async def restart_store(rig: ChaosRig) -> str:
    started = time.monotonic()
    await asyncio.to_thread(stack_down, rig.base, ["mongo"], exact=True)
    await asyncio.to_thread(stack_up, rig.base, ["mongo"])
    return f"stopped and started, back after {time.monotonic() - started:.1f} s"


async def disk_alarm(rig: ChaosRig) -> str:
    victim = CLUSTER[1]
    await asyncio.to_thread(set_disk_alarm, rig.base, victim, on=True)
    try:
        await asyncio.sleep(DISK_ALARM_SECONDS)
    finally:
        await asyncio.to_thread(set_disk_alarm, rig.base, victim, on=False)
    return f"disk alarm on {victim} for {DISK_ALARM_SECONDS:.0f} s: every publisher in the cluster blocked"


POISON_TARGETS: tuple[tuple[RabbitExchange, str, tuple[QueueSpec, ...]], ...] = (
    (
        topology.EVENTS,
        topology.event_routing_key("town", "grid", "matter_reported"),
        (topology.STATS_EVENTS, topology.DISPATCH_EVENTS),
    ),
    (topology.COMMANDS, topology.command_routing_key("town", "accept_matter"), (topology.DISPATCH_COMMANDS,)),
    (topology.INTAKE, topology.intake_routing_key("town", "poison"), (topology.INTAKE_REPORTS,)),
)
"""Where poison goes, and the queues whose dead-letter queues must then hold it."""


def _dead_letters(rig: ChaosRig, queues: list[QueueSpec]) -> dict[str, int]:
    """How many messages each queue's dead-letter queue holds, by the queue's name."""
    import httpx

    out: dict[str, int] = {}
    with httpx.Client(**connection_options(rig.settings)) as client:
        for queue in queues:
            response = client.get(f"/api/queues/{rig.vhost.replace('/', '%2F')}/{queue.dead_letter_queue}")
            response.raise_for_status()
            out[queue.name] = int(response.json().get("messages", 0))
    return out


async def poison(rig: ChaosRig) -> str:
    """Malformed bodies on every exchange a service consumes: each must reach a dead-letter queue."""
    queues = [q for _, _, targets in POISON_TARGETS for q in targets]
    before = await asyncio.to_thread(_dead_letters, rig, queues)
    connection = await aio_pika.connect(rig.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for exchange, key, _ in POISON_TARGETS:
            target = await channel.get_exchange(exchange.name, ensure=False)
            for i in range(POISON_PER_EXCHANGE):
                body = b"\x00not json" if i % 2 else json.dumps({"schema": 2, "event_type": "nonsense"}).encode()
                await target.publish(aio_pika.Message(body, message_id=f"poison-{key}-{i}"), routing_key=key)
    expected = POISON_PER_EXCHANGE * len(queues)
    deadline = time.monotonic() + DEAD_LETTER_WAIT
    while True:
        now = await asyncio.to_thread(_dead_letters, rig, queues)
        got = sum(now[q.name] - before[q.name] for q in queues)
        if got >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    if got != expected:
        raise AssertionError(f"poison: {got} of {expected} malformed messages dead-lettered")
    exchanges = len(POISON_TARGETS)
    return f"{POISON_PER_EXCHANGE} malformed bodies on each of {exchanges} exchanges: {got}/{expected} dead-lettered"


async def nothing(rig: ChaosRig) -> str:
    return "no fault: five times the rate"


FAULTS: tuple[Fault, ...] = (
    Fault("kill-intake", "SIGKILL intake", kill_service("intake")),
    Fault("kill-dispatch-1", "SIGKILL dispatch replica 1", kill_service("dispatch")),
    Fault("kill-dispatch-2", "SIGKILL dispatch replica 2", kill_service("dispatch-2")),
    Fault("kill-stats-1", "SIGKILL stats replica 1", kill_service("stats")),
    Fault("kill-stats-2", "SIGKILL stats replica 2", kill_service("stats-2")),
    Fault("kill-leader-node", "kill the node leading the department queues", kill_department_leader, NODE_DOWN_SECONDS),
    Fault("pause-node", "SIGSTOP a node for 30 s", pause_busiest_node, PAUSE_SECONDS),
    Fault("restart-store", "restart the store", restart_store),
    Fault("disk-alarm", "disk alarm on one node", disk_alarm, DISK_ALARM_SECONDS),
    Fault("poison", "poison messages", poison),
    Fault("burst", "burst at 5x the rate", nothing, rate_factor=5.0),
)
FAULTS_BY_KEY = {fault.key: fault for fault in FAULTS}
SHORT = ("kill-dispatch-1", "kill-leader-node")
"""The short run ``make test`` does on the cluster: one service kill and one node kill."""
