"""``gridwhistle run``: the whole system on one machine, as in production but local.

Order of start: stack (RabbitMQ, FerretDB, Prometheus) → stats → dispatch → intake (each a
separate process, each waited for on ``/healthz``) → the simulator with its bots. Ctrl-C
stops them in the reverse order of the flow (simulator, intake, dispatch, stats), each with
SIGTERM and its graceful timeout: accepted matters are in durable queues or already in the
read models, so nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live

from services.simulator.console import ConsoleState, render
from services.simulator.processes import ManagedProcess, python_module
from shared.settings import GwSettings

if TYPE_CHECKING:
    from pathlib import Path

console = Console()

SERVICES = (("stats", 8030), ("dispatch", 8020), ("intake", 8010))


def _services(logs: Path) -> list[ManagedProcess]:
    return [
        ManagedProcess(
            name,
            python_module(f"services.{name}.app"),
            logs / f"{name}.log",
            health_url=f"http://127.0.0.1:{port}/healthz",
        )
        for name, port in SERVICES
    ]


def run_everything(*, scenario: str, speed: float, rate: float) -> int:
    from shared.stack import console_say, stack_up

    settings = GwSettings()
    logs = settings.state_dir / "logs"
    console.print("[bold]1/3[/] local stack")
    stack_up(settings, say=console_say(console))
    services = _services(logs)
    simulator = ManagedProcess(
        "simulator",
        python_module(
            "services.cli",
            "simulate",
            "--scenario",
            scenario,
            "--speed",
            str(speed),
            "--rate",
            str(rate),
            "--until-drained",
        ),
        logs / "simulator.log",
    )
    started: list[ManagedProcess] = []
    interrupted = False

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        console.print("[bold]2/3[/] services: " + ", ".join(f"{n} :{p}" for n, p in SERVICES))
        for proc in services:
            proc.start()
            started.append(proc)
            proc.wait_healthy()
            console.print(f"  {proc.name} healthy (pid {proc.pid}, log {proc.log_path})")
        console.print(f"[bold]3/3[/] simulator ({scenario}) and bots — Ctrl-C to stop")
        simulator.start()
        started.append(simulator)
        asyncio.run(_live_console(settings, services, simulator))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        console.print("stopping: " + ", ".join(p.name for p in reversed(started)))
        for proc in reversed(started):
            code = proc.stop(grace=settings.graceful_timeout + 10)
            console.print(f"  {proc.name} stopped (exit {code})")
    return 0 if interrupted or simulator.process is None else (simulator.process.returncode or 0)


async def _live_console(settings: GwSettings, services: list[ManagedProcess], simulator: ManagedProcess) -> None:
    state = ConsoleState(settings=settings, started=time.monotonic())
    with Live(render(state), console=console, refresh_per_second=2, screen=False) as live:
        while True:
            with contextlib.suppress(Exception):  # a slow endpoint must not kill the console
                await state.refresh()
            state.processes = {p.name: p.alive() for p in [*services, simulator]}
            live.update(render(state))
            dead = [p for p in services if not p.alive()]
            if dead:
                raise RuntimeError(f"{dead[0].name} died; last log lines:\n{dead[0].log_tail()}")
            await asyncio.sleep(1.0)
