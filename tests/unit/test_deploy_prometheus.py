"""deploy/prometheus: promtool checks the scrape configs and the alert rules, and runs the
rule unit tests; every alert rule must have at least one promtool test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RELABEL_BACKSTOP = [
    {"source_labels": [label], "regex": r"gw\.(events|dispatch|intake)\.[^*]+", "action": "drop"}
    for label in ("handler", "destination")
]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: run make stack-up (it installs the prometheus Debian package)"
    return subprocess.run([exe, *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_promtool_accepts_the_scrape_config(config: str) -> None:
    result = promtool("check", "config", "--syntax-only", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    rules = sorted(str(p.relative_to(PROM_DIR)) for p in (PROM_DIR / "alerts").glob("*.yml"))
    assert rules
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted(str(p.relative_to(PROM_DIR)) for p in (PROM_DIR / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_has_a_promtool_test() -> None:
    alerts = {
        rule["alert"]
        for path in (PROM_DIR / "alerts").glob("*.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for path in (PROM_DIR / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts - tested == set()
    firing = {
        case["alertname"]
        for path in (PROM_DIR / "tests").glob("*.yml")
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - firing == set(), "every alert needs a test where it fires"


def test_a_broken_rule_test_makes_promtool_fail(tmp_path: Path) -> None:
    (tmp_path / "alerts").mkdir()
    shutil.copy(PROM_DIR / "alerts" / "gridwhistle.yml", tmp_path / "alerts" / "gridwhistle.yml")
    case = yaml.safe_load((PROM_DIR / "tests" / "gridwhistle_test.yml").read_text(encoding="utf-8"))
    case["rule_files"] = [str(tmp_path / "alerts" / "gridwhistle.yml")]
    case["tests"][0]["alert_rule_test"][1]["exp_alerts"] = []  # it does fire: the test must fail
    (tmp_path / "t.yml").write_text(yaml.safe_dump(case), encoding="utf-8")
    result = promtool("test", "rules", str(tmp_path / "t.yml"))
    assert result.returncode != 0


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_gridwhistle_jobs_carry_the_cardinality_backstop(config: str) -> None:
    scrape = yaml.safe_load((PROM_DIR / config).read_text(encoding="utf-8"))["scrape_configs"]
    jobs = {job["job_name"]: job for job in scrape}
    expected = {"gridwhistle-intake", "gridwhistle-dispatch", "gridwhistle-stats", "rabbitmq", "rabbitmq-per-object"}
    assert expected <= set(jobs)
    assert jobs["rabbitmq-per-object"]["metrics_path"] == "/metrics/per-object"
    for name in ("gridwhistle-intake", "gridwhistle-dispatch", "gridwhistle-stats"):
        assert jobs[name]["metric_relabel_configs"] == RELABEL_BACKSTOP, name


def alert_rules() -> dict[str, dict[str, object]]:
    return {
        rule["alert"]: rule
        for path in (PROM_DIR / "alerts").glob("*.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_alert_links_its_runbook_and_every_runbook_has_an_alert() -> None:
    rules = alert_rules()
    runbooks = ROOT / "docs" / "runbooks"
    for name, rule in rules.items():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md", name
        page = (ROOT / annotations["runbook_url"]).read_text(encoding="utf-8")
        for heading in ("## What it means", "## How to look", "## What to do"):
            assert heading in page, (name, heading)
    pages = {p.stem for p in runbooks.glob("*.md")} - {"README"}
    assert pages == set(rules)


def test_every_alert_names_the_service_whose_metrics_it_reads() -> None:
    """Alertmanager inhibits a service's alerts while GridwhistleServiceDown{service=...} fires."""
    for name, rule in alert_rules().items():
        labels = rule["labels"]
        assert isinstance(labels, dict)
        if name == "GridwhistleServiceDown":
            assert '"service"' in str(rule["expr"])
        elif name != "GridwhistleServiceMissing":
            assert labels.get("service") in {"stats", "dispatch", "intake", "rabbitmq"}, name
