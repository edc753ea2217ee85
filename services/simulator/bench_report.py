"""The bench's figures: one table on the terminal, a JSON file of every figure, a PNG chart."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

PERCENTILES = ("p50", "p95", "p99")


@dataclass
class BenchReport:
    profile: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    machine: dict[str, Any] = field(
        default_factory=lambda: {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        }
    )
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    rss_peak_mib: dict[str, float] = field(default_factory=dict)
    county: dict[str, Any] = field(default_factory=dict)
    stats_alone: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ratios(self) -> dict[str, float]:
        """The figures that mean something on a noisy machine: measured against the same run's ceilings."""
        out: dict[str, float] = {}
        pipeline = self.raw.get("pipeline", {}).get("matters_per_s")
        system = self.system.get("matters_closed_per_s")
        if pipeline and system:
            out["system_vs_raw_pipeline"] = system / pipeline
        hop = self.raw.get("broker", {}).get("messages_per_s")
        if hop and system:
            # per matter the system moves 9 published messages, like the raw pipeline
            out["system_messages_vs_broker_hop"] = system * 9 / hop
        sizes = sorted(self.history, key=int)
        if len(sizes) >= 2:
            small, large = self.history[sizes[0]]["reads"], self.history[sizes[-1]]["reads"]
            for route in small:
                out[f"p99_{route}_{sizes[-1]}_vs_{sizes[0]}"] = large[route]["p99"] / small[route]["p99"]
        return out


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _pcts(figures: dict[str, float]) -> str:
    return " / ".join(_f(figures.get(p)) for p in PERCENTILES)


def print_report(report: BenchReport, console: Console) -> None:
    table = Table(title=f"make bench ({report.profile}) — {report.machine['cpus']} CPUs, wall {report.wall_s:,.0f} s")
    table.add_column("phase")
    table.add_column("figure")
    table.add_column("value", justify="right")
    broker, store, pipeline = (report.raw.get(k, {}) for k in ("broker", "store", "pipeline"))
    table.add_row(
        "raw ceiling", "broker single hop, messages/s (quorum, persistent, confirms)", _f(broker.get("messages_per_s"))
    )
    for key in ("insert_many_per_s", "insert_one_per_s", "update_by_id_per_s"):
        table.add_row("raw ceiling", f"store {key.removesuffix('_per_s').replace('_', ' ')}, ops/s", _f(store.get(key)))
    table.add_row("raw ceiling", "same-shape pipeline, matters closed/s", _f(pipeline.get("matters_per_s")))
    system = report.system
    table.add_row("system", "intake, reports accepted/s (HTTP 202 after confirm)", _f(system.get("reports_per_s")))
    table.add_row("system", "end to end, matters closed/s", _f(system.get("matters_closed_per_s")))
    table.add_row("system", "read-model figures equal the plan", str(system.get("figures_equal_plan")))
    table.add_row(
        "system", "one stats process on a backlog, events applied/s", _f(report.stats_alone.get("events_per_s"))
    )
    for name, value in report.ratios.items():
        table.add_row("ratio", name.replace("_", " "), _f(value, 2))
    for load, figures in report.latency.items():
        for key in ("http_202_ms", "report_to_department_queue_ms", "report_to_work_queue_ms", "report_to_closed_ms"):
            label = f"{key.removesuffix('_ms').replace('_', ' ')} p50/p95/p99 ms"
            table.add_row(f"latency @ {load}", label, _pcts(figures[key]))
    for size, point in report.history.items():
        for route, figures in point["reads"].items():
            table.add_row(f"history {int(size):,}", f"GET {route.removesuffix('_ms')} p50/p95/p99 ms", _pcts(figures))
        rss = ", ".join(f"{name} {_f(mib, 0)}" for name, mib in point["rss_mib"].items())
        table.add_row(f"history {int(size):,}", "RSS MiB", rss)
    if report.county:
        county = report.county
        table.add_row(
            "county",
            "matters closed/s (offered /s)",
            f"{_f(county['matters_closed_per_s'])} ({county['offered_per_s']:g})",
        )
        table.add_row("county", "report -> closed p99 ms", _f(county["report_to_closed_ms"]["p99"]))
        table.add_row("county", "lost / counted twice", f"{county['lost']} / {county['counted_twice']}")
    console.print(table)


def save_report(report: BenchReport, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{report.started_at}.json"
    json_path.write_text(json.dumps({**asdict(report), "ratios": report.ratios}, indent=2, default=str))
    png_path = directory / f"{report.started_at}.png"
    draw_chart(report, png_path)
    return json_path, png_path


def draw_chart(report: BenchReport, path: Path) -> None:
    """Latency percentiles per load (left), throughput of the system beside its ceilings (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    loads = list(report.latency)
    for offset, percentile in enumerate(PERCENTILES):
        values = [report.latency[load]["report_to_closed_ms"].get(percentile, math.nan) for load in loads]
        left.bar(
            [i + offset * 0.27 for i in range(len(loads))], values, width=0.27, label=f"report→closed {percentile}"
        )
    left.set_xticks([i + 0.27 for i in range(len(loads))], [f"offered {load}" for load in loads])
    left.set_ylabel("ms")
    left.set_title("latency at fixed offered load")
    left.legend()
    names = ["raw pipeline", "system"]
    values = [report.raw.get("pipeline", {}).get("matters_per_s", 0.0), report.system.get("matters_closed_per_s", 0.0)]
    if report.county:
        names.append("county (2 replicas)")
        values.append(report.county["matters_closed_per_s"])
    right.bar(names, values, color=["#888888", "#2b7bba", "#5aa469"][: len(names)])
    right.set_ylabel("matters closed / s")
    right.set_title(f"throughput, {report.profile} profile")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
