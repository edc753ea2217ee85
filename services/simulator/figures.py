"""The figures a scenario is judged by, read from the stats API (never from our own counters).

Two kinds: figures counted from the events (``/v1/stats/towns/{id}``; a replay judges its own
share, "after minus before") and structural ones, what the town is made of as the running stats
service's registry says (``/v1/registry/towns/{id}``: grids, staff, volunteers, service items),
taken as they are. Nothing here comes from the scenario's own numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import httpx
from rich.table import Table

if TYPE_CHECKING:
    from shared.registry import Registry

EventFigure = Literal[
    "reported",
    "closed",
    "closure_rate",
    "service_proxy_closed",
    "citizen_requests_resolved",
    "supervised_resolved",
    "visits",
    "squad_assignments",
]
"""Counted from events: a replay's share is the figure after minus before."""
StructureFigure = Literal["grids", "overall_grids", "grid_leaders", "grid_members", "volunteers", "service_items"]
"""What the town is made of (the running service's registry, a field of ``/v1/registry/towns/{town_id}``
each): taken as read, never subtracted."""
Figure = EventFigure | StructureFigure
"""What a scenario's expected figure may name."""

FIGURES: tuple[EventFigure, ...] = get_args(EventFigure)
STRUCTURE_FIGURES: tuple[StructureFigure, ...] = get_args(StructureFigure)


def figures_of_town(stats: dict[str, Any]) -> dict[str, float]:
    counts = stats.get("counts", {})
    proxy = stats.get("by_category", {}).get("service_proxy", {}).get("counts", {})
    reported = float(counts.get("reported", 0))
    closed = float(counts.get("closed", 0))
    return {
        "reported": reported,
        "closed": closed,
        "closure_rate": closed / reported if reported else 0.0,
        "service_proxy_closed": float(proxy.get("closed", 0)),
        "citizen_requests_resolved": float(counts.get("closed_citizen_requests", 0)),
        # the article's 督促指导网格员排查解决问题: matters a supervision visit followed up, closed
        "supervised_resolved": float(counts.get("closed_followed_up", 0)),
        "visits": float(counts.get("visits", 0)),
        "squad_assignments": float(counts.get("squad_assignments", 0)),
    }


def structure_of_town(structure: dict[str, Any]) -> dict[str, float]:
    return {figure: float(structure.get(figure, 0)) for figure in STRUCTURE_FIGURES}


async def read_figures(stats_url: str, towns: list[str], registry: Registry) -> dict[str, float]:
    """Sum of the towns' figures: ``GET /v1/stats/towns/{town_id}`` and ``GET /v1/registry/towns/{town_id}``."""
    total: dict[str, float] = dict.fromkeys((*FIGURES, *STRUCTURE_FIGURES), 0.0)
    async with httpx.AsyncClient(base_url=stats_url, timeout=10.0) as http:
        for town_id in towns:
            registry.town(town_id)  # an unknown town is a scenario error, not a zero
            response = await http.get(f"/v1/stats/towns/{town_id}")
            response.raise_for_status()
            structure = await http.get(f"/v1/registry/towns/{town_id}")
            structure.raise_for_status()
            figures = figures_of_town(response.json()) | structure_of_town(structure.json())
            for key, value in figures.items():
                total[key] += value
    total["closure_rate"] = total["closed"] / total["reported"] if total["reported"] else 0.0
    return total


@dataclass(frozen=True)
class FigureRow:
    """One figure: what the article (or the plan, for a shortened run) says and what the read models show."""

    label: str
    key: str
    expected: float
    observed: float

    @property
    def equal(self) -> bool:
        return math.isclose(self.observed, self.expected, abs_tol=1e-9)

    def shown(self, value: float) -> str:
        return f"{value:.1%}" if self.key == "closure_rate" else f"{value:,.0f}"


def figure_rows(observed: Mapping[str, float], expected: Sequence[tuple[str, float, str]]) -> list[FigureRow]:
    """``expected``: (label, value, figure key) rows; each beside what the read models show (``observed``)."""
    return [FigureRow(label, key, value, observed.get(key, float("nan"))) for label, value, key in expected]


def figures_table(rows: Sequence[FigureRow], title: str) -> Table:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("expected", justify="right")
    table.add_column("read models", justify="right")
    table.add_column("", justify="center")
    for row in rows:
        mark = "[green]=[/]" if row.equal else "[red]≠[/]"
        table.add_row(row.label, row.shown(row.expected), row.shown(row.observed), mark)
    return table
