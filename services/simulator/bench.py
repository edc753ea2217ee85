"""``make bench``: throughput and memory of the three services end to end, printed.

Runs the services as separate processes in a ``ServiceSandbox`` (own ports, vhost and
database, so a running ``make run`` is not disturbed), pushes N matters of the Changjia
scenario through intake's HTTP API with the bots at full speed, waits until every one is
closed in the read models, and prints: intake acceptance rate, end-to-end closure rate,
drain time and each service's peak resident memory. Nothing is asserted here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.simulator.replay import ReplayOptions, replay
from services.simulator.sandbox import ServiceSandbox
from services.simulator.scenario import load_scenario
from shared.settings import GwSettings

console = Console()


def peak_rss_mib(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_bench(*, matters: int) -> int:
    from shared.stack import console_say, stack_up

    base = GwSettings()
    stack_up(base, say=console_say(console))
    with ServiceSandbox(base, label="bench", extra_env={"GW_LOG_LEVEL": "WARNING"}) as sandbox:
        assert sandbox.settings is not None
        options = ReplayOptions(
            speed=float("inf"),
            rate=0.0,  # as fast as intake takes them
            limit=matters,
            until_drained=True,
            drain_timeout=900.0,
            intake_url=sandbox.url("intake"),
            stats_url=sandbox.url("stats"),
            concurrency=64,
        )
        started = time.monotonic()
        result = asyncio.run(replay(load_scenario("changjia"), sandbox.settings, options))
        total = time.monotonic() - started
        table = Table(title=f"make bench — {result.planned} matters, Changjia scenario, 3 service processes")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row(
            "intake: reports accepted per second (HTTP, confirmed)", f"{result.planned / result.submit_seconds:,.1f}"
        )
        table.add_row("end to end: matters closed per second", f"{result.planned / total:,.1f}")
        table.add_row("drain after the last report (s)", f"{result.drain_seconds:,.1f}")
        table.add_row("wall time (s)", f"{total:,.1f}")
        table.add_row("read-model figures equal the plan", str(result.matches))
        for proc in sandbox.processes:
            table.add_row(f"{proc.name}: peak RSS (MiB)", f"{peak_rss_mib(proc.pid):,.1f}")
        console.print(table)
        return 0 if result.matches else 1
