"""``make bench``: the system beside its own raw ceilings, in one run, against the same broker and store.

Phases (each with a progress bar; figures in ``BenchReport``, printed, saved as JSON and a PNG):

1. raw ceilings, plain scripts in ``tools/bench`` (no FastStream, no pydantic): broker single hop,
   store ops from one client, and the same-shape lifecycle pipeline (one process per role);
2. the system: three service processes plus the bots, full lifecycle, N matters at full speed;
3. latency at fixed offered loads (20 reports/s and 80 % of the measured maximum): HTTP 202,
   report -> work queue (seen on the broker), report -> closed;
4. flat cost as history grows: read-API latency and each service's RSS at 10k and 100k matters;
5. county (``full`` only): the ten-town scenario at a sustained rate with two replicas of
   dispatch and stats: throughput, p99, lost and counted twice.

Nothing here asserts; the README explains the figures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

from services.simulator.bench_report import BenchReport, print_report, save_report
from services.simulator.bench_seed import measure_reads, seed_history
from services.simulator.bench_stats import logged_events, stats_alone
from services.simulator.latency import LatencyTap, percentiles
from services.simulator.processes import vm_kib
from services.simulator.replay import ReplayOptions, ReplayResult, replay
from services.simulator.sandbox import ServiceSandbox
from services.simulator.scenario import load_scenario
from shared.settings import PROJECT_ROOT, GwSettings
from tools.vhosts import create_vhost, delete_vhost

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

console = Console()


@dataclass(frozen=True)
class Profile:
    name: str
    broker_messages: int
    store_ops: int
    raw_matters: int
    system_matters: int
    latency_seconds: float
    history: tuple[int, ...]
    read_requests: int
    county_seconds: float  # 0: no county phase
    county_rate: float


PROFILES = {
    "quick": Profile("quick", 3000, 1000, 300, 400, 10.0, (10_000, 50_000), 100, 0.0, 0.0),
    "smoke": Profile("smoke", 200, 100, 20, 30, 2.0, (300, 600), 10, 0.0, 0.0),  # the e2e test: runs, writes JSON
    "full": Profile("full", 10_000, 3000, 1000, 1000, 30.0, (10_000, 100_000), 300, 60.0, 30.0),
}


def run_raw(module: str, *args: str, timeout: float = 900.0) -> dict[str, Any]:
    """Run a ``tools.bench`` script; its last output line is its JSON result."""
    done = subprocess.run(  # noqa: S603 - our own script with our own arguments
        [sys.executable, "-m", f"tools.bench.{module}", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def raw_ceilings(base: GwSettings, profile: Profile, report: BenchReport) -> None:
    with console.status("raw ceiling: broker single hop (aio-pika, quorum queue, confirms)…"):
        report.raw["broker"] = run_raw("raw_broker", "--url", base.amqp_url, "--messages", str(profile.broker_messages))
    with console.status("raw ceiling: store ops from one client (PyMongo)…"):
        report.raw["store"] = run_raw("raw_store", "--url", base.mongo_url, "--ops", str(profile.store_ops))
    vhost = f"gw-bench-raw-{uuid.uuid4().hex[:8]}"
    url = create_vhost(base, vhost)
    try:
        with console.status(f"raw ceiling: same-shape lifecycle pipeline, {profile.raw_matters} matters…"):
            report.raw["pipeline"] = run_raw(
                "raw_pipeline",
                *("--amqp-url", url, "--mongo-url", base.mongo_url, "--matters", str(profile.raw_matters)),
                *("--prefetch", str(base.prefetch)),
            )
    finally:
        delete_vhost(base, vhost)


async def _replay_with_tap(
    sandbox: ServiceSandbox, options: ReplayOptions, scenario: str
) -> tuple[ReplayResult, LatencyTap]:
    assert sandbox.settings is not None
    tap = LatencyTap(sandbox.settings.amqp_url)
    await tap.start()
    try:
        result = await replay(load_scenario(scenario), sandbox.settings, options)
    finally:
        await tap.stop()
    return result, tap


def _latency_figures(result: ReplayResult, tap: LatencyTap) -> dict[str, Any]:
    sent = result.submitted.sent_at if result.submitted else {}
    answers = result.submitted.answer_seconds if result.submitted else []
    return {
        "http_202_ms": percentiles(answers),
        "report_to_work_queue_ms": percentiles(tap.since(tap.to_work_queue, sent)),
        "report_to_department_queue_ms": percentiles(tap.since(tap.to_department, sent)),
        "report_to_closed_ms": percentiles(tap.since(tap.closed, sent)),
        "samples": len(sent),
    }


def system_phases(base: GwSettings, profile: Profile, report: BenchReport, step: Callable[[str], None]) -> None:
    quiet = {"GW_LOG_LEVEL": "WARNING"}
    with ServiceSandbox(base, label="bench", extra_env=quiet) as sandbox:
        step(f"the system: {profile.system_matters} matters at full speed")
        started = time.monotonic()
        result, tap = asyncio.run(
            _replay_with_tap(sandbox, sandbox.replay_options(matters=profile.system_matters, rate=0.0), "changjia")
        )
        wall = time.monotonic() - started
        report.system = {
            "matters": result.planned,
            "reports_per_s": result.planned / result.submit_seconds,
            "matters_closed_per_s": result.planned / wall,
            "wall_s": wall,
            "drain_s": result.drain_seconds,
            "figures_equal_plan": result.matches,
            "latency_at_full_speed": _latency_figures(result, tap),
        }
        assert sandbox.settings is not None
        events = asyncio.run(logged_events(sandbox.settings))
        # 80 % of the measured maximum: of what the system closes per second end to end, the rate it sustains
        for rate in (20.0, round(0.8 * report.system["matters_closed_per_s"], 1)):
            step(f"latency at {rate:g} reports/s for {profile.latency_seconds:g} s")
            matters = int(rate * profile.latency_seconds)
            result, tap = asyncio.run(
                _replay_with_tap(sandbox, sandbox.replay_options(matters=matters, rate=rate, seed=2), "changjia")
            )
            report.latency[f"{rate:g}/s"] = {"offered_per_s": rate, **_latency_figures(result, tap)}
        for size in profile.history:
            step(f"flat cost: read API at {size:,} matters in the store")
            asyncio.run(seed_history(sandbox.settings, size))
            reads = asyncio.run(measure_reads(sandbox.url("stats"), sandbox.settings, profile.read_requests))
            rss = {p.name: vm_kib(p.pid, "VmRSS") / 1024 for p in sandbox.processes}
            report.history[f"{size}"] = {"matters": size, "reads": reads, "rss_mib": rss}
        report.rss_peak_mib = {p.name: vm_kib(p.pid, "VmHWM") / 1024 for p in sandbox.processes}
    step(f"one stats process working off a backlog of {len(events):,} events")
    report.stats_alone = stats_alone(base, events)


def county_phase(base: GwSettings, profile: Profile, report: BenchReport, step: Callable[[str], None]) -> None:
    env = {"GW_LOG_LEVEL": "WARNING", "GW_REGISTRY_PATH": str(PROJECT_ROOT / "deploy/config/registry/county")}
    replicas = {"dispatch": 2, "stats": 2}
    with ServiceSandbox(base, label="benchcounty", extra_env=env, replicas=replicas) as sandbox:
        matters = int(profile.county_rate * profile.county_seconds)
        step(f"county: {matters} matters at {profile.county_rate:g}/s, two replicas of dispatch and stats")
        started = time.monotonic()
        options = sandbox.replay_options(matters=matters, rate=profile.county_rate)
        result, tap = asyncio.run(_replay_with_tap(sandbox, options, "county"))
        wall = time.monotonic() - started
        closed = result.observed.get("closed", 0.0)
        report.county = {
            "matters": result.planned,
            "offered_per_s": profile.county_rate,
            "matters_closed_per_s": result.planned / wall,
            "lost": max(0, result.planned - int(closed)),
            "counted_twice": max(0, int(result.observed.get("reported", 0.0)) - result.planned),
            "figures_equal_plan": result.matches,
            **_latency_figures(result, tap),
        }


def run_bench(*, profile_name: str = "quick", matters: int | None = None, out: Path | None = None) -> int:
    from tools.stack import console_say, stack_up

    profile = PROFILES[profile_name]
    if matters is not None:
        profile = Profile(**{**profile.__dict__, "system_matters": matters})
    base = GwSettings()
    stack_up(base, say=console_say(console))
    report = BenchReport(profile=profile.name)

    def step(what: str) -> None:
        console.rule(f"[bold]{what}")

    started = time.monotonic()
    step("raw ceilings")
    raw_ceilings(base, profile, report)
    system_phases(base, profile, report, step)
    if profile.county_seconds:
        county_phase(base, profile, report, step)
    report.wall_s = time.monotonic() - started
    print_report(report, console)
    json_path, png_path = save_report(report, out or base.state_dir / "bench")
    console.print(f"figures: {json_path}\nchart:   {png_path}")
    return 0 if report.system.get("figures_equal_plan") else 1
