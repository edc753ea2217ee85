"""``gridwhistle run``: the whole system on one machine, as in production but local.

Order of start: stack (RabbitMQ, the Mongo-wire store, Prometheus) → stats → dispatch → intake → console (each a
separate process, each waited for on ``/healthz``) → the simulator with its bots. The live
console then runs until Ctrl-C (or SIGTERM), also after the simulator has finished, so its
final figures stay on screen.

Stopping goes in the reverse order of the flow (simulator, console, intake, dispatch, stats), each
with SIGTERM and its graceful timeout; a second Ctrl-C cuts the waits short (SIGKILL). Then
the stack components *this run started* are stopped (those that were already running stay,
unless ``--keep-stack`` keeps them all). Accepted matters are in durable queues or already in
the read models, so nothing accepted is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console
from rich.live import Live

from services.console.config import ConsoleSettings
from services.dispatch.config import DispatchSettings
from services.intake.config import IntakeSettings
from services.simulator.console import ConsoleState, Endpoints, render, status_line, summary_panel
from services.simulator.processes import ManagedProcess, python_module, service_argv
from services.simulator.scenario import Scenario, ScenarioError, load_scenario
from services.stats.config import StatsSettings
from shared.settings import GwSettings
from tools.stack.model import (
    ALERT_INBOX,
    ALERT_INBOX_ADDRESS,
    ALERTMANAGER_ADDRESS,
    PROMETHEUS_ADDRESS,
    Action,
    StackError,
    StackUpError,
    format_address,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tools.stack.model import UpResult

console = Console()

PLAIN_STATUS_EVERY = 10.0
"""Seconds between status lines when the output is not a terminal (the live view needs one)."""


class ServiceDiedError(RuntimeError):
    """A service process exited while the run was going on."""


@dataclass
class Shutdown:
    """Signals during a run: the first asks to stop, a second (while stopping) to hurry.

    While the live console's event loop runs, the first signal only sets ``requested`` (the loop
    checks it every second): a KeyboardInterrupt raised from a signal handler lands wherever the
    loop happens to be, and inside an HTTP client's task it could be swallowed — Ctrl-C then did
    nothing. Before and after the loop (plain blocking start-up code) it raises as usual."""

    stopping: bool = False
    hurry: bool = False
    watching: bool = False
    requested: bool = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping and self.watching:
            self.requested = True
            return
        if not self.stopping:
            raise KeyboardInterrupt
        if not self.hurry:
            self.hurry = True
            console.print("[yellow]second interrupt: not waiting for graceful exits any more[/]")


def _ports() -> dict[str, int]:
    return {
        "stats": StatsSettings().stats_port,
        "dispatch": DispatchSettings().dispatch_port,
        "intake": IntakeSettings().intake_port,
        "console": ConsoleSettings().console_port,
    }


def _local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def run_everything(
    *, scenario: str, speed: float, rate: float, limit: int | None = None, keep_stack: bool = False
) -> int:
    """Start it all, show the console until interrupted, stop it all. Returns the exit code."""
    try:
        chosen = load_scenario(scenario)
    except ScenarioError as error:
        console.print(f"[red]{error}[/]")
        return 2
    run = LocalRun(GwSettings(), chosen, scenario, speed=speed, rate=rate, limit=limit)
    shutdown = Shutdown()
    shutdown.install()
    code = 0
    try:
        run.start_stack()
        run.start_services()
        run.start_simulator()
        shutdown.watching = True
        asyncio.run(run.watch(until=lambda: shutdown.requested))
    except KeyboardInterrupt:
        pass
    except (ServiceDiedError, RuntimeError, StackError) as error:
        console.print(f"[red]{error}[/]")
        code = 1
    finally:
        shutdown.stopping = True
        run.stop(hurry=lambda: shutdown.hurry, keep_stack=keep_stack)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return code


@dataclass
class LocalRun:
    """What one ``gridwhistle run`` started, so that it stops exactly that."""

    settings: GwSettings
    scenario: Scenario
    scenario_ref: str  # as given: a name under deploy/scenarios/ or a YAML path
    speed: float
    rate: float
    limit: int | None = None
    ports: dict[str, int] = field(default_factory=_ports)
    started_stack: list[str] = field(default_factory=list)
    started: list[ManagedProcess] = field(default_factory=list)
    services: list[ManagedProcess] = field(default_factory=list)
    simulator: ManagedProcess | None = None
    endpoints: Endpoints | None = None
    state: ConsoleState | None = None

    @property
    def logs(self) -> Path:
        return self.settings.state_dir / "logs"

    @property
    def summary_path(self) -> Path:
        return self.logs / "simulator-summary.json"

    @property
    def env(self) -> dict[str, str]:
        """The services and the simulator read the scenario's registry (a county run needs every town)."""
        return {"GW_REGISTRY_PATH": str(self.scenario.registry_path())}

    def start_stack(self) -> None:
        from tools.stack import console_say, stack_up

        console.print("[bold]1/3[/] local stack")
        try:
            results = stack_up(self.settings, say=console_say(console))
        except StackUpError as error:
            self.started_stack = _started_by_us(error.results)
            raise
        self.started_stack = _started_by_us(results)
        prometheus = results["prometheus"].address if "prometheus" in results else format_address(*PROMETHEUS_ADDRESS)
        alertmanager = results["alertmanager"].address if "alertmanager" in results else None
        inbox = results[ALERT_INBOX].address if ALERT_INBOX in results else None
        self.endpoints = Endpoints(
            intake=_local_url(self.ports["intake"]),
            dispatch=_local_url(self.ports["dispatch"]),
            stats=_local_url(self.ports["stats"]),
            prometheus=f"http://{prometheus}",
            rabbitmq_ui=_management_ui(self.settings),
            alertmanager=f"http://{alertmanager or format_address(*ALERTMANAGER_ADDRESS)}",
            alert_inbox=f"http://{inbox or format_address(*ALERT_INBOX_ADDRESS)}/alerts",
            console=_local_url(self.ports["console"]),
        )

    def start_services(self) -> None:
        from tools.vhosts import declare_registry_topology_blocking

        queues = declare_registry_topology_blocking(self.settings)  # the operator's step
        console.print(f"[bold]2/3[/] topology: {queues} queues declared")
        console.print("[bold]2/3[/] services: " + ", ".join(f"{n} :{p}" for n, p in self.ports.items()))
        env = {
            **self.env,
            "GW_CONSOLE_STATS_URL": _local_url(self.ports["stats"]),
            "GW_CONSOLE_INTAKE_URL": _local_url(self.ports["intake"]),
        }
        self.services = _service_processes(self.ports, self.logs, env)
        for proc in self.services:
            proc.start()
            self.started.append(proc)
            proc.wait_healthy()
            console.print(f"  {proc.name} healthy (pid {proc.pid}, log {proc.log_path})")
        console.print(
            f"  web console: {_local_url(self.ports['console'])}/ "
            "(sign in with `gridwhistle console issue --department changjia.civil_affairs`, "
            "`--grid changjia-g017` or `--supervisor changjia`)"
        )

    def start_simulator(self) -> None:
        assert self.endpoints is not None
        self.summary_path.unlink(missing_ok=True)
        args = ["--scenario", self.scenario_ref, "--speed", str(self.speed), "--rate", str(self.rate)]
        args += ["--until-drained", "--intake-url", self.endpoints.intake, "--stats-url", self.endpoints.stats]
        args += ["--leave-unknown"]  # a person in the web console works the same queues as the bots
        args += ["--summary", str(self.summary_path)] + (["--limit", str(self.limit)] if self.limit else [])
        self.simulator = ManagedProcess(
            "simulator", python_module("services.cli", "simulate", *args), self.logs / "simulator.log", env=self.env
        )
        towns = self.scenario.towns or sorted(_towns_of(self.scenario.registry_path()))
        self.state = ConsoleState(self.settings, self.endpoints, towns, self.summary_path, started=time.monotonic())
        asyncio.run(self.state.refresh())  # the baseline: what earlier runs left in the read models
        console.print(f"[bold]3/3[/] simulator ({self.scenario.name}) and bots — log {self.simulator.log_path}")
        self.simulator.start()
        self.started.append(self.simulator)

    async def watch(self, until: Callable[[], bool] = lambda: False) -> None:
        """The live console until ``until()`` says stop (the first Ctrl-C); raises
        :class:`ServiceDiedError` if a service exits."""
        assert self.state is not None and self.simulator is not None
        state = self.state
        watched = [*self.services, self.simulator]
        live = Live(render(state), console=console, refresh_per_second=2, screen=False)
        terminal = console.is_terminal
        last_line, summary_shown = 0.0, False
        with live if terminal else contextlib.nullcontext():
            while True:
                with contextlib.suppress(Exception):  # a slow endpoint must not kill the console
                    await state.refresh()
                state.processes = {p.name: _status(p) for p in watched}
                if terminal:
                    live.update(render(state))
                elif time.monotonic() - last_line >= PLAIN_STATUS_EVERY:  # piped or logged: a line now and then
                    console.print(status_line(state), markup=False, highlight=False, soft_wrap=True)
                    last_line = time.monotonic()
                    if state.summary is not None and not summary_shown:
                        console.print(summary_panel(state.summary))
                        summary_shown = True
                dead = [p for p in self.services if not p.alive()]
                if dead:
                    raise ServiceDiedError(f"{dead[0].name} exited; last log lines:\n{dead[0].log_tail()}")
                if until():
                    return
                await asyncio.sleep(1.0)

    def stop(self, *, hurry: Callable[[], bool], keep_stack: bool) -> None:
        """Processes in the reverse order of start, then the stack components this run started."""
        from tools.stack import console_say, stack_down

        if self.started:
            names = ", ".join(p.name for p in reversed(self.started))
            console.print(f"stopping: {names} (Ctrl-C again to hurry)")
        for proc in reversed(self.started):
            code = proc.stop(grace=self.settings.graceful_timeout + 10, hurry=hurry)
            console.print(f"  {proc.name} stopped ({describe_exit(code)})")
        if not self.started_stack:
            return
        if keep_stack:
            console.print(f"left running (--keep-stack): {', '.join(self.started_stack)}; `make stack-down` stops them")
            return
        console.print(f"stopping the stack components this run started: {', '.join(self.started_stack)}")
        try:
            stack_down(self.settings, self.started_stack, say=console_say(console), exact=True)
        except StackError as error:
            console.print(f"[red]{error}[/]")


def _service_processes(ports: dict[str, int], logs: Path, env: dict[str, str]) -> list[ManagedProcess]:
    return [
        ManagedProcess(
            name,
            service_argv(name, port),
            logs / f"{name}.log",
            env=env,
            health_url=f"{_local_url(port)}/healthz",
        )
        for name, port in ports.items()
    ]


def _started_by_us(results: dict[str, UpResult]) -> list[str]:
    return [name for name, result in results.items() if result.action is Action.START]


def _management_ui(settings: GwSettings) -> str:
    parts = urlsplit(settings.amqp_management_url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else f"{parts.scheme}://{parts.hostname}"


def _towns_of(registry_path: Path) -> list[str]:
    from shared.registry import load_registry

    return list(load_registry(registry_path).town_ids)


def _status(proc: ManagedProcess) -> str:
    if proc.alive():
        return f"[green]up[/] (pid {proc.pid})"
    code = proc.process.returncode if proc.process else None
    return f"[{'green' if code == 0 else 'red'}]{describe_exit(code)}[/]"


def describe_exit(code: int | None) -> str:
    """``exit 0``, ``exit 1``, ``ended by SIGTERM`` (uvicorn re-raises it after its graceful stop)."""
    if code is None:
        return "not started"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"ended by {signal.Signals(-code).name}"
    return f"exit {code}"
