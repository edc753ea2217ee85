"""Alerts reach a person, and figures do not multiply with replicas — against real processes.

The test starts stats as subprocesses (its own vhost and database, free ports), an alert inbox
(tools/alert_inbox.py, in a thread), an Alertmanager and Prometheus processes of its own on free
127.0.0.1 ports (configs derived from the checked-in ones: only addresses, intervals and the
backlog threshold change), publishes matters the way dispatch would and leaves them unaccepted.
Every process it starts is stopped by its own handle afterwards; the stack's are not touched.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.simulator.processes import service_argv
from shared.contracts import AnyEvent, MatterAccepted, MatterEscalated, MatterResolved
from shared.settings import GwSettings
from tests.connected.stats_harness import Matter, publish_events
from tests.connected.test_dashboards_promql import free_port, panel_queries, query, substitute, wait_http
from tools import alert_inbox
from tools.dashboards import DATABASE_WIDE

pytestmark = pytest.mark.connected

CIVIL = "changjia.civil_affairs"

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts" / "gridwhistle.yml"
AM_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PROM_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
BACKLOG_ALERT = "GridwhistleDepartmentBacklogHigh"
TEST_THRESHOLD = 2
UNACCEPTED = 4
DEADLINE_S = 60.0
STATS_REFRESH_SECONDS = 1  # each stats replica's read-model snapshot (GW_STATS_REFRESH_SECONDS)
SCRAPE_SECONDS = 1  # the test's Prometheus servers


class Processes:
    """Subprocesses this test started, stopped by their own handles (never by name)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, proc))
        return proc

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            proc.terminate()
        for name, proc in reversed(self.started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode not in (0, -15):
                sys.stderr.write(f"--- {name} exited {proc.returncode}\n")
                sys.stderr.write((self.logs / f"{name}.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def start_stats(procs: Processes, settings: GwSettings, name: str) -> str:
    port = free_port()
    env = {
        **os.environ,
        "GW_AMQP_URL": settings.amqp_url,
        "GW_AMQP_MANAGEMENT_URL": settings.amqp_management_url,
        "GW_MONGO_URL": settings.mongo_url,
        "GW_MONGO_DB": settings.mongo_db,
        "GW_STATS_REFRESH_SECONDS": str(STATS_REFRESH_SECONDS),
    }
    proc = procs.start(name, service_argv("stats", port), env)
    wait_http(f"http://127.0.0.1:{port}/healthz", 60, name, proc)
    return f"127.0.0.1:{port}"


def rules_with_low_threshold(tmp_path: Path) -> Path:
    """The checked-in rules with the backlog threshold lowered to TEST_THRESHOLD and no `for`."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == BACKLOG_ALERT:
                assert rule["expr"].rstrip().endswith("> 50"), rule["expr"]
                rule["expr"] = rule["expr"].rstrip().removesuffix("> 50") + f"> {TEST_THRESHOLD}"
                rule["for"] = "0s"
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "gridwhistle.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    return rules


def start_prometheus(
    procs: Processes, tmp_path: Path, name: str, stats: list[str], rules: Path, alertmanager: str | None = None
) -> str:
    config: dict[str, Any] = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"}
    config["rule_files"] = [str(rules / "*.yml")]
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] == "gridwhistle-stats"]
    config["scrape_configs"][0]["static_configs"] = [{"targets": stats}]
    if alertmanager is None:
        config.pop("alerting")
    else:
        config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    exe = shutil.which("prometheus")
    assert exe, "prometheus not found: run make stack-up"
    port = free_port()
    argv = [
        exe,
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp_path / name}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = procs.start(name, argv)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/-/ready", 30, name, proc)
    return url


def start_alertmanager(procs: Processes, tmp_path: Path, inbox: str) -> str:
    """The checked-in routes, receivers and inhibition; webhooks to this test's inbox, short waits."""
    config: dict[str, Any] = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{inbox}/alerts/{receiver['name']}"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    exe = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert exe, "prometheus-alertmanager not found: run make stack-up (it installs the Debian package)"
    port = free_port()
    argv = [
        exe,
        f"--config.file={path}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    proc = procs.start("alertmanager", argv)
    wait_http(f"http://127.0.0.1:{port}/-/ready", 30, "alertmanager", proc)
    return f"127.0.0.1:{port}"


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), alert_inbox.make_handler(alert_inbox.Inbox(tmp_path / "in.jsonl")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(check: Any, what: str, within: float = DEADLINE_S) -> Any:
    end = time.monotonic() + within
    last: Any = None
    while time.monotonic() < end:
        done, last = await asyncio.to_thread(check)
        if done:
            return last
        await asyncio.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; last observed: {last!r}")


def backlog_notifications(inbox: str, status: str) -> list[dict[str, Any]]:
    return [
        a
        for a in httpx.get(f"{inbox}/alerts", timeout=5).json()
        if a["labels"].get("alertname") == BACKLOG_ALERT and a["status"] == status
    ]


async def test_a_backlog_over_threshold_reaches_the_webhook_receiver_and_resolves(
    settings: GwSettings, procs: Processes, inbox: str, tmp_path: Path
) -> None:
    stats = start_stats(procs, settings, "stats")
    alertmanager = start_alertmanager(procs, tmp_path, inbox)
    prometheus = start_prometheus(
        procs, tmp_path, "prometheus", [stats], rules_with_low_threshold(tmp_path), alertmanager
    )

    matters = [Matter() for _ in range(UNACCEPTED)]
    await publish_events(settings, [e for m in matters for e in (m.reported(), m.dispatched(CIVIL))])

    def fired() -> tuple[bool, Any]:
        found = backlog_notifications(inbox, "firing")
        return bool(found), found or httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()

    (alert, *_) = await wait_for(fired, f"{BACKLOG_ALERT} at the inbox")
    assert alert["receiver"] == "changjia-departments"  # routed by town
    assert alert["labels"]["town"] == "changjia"
    assert alert["labels"]["department"] == CIVIL
    assert alert["labels"]["service"] == "stats"
    assert alert["annotations"]["summary"] == f"{CIVIL} has {UNACCEPTED} open matters"
    runbook = ROOT / alert["annotations"]["runbook_url"]
    assert runbook.is_file() and "## What to do" in runbook.read_text(encoding="utf-8")

    # the department works through its backlog: 1 left, below the threshold
    done: list[AnyEvent] = []
    for m in matters[:-1]:
        done += [
            m.next(MatterAccepted, round=1, by=CIVIL, role="lead"),
            m.next(MatterResolved, round=1, by=CIVIL, role="lead"),
        ]
    await publish_events(settings, done)

    def resolved() -> tuple[bool, Any]:
        found = [a for a in backlog_notifications(inbox, "resolved") if a["labels"].get("department") == CIVIL]
        return bool(found), found

    (cleared, *_) = await wait_for(resolved, f"{BACKLOG_ALERT} resolved at the inbox")
    assert cleared["receiver"] == "changjia-departments"


def results(prom: str, expr: str) -> dict[str, float]:
    """label set (JSON) -> value of an instant query; ``instance``/``job`` dropped (they name the scrape)."""
    out = {}
    for row in query(prom, expr)["data"]["result"]:
        labels = {k: v for k, v in row["metric"].items() if k not in ("instance", "job")}
        out[json.dumps(labels, sort_keys=True)] = float(row["value"][1])
    return out


# an age is stamped at its replica's own snapshot: the other replica's snapshot may be up to one
# refresh newer, and each Prometheus may hold a sample one scrape (of a snapshot one refresh) older
AGE_TOLERANCE_S = 2 * STATS_REFRESH_SECONDS + SCRAPE_SECONDS


def same(one: dict[str, float], two: dict[str, float], *, rate: bool, age: bool) -> bool:
    if one.keys() != two.keys():
        return False
    # a rate over one replica's copy and over two copies of the same counter differs only by scrape
    # timing; a doubled figure is 100 % off (an age of hours doubled is hours off, not seconds)
    tolerance = 0.3 if rate else 1e-9
    slack = AGE_TOLERANCE_S if age else 1e-9
    return all(math.isclose(one[k], two[k], rel_tol=tolerance, abs_tol=slack) for k in one)


async def test_two_stats_replicas_give_the_same_figures_and_alert_values_as_one(
    settings: GwSettings, procs: Processes, tmp_path: Path
) -> None:
    matters = [Matter() for _ in range(UNACCEPTED)]
    events: list[AnyEvent] = [e for m in matters for e in (m.reported(), m.dispatched(CIVIL))]
    first = matters[0]
    events.append(first.next(MatterEscalated, round=1, level=1, deadline="accept", owner=CIVIL, due_at=first.t))
    events += [
        matters[1].next(MatterAccepted, round=1, by=CIVIL, role="lead"),
        matters[1].next(MatterResolved, round=1, by=CIVIL, role="lead"),
    ]
    replica_a = start_stats(procs, settings, "stats-a")
    replica_b = start_stats(procs, settings, "stats-b")
    await publish_events(settings, events)
    rules = rules_with_low_threshold(tmp_path)
    one = start_prometheus(procs, tmp_path, "prometheus-one", [replica_a], rules)
    two = start_prometheus(procs, tmp_path, "prometheus-two", [replica_a, replica_b], rules)

    def settled() -> tuple[bool, Any]:
        probe = f'max(gridwhistle_open_matters{{department="{CIVIL}"}}) > 0'
        counts = [len(query(p, 'count(up{job="gridwhistle-stats"} == 1)')["data"]["result"]) for p in (one, two)]
        scraped = query(two, 'count(up{job="gridwhistle-stats"} == 1) == 2')["data"]["result"]
        return bool(scraped) and all(query(p, probe)["data"]["result"] for p in (one, two)), counts

    await wait_for(settled, "both Prometheus servers see the backlog from every replica")

    exprs = [(f"{uid} / {title}", substitute(expr)) for uid, title, expr in panel_queries()]
    groups = yaml.safe_load((rules / "gridwhistle.yml").read_text(encoding="utf-8"))["groups"]
    exprs += [(f"rule {r['alert']}", r["expr"]) for g in groups for r in g["rules"]]
    compared = [(name, expr) for name, expr in exprs if any(metric in expr for metric in DATABASE_WIDE)]
    assert len(compared) >= 15

    def all_equal() -> tuple[bool, Any]:
        differ = []
        for name, expr in compared:
            a, b = results(one, expr), results(two, expr)
            if not same(a, b, rate="rate(" in expr or "increase(" in expr, age="_age_seconds" in expr):
                differ.append((name, a, b))
        return not differ, differ

    await wait_for(all_equal, "every database-wide figure equal with one and two replicas", within=90)
    backlog = results(two, next(e for n, e in compared if n == f"rule {BACKLOG_ALERT}"))
    assert list(backlog.values()) == [UNACCEPTED - 1]  # 3 open, not 6
