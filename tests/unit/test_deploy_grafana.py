"""deploy/grafana: the checked-in dashboards are exactly what tools/dashboards.py generates,
reference the provisioned datasource, and every panel carries a query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools import dashboards

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


def test_checked_in_dashboards_equal_the_generator_output() -> None:
    files = {p.name for p in dashboards.DASHBOARD_DIR.glob("*.json")}
    assert files == {d.filename for d in dashboards.dashboards()}
    assert dashboards.main(["--check"]) == 0, "run: .venv/bin/python -m tools.dashboards"


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    uids = [d.uid for d in dashboards.dashboards()]
    assert uids == ["gw-county-overview", "gw-department-backlog", "gw-grid-view", "gw-transport-health"]


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text("utf-8"))
    uid = provisioned["datasources"][0]["uid"]
    for path in dashboards.DASHBOARD_DIR.glob("*.json"):
        model = json.loads(path.read_text(encoding="utf-8"))
        for panel in model["panels"]:
            if panel["type"] == "text":
                continue
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
                assert target["expr"].strip()


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
