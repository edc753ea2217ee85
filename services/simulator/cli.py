"""``gridwhistle run``, ``gridwhistle simulate`` and ``gridwhistle bench``."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from services.simulator.figures import FigureRow, figure_rows, figures_table
from services.simulator.replay import ReplayOptions, ReplayResult, replay
from services.simulator.scenario import ScenarioError, load_scenario
from shared.logging import configure_logging
from shared.settings import GwSettings

console = Console()
T = TypeVar("T")

SPEEDS = {"real": 1.0, "fast": 10_000.0, "max": math.inf}


def parse_speed(value: str) -> float:
    if value in SPEEDS:
        return SPEEDS[value]
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: a number or one of {', '.join(SPEEDS)}") from None
    if speed <= 0:
        raise typer.BadParameter("must be positive")
    return speed


def write_summary(path: Path, result: ReplayResult, rows: Sequence[FigureRow], *, drained: bool) -> None:
    """The outcome as JSON (read by ``gridwhistle run``'s console); written whole, then renamed."""
    summary = {
        "planned": result.planned,
        "refused": result.refused,
        "submit_seconds": round(result.submit_seconds, 1),
        "drain_seconds": round(result.drain_seconds, 1) if drained else None,
        "matches": result.matches,
        "figures": [asdict(row) | {"equal": row.equal} for row in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(summary, indent=2))
    partial.replace(path)


async def _until_signalled(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGINT or SIGTERM (how `gridwhistle run` stops us) cancels it, so its
    clean-up (closing the broker connection, unacked work back to the queues) still runs."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def fresh_run_id() -> str:
    """Sortable and unique enough for runs started by people: UTC time to the second + 4 hex."""
    return f"{datetime.now(UTC):%Y%m%d%H%M%S}{secrets.token_hex(2)}"


def simulate_command(
    scenario: Annotated[str, typer.Option(help="Scenario name under deploy/scenarios/ or a YAML path")] = "changjia",
    speed: Annotated[str, typer.Option(help="Simulated seconds per second, or real|fast|max")] = "fast",
    rate: Annotated[float, typer.Option(help="Reports submitted per second")] = 200.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed replays the same matters")] = 1,
    run_id: Annotated[
        str | None,
        typer.Option(
            help="Namespace of the report ids (default: a fresh one, so a repeated run adds new matters; "
            "give an earlier run's id to resend it — intake then answers duplicates)"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N planned matters (a shortened run)")] = None,
    until_drained: Annotated[
        bool, typer.Option("--until-drained", help="Wait until every matter is closed in the read models")
    ] = False,
    bots: Annotated[bool, typer.Option(help="Host the department, grid and supervisor bots in this process")] = True,
    leave_unknown: Annotated[
        bool,
        typer.Option(
            "--leave-unknown/--hand-back-unknown",
            help="What the bots do with work items of matters this run did not plan: leave them to people "
            "working the same queues in the web console (acknowledged, nothing done), or hand them back "
            "for another run's bots (requeued; the delivery limit parks them in <queue>.dead)",
        ),
    ] = False,
    intake_url: Annotated[str, typer.Option(help="Intake base URL")] = "http://127.0.0.1:8010",
    stats_url: Annotated[str, typer.Option(help="Stats base URL")] = "http://127.0.0.1:8030",
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for draining")] = 1800.0,
    summary: Annotated[
        Path | None, typer.Option(help="Also write the outcome (figures, times) as JSON to this file")
    ] = None,
) -> None:
    """Replay a scenario through intake's public API; exit 1 if anything accepted is missing."""
    try:
        chosen = load_scenario(scenario)
    except ScenarioError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    settings = GwSettings()
    configure_logging("simulator", level=settings.log_level, fmt="console" if console.is_terminal else "json")
    run_id = run_id or fresh_run_id()
    console.print(f"scenario {chosen.name}, seed {seed}, run id {run_id}")
    options = ReplayOptions(
        speed=parse_speed(speed),
        rate=rate,
        seed=seed,
        run_id=run_id,
        limit=limit,
        until_drained=until_drained,
        drain_timeout=drain_timeout,
        with_bots=bots,
        leave_unknown=leave_unknown,
        intake_url=intake_url,
        stats_url=stats_url,
    )
    try:
        result = asyncio.run(_until_signalled(replay(chosen, settings, options)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print(f"[yellow]interrupted[/]: what intake accepted stays in the system (run id {run_id})")
        raise typer.Exit(130) from None
    console.print(
        f"{result.planned} matters submitted in {result.submit_seconds:.1f}s"
        + (f", drained in {result.drain_seconds:.1f}s" if until_drained else "")
        + (f"; [red]{result.refused} refused[/]" if result.refused else "")
    )
    article: list[tuple[str, float, str]]
    if limit is None and chosen.expected:
        article = [(e.label, e.value, e.figure) for e in chosen.expected]
        title = "The article's figures vs the read models (stats API)"
    else:
        article = [(k.replace("_", " "), v, k) for k, v in result.expected.items()]
        title = "The plan's figures vs the read models (stats API)"
    rows = figure_rows(result.observed, article)
    console.print(figures_table(rows, title))
    if summary is not None:
        write_summary(summary, result, rows, drained=until_drained)
    if until_drained and not result.matches:
        console.print("[red]the read models do not show what was replayed[/]")
        raise typer.Exit(1)
    if until_drained and not all(row.equal for row in rows):
        differing = ", ".join(row.label for row in rows if not row.equal)
        console.print(f"[red]the running system differs from the table: {differing}[/]")
        raise typer.Exit(1)


def run_command(
    scenario: Annotated[str, typer.Option(help="Scenario to replay")] = "changjia",
    speed: Annotated[str, typer.Option(help="Simulated seconds per second, or real|fast|max")] = "fast",
    rate: Annotated[float, typer.Option(help="Reports per second")] = 20.0,
    limit: Annotated[int | None, typer.Option(help="Only the first N planned matters (a quick look)")] = None,
    keep_stack: Annotated[
        bool, typer.Option("--keep-stack", help="Leave the stack components this run started running at exit")
    ] = False,
) -> None:
    """Stack, three services, bots, simulator and a live console. Ctrl-C stops all of it.

    The console stays up after the simulator has finished (its figures table appears in it);
    Ctrl-C stops the simulator, intake, dispatch and stats gracefully (a second Ctrl-C hurries
    them), then the stack components this run started. Logs: .state/logs/.
    """
    from services.simulator.run import run_everything

    sys.exit(run_everything(scenario=scenario, speed=parse_speed(speed), rate=rate, limit=limit, keep_stack=keep_stack))


def bench_command(
    profile: Annotated[
        str,
        typer.Option(
            help="quick (< 4 min: ceilings, system, latency, flat cost), full (< 20 min, + county) or smoke (tiny)"
        ),
    ] = "quick",
    matters: Annotated[int | None, typer.Option(help="Matters for the system phase (default: the profile's)")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory of the JSON and PNG (default: .state/bench)")] = None,
) -> None:
    """The system beside its raw ceilings, latency at fixed loads, flat cost as history grows.

    Prints a table, writes every figure to .state/bench/<timestamp>.json and a chart beside it.
    """
    from services.simulator.bench import PROFILES, run_bench

    if profile not in PROFILES:
        raise typer.BadParameter(f"choose one of {', '.join(PROFILES)}", param_hint="--profile")
    sys.exit(run_bench(profile_name=profile, matters=matters, out=out))


def chaos_command(
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            help="Only this fault (repeatable): kill-intake, kill-dispatch-1, kill-dispatch-2, kill-stats-1, "
            "kill-stats-2, kill-leader-node, pause-node, restart-store, disk-alarm, poison, burst. Default: all.",
        ),
    ] = None,
    rate: Annotated[float, typer.Option(help="Reports per second offered in every phase (x5 in the burst)")] = 6.0,
    lead: Annotated[float, typer.Option(help="Seconds of load before each fault")] = 4.0,
    tail: Annotated[float, typer.Option(help="Seconds of load after each fault has ended")] = 8.0,
    out: Annotated[
        Path | None, typer.Option(help="JSON figures (default .state/chaos/last.json; .md beside it)")
    ] = None,
) -> None:
    """The county scenario on the local 3-node RabbitMQ cluster with 2 replicas of dispatch and stats;
    one fault per phase (service SIGKILLs, node kill, node SIGSTOP 30 s, store restart, disk alarm,
    poison, 5x burst); prints one jepsen-style row per fault: attempted, acknowledged, lost,
    duplicated, recovered after, max client latency. Exit 1 unless every row is clean."""
    from services.simulator.chaos import run_chaos

    try:
        sys.exit(run_chaos(faults=fault or (), rate=rate, lead=lead, tail=tail, out=out))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fault") from None
