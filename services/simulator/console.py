"""The live console of ``gridwhistle run``: flow rates, queues, backlog, KPIs, where to look.

Everything shown is read from the running system — intake's ``/metrics``, the stats API, the
RabbitMQ management API and the simulator's summary file — never from counters of our own.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from services.simulator.figures import FigureRow, figures_table
from services.simulator.queues import split_queues
from shared.management import ManagementApi, QueueDepth

if TYPE_CHECKING:
    from pathlib import Path

    from shared.settings import GwSettings

SHOWN_ROWS = 12
STATS_EVERY = 5.0
"""Seconds between reads of the stats API (the service refreshes its own snapshots as often)."""


@dataclass(frozen=True)
class Endpoints:
    """Where the running system answers (printed at the bottom of the console)."""

    intake: str
    dispatch: str
    stats: str
    prometheus: str
    rabbitmq_ui: str
    alertmanager: str = ""
    alert_inbox: str = ""
    """Where Alertmanager's webhooks land (tools/alert_inbox.py; its log: .state/logs/alert-inbox.log)."""
    console: str = ""
    """The web console (departments sign in there)."""


@dataclass
class ConsoleState:
    settings: GwSettings
    endpoints: Endpoints
    towns: list[str]
    summary_path: Path
    started: float
    figures: Counter[str] = field(default_factory=Counter)  # this run's: the stats API's minus the baseline
    baseline: Counter[str] | None = None  # the stats API's figures at the first read (earlier runs)
    accepted: float = 0.0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    queues: list[QueueDepth] = field(default_factory=list)
    processes: dict[str, str] = field(default_factory=dict)  # name -> "up (pid N)" / "exited 0"
    summary: dict[str, Any] | None = None
    rate_in: float = 0.0
    rate_out: float = 0.0
    errors: list[str] = field(default_factory=list)
    _last: tuple[float, float, float] | None = None  # (time, accepted, closed)
    _stats_read_at: float = float("-inf")

    async def refresh(self) -> None:
        """Read every source; one that fails shows as an error line, the others still update."""
        now = time.monotonic()
        read_stats = now - self._stats_read_at >= STATS_EVERY
        self.errors = [e for e in self.errors if e.startswith("stats API") and not read_stats]
        async with httpx.AsyncClient(timeout=5.0) as http:
            await self._guard("intake /metrics", self._read_intake(http))
            if read_stats:  # its queries scan the read models: not every second
                self._stats_read_at = now
                await self._guard("stats API", self._read_stats(http))
        await self._guard("RabbitMQ management", self._read_queues())
        self._read_summary()
        closed = float(self.figures["closed"])
        if read_stats:
            if self._last is not None and now > self._last[0]:
                span = now - self._last[0]
                self.rate_in = max(0.0, (self.accepted - self._last[1]) / span)
                self.rate_out = max(0.0, (closed - self._last[2]) / span)
            self._last = (now, self.accepted, closed)

    async def _guard(self, source: str, work: Any) -> None:
        try:
            await work
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.errors.append(f"{source}: {type(error).__name__}: {error}")

    async def _read_intake(self, http: httpx.AsyncClient) -> None:
        response = await http.get(f"{self.endpoints.intake}/metrics")
        response.raise_for_status()
        self.accepted = accepted_reports(response.text)

    async def _read_stats(self, http: httpx.AsyncClient) -> None:
        figures: Counter[str] = Counter()
        for town_id in self.towns:
            response = await http.get(f"{self.endpoints.stats}/v1/stats/towns/{town_id}")
            response.raise_for_status()
            figures.update({k: v for k, v in response.json().get("counts", {}).items() if isinstance(v, int)})
        if self.baseline is None:
            self.baseline = Counter(figures)  # a copy: subtracting it from itself would zero it
        figures.subtract(self.baseline)
        self.figures = figures
        response = await http.get(f"{self.endpoints.stats}/v1/backlog")
        response.raise_for_status()
        self.backlog = backlog_rows(response.json())

    async def _read_queues(self) -> None:
        async with ManagementApi(self.settings) as api:
            self.queues = await api.queues()

    def _read_summary(self) -> None:
        if self.summary is None and self.summary_path.exists():
            try:
                self.summary = json.loads(self.summary_path.read_text())
            except (OSError, ValueError) as error:
                self.errors.append(f"simulator summary: {error}")


