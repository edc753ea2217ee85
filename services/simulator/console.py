"""The live console of ``gridwhistle run``: flow rates, queues, backlog, KPIs, where to look."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from shared.management import ManagementApi, QueueDepth

if TYPE_CHECKING:
    from shared.settings import GwSettings

STATS_URL = "http://127.0.0.1:8030"


@dataclass
class ConsoleState:
    settings: GwSettings
    started: float
    town: dict[str, Any] = field(default_factory=dict)
    backlog: list[dict[str, Any]] = field(default_factory=list)
    queues: list[QueueDepth] = field(default_factory=list)
    processes: dict[str, bool] = field(default_factory=dict)
    rate_in: float = 0.0
    rate_out: float = 0.0
    _last: tuple[float, float, float] | None = None  # (time, reported, closed)
    error: str = ""

    async def refresh(self) -> None:
        async with httpx.AsyncClient(base_url=STATS_URL, timeout=3.0) as http:
            town = await http.get("/v1/stats/towns/changjia")
            backlog = await http.get("/v1/backlog")
        self.town = town.json() if town.status_code == 200 else {}
        self.backlog = _backlog_rows(backlog.json()) if backlog.status_code == 200 else []
        async with ManagementApi(self.settings) as api:
            self.queues = [q for q in await api.queues() if q.name.startswith(("dept.", "grid.", "supervision."))]
        now = time.monotonic()
        reported, closed = float(_kpi(self.town, "reported")), float(_kpi(self.town, "closed"))
        if self._last is not None and now > self._last[0]:
            span = now - self._last[0]
            self.rate_in = (reported - self._last[1]) / span
            self.rate_out = (closed - self._last[2]) / span
        self._last = (now, reported, closed)


def _kpi(town: dict[str, Any], name: str) -> float:
    for source in (town.get("kpis", {}), town.get("counts", {}), town):
        if isinstance(source, dict) and isinstance(source.get(name), int | float):
            return float(source[name])
    return 0.0


def _backlog_rows(payload: Any) -> list[dict[str, Any]]:
    rows = payload.get("departments", payload) if isinstance(payload, dict) else payload
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def render(state: ConsoleState) -> Group:
    kpis = Table.grid(padding=(0, 3))
    for _ in range(4):
        kpis.add_column()
    closure = _kpi(state.town, "closure_rate")
    kpis.add_row(
        f"in [bold]{state.rate_in:6.1f}[/] matters/s",
        f"out [bold]{state.rate_out:6.1f}[/] closed/s",
        f"reported [bold]{_kpi(state.town, 'reported'):,.0f}[/]",
        f"closure rate [bold]{closure:.1%}[/]",
    )
    kpis.add_row(
        f"returns [bold]{_kpi(state.town, 'returned'):,.0f}[/]",
        f"whistles [bold]{_kpi(state.town, 'whistled'):,.0f}[/]",
        f"escalations [bold]{_kpi(state.town, 'escalated'):,.0f}[/]",
        f"closed [bold]{_kpi(state.town, 'closed'):,.0f}[/]",
    )
    queues = Table(title="queues (ready / unacked / consumers)", expand=True)
    for column in ("queue", "ready", "unacked", "consumers"):
        queues.add_column(column, justify="right" if column != "queue" else "left")
    for q in sorted(state.queues, key=lambda q: (-q.ready - q.unacked, q.name))[:14]:
        queues.add_row(q.name, str(q.ready), str(q.unacked), str(q.consumers))
    backlog = Table(title="open backlog per department", expand=True)
    for column in ("department", "open", "unaccepted", "oldest open (s)"):
        backlog.add_column(column, justify="right" if column != "department" else "left")
    for row in sorted(state.backlog, key=lambda r: -float(r.get("open", 0)))[:12]:
        backlog.add_row(
            str(row.get("department_id", "?")),
            str(row.get("open", 0)),
            str(row.get("unaccepted", "")),
            f"{float(row.get('oldest_open_age_seconds') or 0):.0f}",
        )
    procs = "  ".join(
        f"{name} {'[green]up[/]' if up else '[yellow]done/down[/]'}" for name, up in state.processes.items()
    )
    where = (
        "metrics: :8010/metrics :8020/metrics :8030/metrics   stats API: http://127.0.0.1:8030/v1/backlog   "
        "Prometheus: http://127.0.0.1:9090   RabbitMQ: http://127.0.0.1:15672"
    )
    return Group(
        Panel(kpis, title=f"Gridwhistle — running {time.monotonic() - state.started:,.0f}s"),
        queues,
        backlog,
        procs,
        where,
    )
