"""Scenario plans are exact and repeatable: the article's figures come from the data."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from services.simulator.bots import owner_of
from services.simulator.scenario import ScenarioError, expected_outcome, load_scenario, plan_scenario
from shared.domain import Channel, Severity
from shared.registry import load_registry

pytestmark = pytest.mark.unit


def _changjia_plan(seed: int = 1) -> list:  # type: ignore[type-arg]
    scenario = load_scenario("changjia")
    return plan_scenario(scenario, load_registry(scenario.registry_path()), seed=seed)


def test_changjia_plan_has_the_articles_counts() -> None:
    plan = _changjia_plan()
    assert expected_outcome(plan) == {
        "reported": 2650,
        "closed": 2650,
        "closure_rate": 1.0,
        "service_proxy_closed": 1300,
        "citizen_requests_resolved": 2410,
        "supervised_resolved": 410,
    }
    assert len({m.report_id for m in plan}) == 2650
    assert {m.grid_id for m in plan} <= {g.grid_id for g in load_registry().all_grids()}


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    assert _changjia_plan(7) == _changjia_plan(7)
    assert [m.grid_id for m in _changjia_plan(7)] != [m.grid_id for m in _changjia_plan(8)]


def test_whistles_only_for_grid_tier_and_open311_only_for_citizens() -> None:
    plan = _changjia_plan()
    assert Counter(m.fate for m in plan)["whistled"] == 300
    assert all(m.severity != Severity.URGENT for m in plan if m.fate == "whistled")
    assert all(m.origin == "citizen_request" for m in plan if m.channel == Channel.OPEN311)


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match="known: changjia, county"):
        load_scenario("atlantis")


def test_bot_reads_the_owner_from_the_dispatch_routing_key() -> None:
    assert owner_of("changjia.department.changjia.civil_affairs.p2") == "changjia.civil_affairs"
    assert owner_of("changjia.grid_member.changjia-g017-member1.p3") == "changjia-g017-member1"
    assert owner_of("changjia.supervision.changjia.p1") == "changjia"


def test_a_run_id_renames_the_reports_but_keeps_the_plan() -> None:
    scenario = load_scenario("changjia")
    registry = load_registry(scenario.registry_path())
    plain = plan_scenario(scenario, registry, seed=3)
    renamed = plan_scenario(scenario, registry, seed=3, run_id="r1")
    again = plan_scenario(scenario, registry, seed=3, run_id="r2")
    assert [replace(m, report_id="") for m in plain] == [replace(m, report_id="") for m in renamed]
    assert {m.report_id for m in renamed}.isdisjoint({m.report_id for m in plain})
    assert {m.report_id for m in renamed}.isdisjoint({m.report_id for m in again})
    assert all("-r1-" in m.report_id for m in renamed)
