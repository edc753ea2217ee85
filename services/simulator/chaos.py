"""``make chaos``: faults under load, then the books are checked.

The three services run in a private sandbox; a Changjia replay runs at a steady rate with its
bots; meanwhile each service is SIGKILLed and restarted, then the store and the broker are
restarted (the local stack's own processes, by PID). When the replay has drained, every
figure of the read models must equal the plan: a report answered 202 and not counted is
*lost*, one counted more than once is *counted twice*. Prints the schedule it ran and the
verdict; exit 0 only when lost = counted twice = 0 and every figure matches.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from services.simulator.replay import ReplayResult, replay
from services.simulator.sandbox import ServiceSandbox
from services.simulator.scenario import load_scenario
from shared.settings import GwSettings

if TYPE_CHECKING:
    from services.simulator.processes import ManagedProcess

console = Console()

FAULTS: tuple[tuple[float, str], ...] = (
    (6.0, "kill dispatch"),
    (14.0, "kill stats"),
    (22.0, "kill intake"),
    (30.0, "restart store"),
    (40.0, "restart broker"),
)
"""Seconds after the replay starts, and what happens then."""


def _kill_and_restart(proc: ManagedProcess) -> None:
    pid = proc.pid
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        assert proc.process is not None
        proc.process.wait(timeout=10)
    proc.start()
    proc.wait_healthy()


def _restart_component(base: GwSettings, name: str) -> None:
    from tools.stack import stack_down, stack_up

    stack_down(base, [name], exact=True)
    stack_up(base, [name])


async def _inject(base: GwSettings, sandbox: ServiceSandbox, done: list[tuple[float, str, float]]) -> None:
    started = time.monotonic()
    by_name = {p.name: p for p in sandbox.processes}
    for at, fault in FAULTS:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        began = time.monotonic()
        verb, target = fault.split(" ", 1)
        if verb == "kill":
            await asyncio.to_thread(_kill_and_restart, by_name[target])
        else:
            await asyncio.to_thread(_restart_component, base, {"store": "mongo", "broker": "rabbitmq"}[target])
        done.append((began - started, fault, time.monotonic() - began))
        console.print(
            f"[yellow]fault[/] {fault} at {began - started:.0f}s (back after {time.monotonic() - began:.1f}s)"
        )


async def _run(
    base: GwSettings, sandbox: ServiceSandbox, matters: int, rate: float
) -> tuple[ReplayResult, list[tuple[float, str, float]]]:
    assert sandbox.settings is not None
    options = sandbox.replay_options(matters=matters, rate=rate, poll_every=1.0)
    done: list[tuple[float, str, float]] = []
    injector = asyncio.create_task(_inject(base, sandbox, done))
    try:
        result = await replay(load_scenario("changjia"), sandbox.settings, options)
    finally:
        await injector  # every fault has run (and its process is back) before the books are read
    return result, done


def run_chaos(*, matters: int = 900, rate: float = 15.0) -> int:
    from tools.stack import console_say, stack_up

    base = GwSettings()
    stack_up(base, say=console_say(console))
    with ServiceSandbox(base, label="chaos", extra_env={"GW_LOG_LEVEL": "WARNING"}) as sandbox:
        result, done = asyncio.run(_run(base, sandbox, matters, rate))
    reported, closed = result.observed.get("reported", 0.0), result.observed.get("closed", 0.0)
    lost = max(0, result.planned - int(reported))
    twice = max(0, int(reported) - result.planned)
    table = Table(title=f"make chaos — {result.planned} matters at {rate:g}/s, {len(done)} faults")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for at, fault, back in done:
        table.add_row(f"{fault} at {at:.0f}s", f"back after {back:.1f}s")
    table.add_row("reports accepted (202 or AMQP confirm)", str(result.planned - result.refused))
    table.add_row("reported in the read models", f"{reported:.0f}")
    table.add_row("closed in the read models", f"{closed:.0f}")
    table.add_row("lost", str(lost))
    table.add_row("counted twice", str(twice))
    table.add_row("every figure equals the plan", str(result.matches))
    console.print(table)
    return 0 if result.matches and lost == 0 and twice == 0 and len(done) == len(FAULTS) else 1
