"""The figures a scenario is judged by, read from the stats API (never from our own counters)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from shared.registry import Registry

FIGURES = (
    "reported",
    "closed",
    "closure_rate",
    "service_proxy_closed",
    "citizen_requests_resolved",
    "supervised_resolved",
)


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
        "supervised_resolved": float(counts.get("closed_supervised", 0)),
    }


async def read_figures(stats_url: str, towns: list[str], registry: Registry) -> dict[str, float]:
    """Sum of the towns' figures from ``GET /v1/stats/towns/{town_id}``."""
    total = dict.fromkeys(FIGURES, 0.0)
    async with httpx.AsyncClient(base_url=stats_url, timeout=10.0) as http:
        for town_id in towns:
            registry.town(town_id)  # an unknown town is a scenario error, not a zero
            response = await http.get(f"/v1/stats/towns/{town_id}")
            response.raise_for_status()
            for key, value in figures_of_town(response.json()).items():
                total[key] += value
    total["closure_rate"] = total["closed"] / total["reported"] if total["reported"] else 0.0
    return total
