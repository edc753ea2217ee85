"""deploy/alertmanager: amtool accepts both configurations and routes alerts where the README
says; Prometheus sends to the stack's Alertmanager; the alert inbox records what arrives."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tools import alert_inbox
from tools.stack.model import ALERT_INBOX_ADDRESS, ALERTMANAGER_ADDRESS, format_address

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
AM_DIR = ROOT / "deploy" / "alertmanager"
CONFIGS = ["alertmanager.yml", "alertmanager.production.yml"]
RULES = ROOT / "deploy" / "prometheus" / "alerts" / "gridwhistle.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("amtool")
    assert exe, "amtool not found: run make stack-up (it installs the prometheus-alertmanager Debian package)"
    return subprocess.run([exe, *args], cwd=AM_DIR, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("config", CONFIGS)
def test_amtool_accepts_the_config(config: str) -> None:
    result = amtool("check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def receivers(config: str, *labels: str) -> list[str]:
    result = amtool("config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


@pytest.mark.parametrize(
    ("labels", "local", "production"),
    [
        (
            ["team=monitoring", "town=changjia", "department=changjia.civil_affairs", "severity=warning"],
            ["changjia-departments"],
            ["changjia-duty"],
        ),
        (
            ["team=monitoring", "town=changjia", "department=county.emergency", "severity=critical"],
            ["county-departments"],
            ["county-im", "county-duty"],
        ),
        (["team=operations", "service=stats", "severity=critical"], ["operations"], ["platform-im", "platform-team"]),
    ],
)
def test_alerts_are_routed_by_town_and_department(labels: list[str], local: list[str], production: list[str]) -> None:
    assert receivers("alertmanager.yml", *labels) == local
    assert receivers("alertmanager.production.yml", *labels) == production


def test_every_local_receiver_is_the_alert_inbox() -> None:
    config = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text(encoding="utf-8"))
    inbox = f"http://{format_address(*ALERT_INBOX_ADDRESS)}/alerts/"
    for receiver in config["receivers"]:
        (hook,) = receiver["webhook_configs"]
        assert hook["url"] == inbox + receiver["name"]
        assert hook["send_resolved"] is True


@pytest.mark.parametrize("config", CONFIGS)
def test_inhibited_alerts_exist_and_carry_the_equal_labels(config: str) -> None:
    """An inhibit rule naming an alert that does not exist, or a label it lacks, silently does nothing."""
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    inhibit = yaml.safe_load((AM_DIR / config).read_text(encoding="utf-8"))["inhibit_rules"]
    assert inhibit
    for rule in inhibit:
        patterns = [m.split("=", 1)[1].strip('~"') for m in rule["source_matchers"] + rule["target_matchers"]]
        for name in (n for pattern in patterns for n in pattern.split("|")):
            assert name in rules, name
            for label in rule["equal"]:  # a static label, or one the expression keeps (by (...), label_replace)
                assert label in rules[name].get("labels", {}) or label in rules[name]["expr"], (name, label)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_prometheus_sends_to_alertmanager(config: str) -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / config).read_text(encoding="utf-8"))
    (target,) = [t for am in prom["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    expected = format_address(*ALERTMANAGER_ADDRESS) if config == "prometheus.yml" else "alertmanager:9093"
    assert target == expected


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "inbox.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), alert_inbox.make_handler(alert_inbox.Inbox(log)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()


def test_the_inbox_records_each_alert_with_its_receiver(
    inbox: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, log = inbox
    payload = {
        "version": "4",
        "status": "firing",
        "groupKey": '{}:{alertname="GridwhistleDepartmentBacklogHigh"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "GridwhistleDepartmentBacklogHigh", "town": "changjia", "department": "d1"},
                "annotations": {"summary": "d1 has 60 open matters", "runbook_url": "docs/runbooks/x.md"},
                "startsAt": "2026-12-01T00:00:00Z",
            }
        ],
    }
    assert httpx.post(f"{url}/alerts/changjia-departments", json=payload).json() == {"received": 1}
    (got,) = httpx.get(f"{url}/alerts").json()
    assert got["receiver"] == "changjia-departments"
    assert got["labels"]["department"] == "d1"
    assert json.loads(log.read_text(encoding="utf-8"))["annotations"]["runbook_url"] == "docs/runbooks/x.md"
    printed = capsys.readouterr().out
    assert "[firing] GridwhistleDepartmentBacklogHigh town=changjia department=d1" in printed
    assert "runbook: docs/runbooks/x.md" in printed
    assert httpx.post(f"{url}/alerts/x", content=b"not json").status_code == 400
    assert httpx.get(f"{url}/healthz").status_code == 200
