"""A shortened Changjia scenario end to end through three separate service processes."""

from __future__ import annotations

import asyncio

import pytest

from services.simulator.replay import ReplayOptions, replay
from services.simulator.sandbox import ServiceSandbox
from services.simulator.scenario import load_scenario
from shared.settings import GwSettings

pytestmark = pytest.mark.e2e

SHORT_RUN = 150  # matters: enough for every fate and category to appear


def test_short_changjia_replay_reaches_the_planned_figures_in_the_stats_api(base_settings: GwSettings) -> None:
    with ServiceSandbox(base_settings, label="e2e", ports={"stats": 28030, "dispatch": 28020, "intake": 28010}) as box:
        assert box.settings is not None
        options = ReplayOptions(
            speed=float("inf"),
            rate=0.0,
            limit=SHORT_RUN,
            until_drained=True,
            drain_timeout=240.0,
            intake_url=box.url("intake"),
            stats_url=box.url("stats"),
        )
        result = asyncio.run(replay(load_scenario("changjia"), box.settings, options))
    assert result.refused == 0
    assert result.planned == SHORT_RUN
    assert {k: result.observed[k] for k in result.expected} == pytest.approx(result.expected)
    # the structural rows come from the running stats service's registry, not from the plan
    structure = {
        k: result.observed[k] for k in ("grids", "grid_leaders", "grid_members", "volunteers", "service_items")
    }
    assert structure == {"grids": 62, "grid_leaders": 62, "grid_members": 106, "volunteers": 1447, "service_items": 50}
    # the shortened plan still exercises every special path
    assert result.expected["supervised_resolved"] > 0 and result.expected["visits"] > 0
    assert result.expected["squad_assignments"] > 0
    assert result.expected["service_proxy_closed"] > 0
