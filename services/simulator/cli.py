"""``gridwhistle run``, ``gridwhistle simulate`` and ``gridwhistle bench``."""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.simulator.replay import ReplayOptions, ReplayResult, replay
from services.simulator.scenario import ScenarioError, load_scenario
from shared.settings import GwSettings

console = Console()

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


def figures_table(result: ReplayResult, article: Sequence[tuple[str, float, str]]) -> Table:
    table = Table(title="The article's figures vs the read models (stats API)")
    table.add_column("figure")
    table.add_column("article", justify="right")
    table.add_column("read models", justify="right")
    table.add_column("", justify="center")
    for label, value, key in article:
        seen = result.observed.get(key, float("nan"))
        ok = math.isclose(seen, value, abs_tol=1e-9)
        shown = f"{seen:.1%}" if key == "closure_rate" else f"{seen:,.0f}"
        want = f"{value:.1%}" if key == "closure_rate" else f"{value:,.0f}"
        table.add_row(label, want, shown, "[green]=[/]" if ok else "[red]≠[/]")
    return table


def simulate_command(
    scenario: Annotated[str, typer.Option(help="Scenario name under deploy/scenarios/ or a YAML path")] = "changjia",
    speed: Annotated[str, typer.Option(help="Simulated seconds per second, or real|fast|max")] = "fast",
    rate: Annotated[float, typer.Option(help="Reports submitted per second")] = 200.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed replays the same matters")] = 1,
    limit: Annotated[int | None, typer.Option(help="Only the first N planned matters (a shortened run)")] = None,
    until_drained: Annotated[
        bool, typer.Option("--until-drained", help="Wait until every matter is closed in the read models")
    ] = False,
    bots: Annotated[bool, typer.Option(help="Host the department, grid and supervisor bots in this process")] = True,
    intake_url: Annotated[str, typer.Option(help="Intake base URL")] = "http://127.0.0.1:8010",
    stats_url: Annotated[str, typer.Option(help="Stats base URL")] = "http://127.0.0.1:8030",
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for draining")] = 1800.0,
) -> None:
    """Replay a scenario through intake's public API; exit 1 if anything accepted is missing."""
    try:
        chosen = load_scenario(scenario)
    except ScenarioError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    options = ReplayOptions(
        speed=parse_speed(speed),
        rate=rate,
        seed=seed,
        limit=limit,
        until_drained=until_drained,
        drain_timeout=drain_timeout,
        with_bots=bots,
        intake_url=intake_url,
        stats_url=stats_url,
    )
    result = asyncio.run(replay(chosen, GwSettings(), options))
    console.print(
        f"{result.planned} matters submitted in {result.submit_seconds:.1f}s"
        + (f", drained in {result.drain_seconds:.1f}s" if until_drained else "")
        + (f"; [red]{result.refused} refused[/]" if result.refused else "")
    )
    article: list[tuple[str, float, str]]
    if limit is None and chosen.expected:
        article = [(e.label, e.value, e.figure) for e in chosen.expected]
    else:
        article = [(k.replace("_", " "), v, k) for k, v in result.expected.items()]
    console.print(figures_table(result, article))
    if until_drained and not result.matches:
        console.print("[red]the read models do not show what was replayed[/]")
        raise typer.Exit(1)


def run_command(
    scenario: Annotated[str, typer.Option(help="Scenario to replay")] = "changjia",
    speed: Annotated[str, typer.Option(help="Simulated seconds per second, or real|fast|max")] = "fast",
    rate: Annotated[float, typer.Option(help="Reports per second")] = 20.0,
) -> None:
    """Stack, three services, bots, simulator and a live console. Ctrl-C stops all of it."""
    from services.simulator.run import run_everything

    sys.exit(run_everything(scenario=scenario, speed=parse_speed(speed), rate=rate))


def bench_command(
    matters: Annotated[int, typer.Option(help="Matters to push through")] = 1000,
) -> None:
    """Throughput of the three services end to end and their memory, printed."""
    from services.simulator.bench import run_bench

    sys.exit(run_bench(matters=matters))
