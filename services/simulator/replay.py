"""One scenario replay: plan, submit at a rate with a progress bar, optionally host the bots,
wait until the read models show every matter closed, and compare figures."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.simulator.bots import BotCrew
from services.simulator.figures import STRUCTURE_FIGURES, read_figures
from services.simulator.queues import split_queues
from services.simulator.scenario import PlannedMatter, Scenario, expected_outcome, plan_scenario
from services.simulator.submit import SubmitStats, Submitter
from shared.broker import make_broker
from shared.management import ManagementApi
from shared.registry import Registry, load_registry

if TYPE_CHECKING:
    from shared.settings import GwSettings

console = Console()


@dataclass(frozen=True)
class ReplayOptions:
    speed: float = 1000.0  # simulated seconds per real second (inf: no waiting)
    rate: float = 200.0  # reports per second
    seed: int = 1
    run_id: str = ""  # namespaces report ids: the same seed again, as new matters
    limit: int | None = None  # a shortened scenario: the first N planned matters
    until_drained: bool = False
    drain_timeout: float = 1800.0
    with_bots: bool = True
    leave_unknown: bool = False  # the bots acknowledge, and leave to people, matters the plan does not know
    intake_url: str = "http://127.0.0.1:8010"
    stats_url: str = "http://127.0.0.1:8030"
    concurrency: int = 32
    quiet_timeout: float = 1800.0  # seconds to wait for earlier work in the service queues
    poll_every: float = 3.0  # seconds between reads of the stats API while draining


@dataclass
class ReplayResult:
    planned: int
    expected: dict[str, float]
    observed: dict[str, float]
    submit_seconds: float
    drain_seconds: float
    refused: int
    submitted: SubmitStats | None = None

    @property
    def matches(self) -> bool:
        return self.refused == 0 and all(
            math.isclose(self.observed.get(k, float("nan")), v, rel_tol=1e-9, abs_tol=1e-9)
            for k, v in self.expected.items()
        )


async def replay(
    scenario: Scenario, settings: GwSettings, options: ReplayOptions, *, submitting: asyncio.Event | None = None
) -> ReplayResult:
    """Run one replay; ``submitting`` is set the moment the first report goes out (after the quiet
    wait and the baseline read), for whoever times something against the load (``make chaos``)."""
    registry = load_registry(scenario.registry_path())
    plan = plan_scenario(scenario, registry, seed=options.seed, run_id=options.run_id)
    if options.limit is not None:
        plan = plan[: options.limit]
    towns = sorted({m.town_id for m in plan})
    broker = make_broker(settings, service="simulator")
    crew = BotCrew(
        registry, {m.report_id: m for m in plan}, broker, speed=options.speed, leave_unknown=options.leave_unknown
    )
    if options.with_bots:
        crew.subscribe(settings.prefetch, towns)
    await broker.start()
    submitter = Submitter(settings, options.intake_url, broker)
    try:
        # Figures are judged as "after minus before": the before must not move any more, so let
        # what earlier runs left in the services' queues be worked off first.
        async with asyncio.timeout(options.quiet_timeout):
            await wait_until_pipeline_quiet(settings)
        baseline = await read_figures(options.stats_url, towns, registry)
        started = time.monotonic()
        if submitting is not None:
            submitting.set()
        await _submit_all(submitter, plan, options)
        submitted = time.monotonic() - started
        drain_started = time.monotonic()
        observed = baseline
        if options.until_drained:
            observed = await _wait_drained(options, towns, registry, baseline, len(plan))
        drained = time.monotonic() - drain_started
    except asyncio.CancelledError:
        crew.cancel()  # interrupted: planned answers not sent yet are dropped (their matters stay open)
        raise
    finally:
        await submitter.close()
        await crew.drain()
        await broker.stop()
    expected = expected_outcome(plan)
    return ReplayResult(
        planned=len(plan),
        expected=expected,
        observed=_since(baseline, observed),
        submit_seconds=submitted,
        drain_seconds=drained,
        refused=submitter.stats.failed,
        submitted=submitter.stats,
    )


async def _submit_all(submitter: Submitter, plan: list[PlannedMatter], options: ReplayOptions) -> None:
    gate = asyncio.Semaphore(options.concurrency)
    interval = 1.0 / options.rate if options.rate > 0 else 0.0

    async def one(m: PlannedMatter) -> None:
        async with gate:
            await submitter.submit(m)
        progress.advance(task)

    with Progress(
        TextColumn("[bold]submitting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("submit", total=len(plan))
        started = time.monotonic()
        pending: list[asyncio.Task[None]] = []
        for i, m in enumerate(plan):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(m)))
        await asyncio.gather(*pending)


async def _wait_drained(
    options: ReplayOptions, towns: list[str], registry: Registry, baseline: dict[str, float], planned: int
) -> dict[str, float]:
    deadline = time.monotonic() + options.drain_timeout
    observed = baseline
    with Progress(
        TextColumn("[bold]draining (closed)"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("drain", total=planned)
        while time.monotonic() < deadline:
            try:
                observed = await read_figures(options.stats_url, towns, registry)
            except httpx.TransportError:  # stats restarting (a chaos fault, a deploy): ask again
                await asyncio.sleep(options.poll_every)
                continue
            closed = int(observed["closed"] - baseline["closed"])
            progress.update(task, completed=min(closed, planned))
            if closed >= planned:
                break
            await asyncio.sleep(options.poll_every)
    return observed


async def wait_until_pipeline_quiet(settings: GwSettings) -> None:
    """Wait (with a progress line) until the services' own queues hold nothing: the work of
    earlier runs is in the read models. Bound it with ``asyncio.timeout``."""
    async with ManagementApi(settings) as api:
        waiting = await _pipeline_depth(api)
        if not waiting:
            return
        with Progress(
            TextColumn("[bold]waiting for earlier work in the service queues"),
            TextColumn("{task.fields[left]:,} messages"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("quiet", left=waiting)
            while waiting:
                await asyncio.sleep(2.0)
                waiting = await _pipeline_depth(api)
                progress.update(task, left=waiting)


async def _pipeline_depth(api: ManagementApi) -> int:
    services, _, _ = split_queues(await api.queues())
    return sum(q.ready + q.unacked for q in services)


def _since(baseline: dict[str, float], observed: dict[str, float]) -> dict[str, float]:
    """Figures produced by this replay alone (the database may hold earlier runs); structural
    figures (the registry's) are what they are now."""
    out = {
        k: observed[k] if k in STRUCTURE_FIGURES else observed[k] - baseline.get(k, 0.0)
        for k in observed
        if k != "closure_rate"
    }
    out["closure_rate"] = out["closed"] / out["reported"] if out.get("reported") else 0.0
    return out
