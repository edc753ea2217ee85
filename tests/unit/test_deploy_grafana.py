"""deploy/grafana: the checked-in dashboards are exactly what tools/dashboards.py generates,
read the datasource variable (defaulting to the provisioned one), every panel carries a query,
and database-wide figures are collapsed over replicas before they are summed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tools import dashboards
from tools.dashboards import DATABASE_WIDE

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


def test_checked_in_dashboards_equal_the_generator_output() -> None:
    files = {p.name for p in dashboards.DASHBOARD_DIR.glob("*.json")}
    assert files == {d.filename for d in dashboards.dashboards()}
    assert dashboards.main(["--check"]) == 0, "run: .venv/bin/python -m tools.dashboards"


def test_the_five_dashboards_exist_with_unique_uids() -> None:
    uids = [d.uid for d in dashboards.dashboards()]
    assert uids == [
        "gw-county-overview",
        "gw-department-backlog",
        "gw-grid-view",
        "gw-transport-health",
        "gw-rabbitmq-overview",
    ]


def test_every_panel_queries_the_datasource_variable_defaulting_to_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text("utf-8"))
    uid = provisioned["datasources"][0]["uid"]
    for path in dashboards.DASHBOARD_DIR.glob("*.json"):
        model = json.loads(path.read_text(encoding="utf-8"))
        (variable,) = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
        assert variable["name"] == "datasource" and variable["query"] == "prometheus"
        assert variable["current"]["value"] == uid
        for other in model["templating"]["list"]:
            if other["type"] == "query":
                assert other["datasource"]["uid"] == "${datasource}"
        for panel in model["panels"]:
            if panel["type"] == "text":
                continue
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                assert target["expr"].strip()
        assert f'"uid": "{uid}"' not in json.dumps(model["panels"])  # no hard-coded uid left


def unsafe_uses(expr: str) -> list[str]:
    """Database-wide metrics in ``expr`` not directly under ``max by (...)`` (optionally via rate/increase)."""
    found = []
    for metric in DATABASE_WIDE:
        uses = len(re.findall(rf"\b{metric}\b", expr))
        safe = len(re.findall(rf"max by \([^)]*\)\s*\((?:(?:rate|increase)\()?{metric}\b", expr))
        found += [metric] * (uses - safe)
    return found


def test_database_wide_figures_are_collapsed_over_replicas_in_dashboards_and_rules() -> None:
    exprs = [
        (path.name, target["expr"])
        for path in dashboards.DASHBOARD_DIR.glob("*.json")
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]
        for target in panel.get("targets", [])
    ]
    for path in (ROOT / "deploy" / "prometheus" / "alerts").glob("*.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            exprs += [(path.name, rule["expr"]) for rule in group["rules"]]
    assert any("gridwhistle_open_matters" in e for _, e in exprs)
    unsafe = [(name, expr) for name, expr in exprs if unsafe_uses(expr)]
    assert not unsafe, unsafe


def test_the_replica_check_catches_a_bare_sum() -> None:
    assert unsafe_uses("sum by (town) (gridwhistle_open_matters)") == ["gridwhistle_open_matters"]
    assert unsafe_uses("sum(max by (town, category) (rate(gridwhistle_matters_closed_total[5m])))") == []


def test_panels_allowed_to_be_empty_say_why_and_are_few() -> None:
    allowed = dashboards.may_be_empty()
    assert all(reason for reason in allowed.values())
    total = sum(1 for d in dashboards.dashboards() for p in d.panels if isinstance(p, dashboards.Panel))
    assert len(allowed) <= total // 5


def test_dashboard_provider_points_where_compose_mounts_the_json() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "gridwhistle.yml").read_text("utf-8"))
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yml").read_text("utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts
