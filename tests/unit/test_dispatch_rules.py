"""Routing rules: validation errors name file, rule and field; first match wins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pytest

from services.dispatch.rules import MatterFacts, RulesError, load_rules, parse_duration, parse_rules
from shared.domain import Category, Severity, Tier
from shared.registry import load_registry
from shared.settings import PROJECT_ROOT, GwSettings
from tests.fakes.dispatch import registry_and_rules

pytestmark = pytest.mark.unit

DEFAULTS: list[dict[str, Any]] = [
    {"id": "default-reported", "tier": "grid_member", "accept_within": "1h", "resolve_within": "1d"},
    {
        "id": "default-whistled",
        "match": {"stage": "whistled"},
        "tier": "department",
        "lead": "{town}.comprehensive_governance",
        "accept_within": "1h",
        "resolve_within": "1d",
    },
]


def parse(*rules: dict[str, Any]) -> Any:
    registry, _ = registry_and_rules()
    return parse_rules({"schema_version": 1, "rules": [*rules, *DEFAULTS]}, registry, "routing-test.yaml")


def test_shipped_rules_route_every_category_and_severity_in_both_stages() -> None:
    _, book = registry_and_rules()
    for category in Category:
        for severity in Severity:
            route = book.route(MatterFacts(category, severity, "changjia", "changjia-g001"))
            expected = {"minor": Tier.MICRO_GRID, "major": Tier.GRID_MEMBER, "hard": Tier.GRID_LEADER}
            assert route.tier == expected.get(severity.value, Tier.DEPARTMENT)
            whistled = book.route(MatterFacts(category, severity, "changjia", "changjia-g001"), "whistled")
            assert whistled.tier == Tier.DEPARTMENT and whistled.lead is not None


def test_shipped_rules_are_valid_for_the_whole_generated_county() -> None:
    settings = GwSettings()
    county = load_registry(PROJECT_ROOT / "deploy" / "config" / "registry" / "county")
    book = load_rules(settings.rules_path, county)
    route = book.route(MatterFacts("dispute", "urgent", "town05", "town05-g001"))
    assert route.lead == "town05.comprehensive_governance"


def test_unknown_department_names_file_rule_and_field() -> None:
    with pytest.raises(RulesError) as error:
        parse(
            {
                "id": "bad-lead",
                "match": {"severity": "urgent"},
                "tier": "department",
                "lead": "{town}.nonexistent",
                "accept_within": "1h",
                "resolve_within": "1d",
            }
        )
    text = str(error.value)
    assert "routing-test.yaml: rule 'bad-lead'" in text and "lead: unknown department 'changjia.nonexistent'" in text


def test_rule_shadowed_by_an_earlier_broader_rule_is_unreachable() -> None:
    broad = {
        "id": "all-disputes",
        "match": {"category": "dispute"},
        "tier": "grid_leader",
        "accept_within": "1h",
        "resolve_within": "1d",
    }
    narrow = {
        "id": "urgent-disputes",
        "match": {"category": "dispute", "severity": "urgent"},
        "tier": "grid_leader",
        "accept_within": "1h",
        "resolve_within": "1d",
    }
    with pytest.raises(RulesError, match=r"rule 'urgent-disputes'.*unreachable, rule 'all-disputes'"):
        parse(broad, narrow)
    parse(narrow, broad)  # the other way round both can match


def test_missing_catch_all_default_is_an_error() -> None:
    registry, _ = registry_and_rules()
    with pytest.raises(RulesError, match="no catch-all default rule for stage 'whistled'"):
        parse_rules({"rules": [DEFAULTS[0]]}, registry, "x.yaml")


def test_bad_duration_names_the_rule_and_field() -> None:
    with pytest.raises(RulesError, match=r"rule 'slow' \(rules\[0\]\): accept_within: Value error, 'soon'"):
        parse(
            {
                "id": "slow",
                "tier": "grid_leader",
                "match": {"severity": "hard"},
                "accept_within": "soon",
                "resolve_within": "1d",
            }
        )


def test_first_matching_rule_wins_and_explain_says_why_the_others_did_not() -> None:
    _, book = registry_and_rules()
    result = book.explain(MatterFacts("safety_hazard", "urgent", "changjia", "changjia-g017"))
    assert result.route is not None and result.route.rule_id == "urgent-safety-hazard"
    assert result.route.supporting == ("county.emergency",)
    result = book.explain(MatterFacts("dispute", "major", "changjia", "changjia-g017"), "whistled")
    assert result.route is not None and result.route.rule_id == "whistled-dispute"
    assert ("urgent-dispute", "stage is whistled, rule is for reported") in result.trace


def test_reroute_skips_every_department_that_returned_the_matter() -> None:
    _, book = registry_and_rules()
    facts = MatterFacts("dispute", "hard", "changjia", "changjia-g001")
    args: tuple[MatterFacts, Literal["reported", "whistled"]] = (facts, "whistled")
    first = book.reroute(*args, {"changjia.judicial_mediation"})
    assert first is not None and first.lead == "changjia.petitions"
    second = book.reroute(*args, {"changjia.judicial_mediation", "changjia.petitions"})
    assert second is not None and second.lead == "changjia.comprehensive_governance"
    assert (
        book.reroute(
            *args,
            {
                "changjia.judicial_mediation",
                "changjia.petitions",
                "changjia.comprehensive_governance",
                "changjia.service_center",
            },
        )
        is None
    )


def test_durations_parse_compound_values() -> None:
    assert parse_duration("1d12h") == timedelta(hours=36)
    assert parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 hours")