def accepted_reports(metrics_text: str) -> float:
    """Reports intake accepted (``gridwhistle_intake_requests_total{outcome="accepted"}``, all routes)."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "gridwhistle_intake_requests":
            continue
        total += sum(
            s.value for s in family.samples if s.name.endswith("_total") and s.labels.get("outcome") == "accepted"
        )
    return total


def backlog_rows(payload: Any) -> list[dict[str, Any]]:
    rows = payload.get("departments", payload) if isinstance(payload, dict) else payload
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def status_line(state: ConsoleState) -> str:
    """One line of the same figures, for a console that is not a terminal (logs, pipes, CI)."""
    f = state.figures
    services, work, dead = split_queues(state.queues)
    waiting = sum(q.ready + q.unacked for q in services)
    line = (
        f"[{time.monotonic() - state.started:,.0f}s] accepted {state.accepted:,.0f} ({state.rate_in:.1f}/s)"
        f" counted {f['reported']:,} closed {f['closed']:,} ({state.rate_out:.1f}/s)"
        f" returns {f['returned']:,} whistles {f['whistled']:,} escalations {f['escalated_l1']:,}"
        f" | service queues {waiting:,} work queues {sum(q.ready + q.unacked for q in work):,}"
        f" dead-lettered {sum(dead.values()):,}"
    )
    if state.summary is not None:
        verdict = "all figures equal" if state.summary.get("matches") else "figures differ"
        line += f" | simulator finished: {verdict}"
    return line + "".join(f" | unavailable — {e}" for e in state.errors)


def _queue_table(title: str, queues: list[QueueDepth], dead: dict[str, int], limit: int) -> Table:
    table = Table(title=title, expand=True)
    table.add_column("queue")
    for column in ("ready", "unacked", "consumers", "dead-lettered"):
        table.add_column(column, justify="right")
    shown = sorted(queues, key=lambda q: (-q.ready - q.unacked, q.name))[:limit]
    for q in shown:
        lost = dead.get(q.name, 0)
        table.add_row(q.name, f"{q.ready:,}", f"{q.unacked:,}", str(q.consumers), f"[red]{lost:,}[/]" if lost else "0")
    if len(queues) > len(shown):
        table.caption = f"{len(queues) - len(shown)} more queues, all idle or shallower"
    return table


def render(state: ConsoleState) -> Group:
    figures = state.figures
    reported = figures["reported"]
    kpis = Table.grid(padding=(0, 3))
    for _ in range(4):
        kpis.add_column()
    kpis.add_row(
        f"in [bold]{state.rate_in:6.1f}[/] reports/s",
        f"out [bold]{state.rate_out:6.1f}[/] closed/s",
        f"accepted by intake [bold]{state.accepted:,.0f}[/]",
        f"counted by stats [bold]{reported:,}[/]",
    )
    kpis.add_row(
        f"closed [bold]{figures['closed']:,}[/]",
        f"closure rate [bold]{figures['closed'] / reported if reported else 0:.1%}[/]",
        f"returns [bold]{figures['returned']:,}[/]  whistles [bold]{figures['whistled']:,}[/]",
        "escalations L1/L2/L3 [bold]"
        f"{figures['escalated_l1']:,}/{figures['escalated_l2']:,}/{figures['escalated_l3']:,}[/]",
    )
    services, work, dead = split_queues(state.queues)
    backlog = Table(title="open backlog per department", expand=True)
    backlog.add_column("department")
    for column in ("open", "unaccepted", "oldest open (s)"):
        backlog.add_column(column, justify="right")
    open_rows = [r for r in state.backlog if float(r.get("open") or 0) > 0]
    for row in sorted(open_rows, key=lambda r: -float(r.get("open") or 0))[:SHOWN_ROWS]:
        backlog.add_row(
            str(row.get("department_id", "?")),
            str(row.get("open", 0)),
            str(row.get("unaccepted", "")),
            f"{float(row.get('oldest_open_age_seconds') or 0):,.0f}",
        )
    if not open_rows:
        backlog.caption = "no open matters"
    parts: list[Any] = [
        Panel(
            kpis,
            title=f"Gridwhistle — {', '.join(state.towns)} — running {time.monotonic() - state.started:,.0f}s",
            subtitle="read-model figures since the console started; the simulator judges its own run at the end",
        ),
        _queue_table("service queues (the pipeline)", services, dead, limit=len(services)),
        _queue_table("work queues (departments, grid staff, supervisors)", work, dead, limit=SHOWN_ROWS),
        backlog,
    ]
    if state.summary is not None:
        parts.append(summary_panel(state.summary))
    parts.append(Text.from_markup("  ".join(f"{name} {status}" for name, status in state.processes.items())))
    for error in state.errors:
        parts.append(Text(f"unavailable — {error}", style="yellow"))
    e = state.endpoints
    if e.console:
        parts.append(
            Text(
                f"web console: {e.console}/  (sign in: gridwhistle console issue --department <department_id>)",
                style="bold",
            )
        )
    parts.append(
        Text(
            f"metrics: {e.intake}/metrics {e.dispatch}/metrics {e.stats}/metrics   stats API: {e.stats}/v1/backlog   "
            f"Prometheus: {e.prometheus}   Alertmanager: {e.alertmanager} (alerts: {e.alert_inbox})   "
            f"RabbitMQ: {e.rabbitmq_ui}   — Ctrl-C stops everything",
            style="dim",
        )
    )
    return Group(*parts)


def summary_panel(summary: dict[str, Any]) -> Panel:
    rows = [FigureRow(r["label"], r["key"], r["expected"], r["observed"]) for r in summary.get("figures", [])]
    drained = summary.get("drain_seconds")
    title = (
        f"simulator finished: {summary.get('planned', 0):,} matters, submitted in {summary.get('submit_seconds')}s"
        + (f", drained in {drained}s" if drained is not None else "")
        + (" — [green]all figures equal[/]" if summary.get("matches") else " — [red]figures differ[/]")
    )
    return Panel(figures_table(rows, "expected vs the read models (stats API)"), title=title)
