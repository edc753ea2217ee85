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
        "visits": 120,
        "squad_assignments": 200,
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


def test_visits_follow_up_the_supervised_matters_one_grid_each() -> None:
    plan = _changjia_plan()
    visits: dict[int, set[str]] = {}
    for m in plan:
        assert (m.visit is not None) == (m.fate == "supervised")
        if m.visit is not None:
            visits.setdefault(m.visit, set()).add(m.grid_id)
    assert len(visits) == 120 and all(len(grids) == 1 for grids in visits.values())
    assert len({m.visit_id for m in plan if m.visit is not None}) == 120


def test_squads_only_for_minor_matters_and_from_their_own_grid() -> None:
    plan = _changjia_plan()
    assisted = [m for m in plan if m.squad_id is not None]
    assert len(assisted) == 200
    assert all(m.severity == Severity.MINOR and m.channel != Channel.OPEN311 for m in assisted)
    assert all(m.squad_id.startswith(f"{m.grid_id}-s") for m in assisted if m.squad_id)


def test_service_items_are_of_the_matters_category_with_required_answers() -> None:
    plan = _changjia_plan()
    registry = load_registry()
    named = [m for m in plan if m.service_item is not None]
    assert 0.7 * len(plan) < len(named) < 0.9 * len(plan)
    for m in named:
        assert m.service_item is not None
        item = registry.service_item(m.town_id, m.service_item)
        assert item.category == m.category
        assert {code for code, _ in m.service_details} == {a.code for a in item.attributes if a.required}


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
    assert [replace(m, report_id="", visit_id=None) for m in plain] == [
        replace(m, report_id="", visit_id=None) for m in renamed
    ]
    assert {m.report_id for m in renamed}.isdisjoint({m.report_id for m in plain})
    assert {m.visit_id for m in renamed if m.visit_id}.isdisjoint({m.visit_id for m in plain if m.visit_id})
    assert {m.report_id for m in renamed}.isdisjoint({m.report_id for m in again})
    assert all("-r1-" in m.report_id for m in renamed)
