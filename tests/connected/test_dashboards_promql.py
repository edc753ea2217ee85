"""Every Grafana panel's PromQL, evaluated by a real Prometheus scraping the running system.

The test starts the three services as subprocesses (fresh vhost and database, free ports), a
Prometheus of its own with the scrape jobs, relabelling and alert rules of
deploy/prometheus/prometheus.yml (only targets, interval and storage changed: a fresh TSDB
proves the data came from this run), drives load through intake's HTTP API and answers as
departments and grid staff do (services.department.client), then evaluates every panel's query
via /api/v1/query. An error fails; so does no data, except for panels that say why they may be
empty (tools.dashboards: SLA breaches, handler exceptions, whistles).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.department.client import DepartmentClient, WorkItem
from services.simulator.processes import service_argv
from shared.broker import make_broker, publish_command
from shared.contracts import MatterDispatched, RecordFeedback
from shared.domain import Category, Severity
from shared.registry import load_registry
from shared.settings import GwSettings
from tools import dashboards

pytestmark = pytest.mark.connected

ROOT = Path(__file__).resolve().parents[2]
PROM_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
SERVICES = ("intake", "dispatch", "stats")
REPORTS = 40
CONCURRENCY = 8
DEADLINE_S = 90.0
WAVE = 8  # reports per later wave
WAVE_GAP_S = 6.0  # longer than the stats snapshot refresh (5 s) and several scrapes (1 s)
MAX_WAVES = 10
TOWN = "changjia"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, deadline_s: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{what} did not answer {url} within {deadline_s:.0f}s")


@pytest.fixture
def services(settings: GwSettings, tmp_path: Path) -> Iterator[dict[str, int]]:
    ports = {name: free_port() for name in SERVICES}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    base_env = {
        **os.environ,
        "GW_AMQP_URL": settings.amqp_url,
        "GW_AMQP_MANAGEMENT_URL": settings.amqp_management_url,
        "GW_MONGO_URL": settings.mongo_url,
        "GW_MONGO_DB": settings.mongo_db,
        "GW_LOG_LEVEL": "INFO",
    }
    try:
        for name in SERVICES:
            log = (tmp_path / f"{name}.log").open("wb")
            procs[name] = subprocess.Popen(
                service_argv(name, ports[name]),
                env=base_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name, port in ports.items():
            wait_http(f"http://127.0.0.1:{port}/healthz", 60, f"gridwhistle {name} serve", procs[name])
        yield ports
    finally:
        for proc in procs.values():
            proc.terminate()
        for name, proc in procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode not in (0, -15):
                sys.stderr.write((tmp_path / f"{name}.log").read_text(errors="replace")[-4000:])


def prometheus_config(ports: dict[str, int], rules_dir: Path) -> dict[str, Any]:
    """The checked-in config with this run's targets, a 1 s interval and absolute rule paths."""
    config: dict[str, Any] = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules_dir / "*.yml")]
    config.pop("alerting", None)  # never notify the stack's Alertmanager from a test
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("gridwhistle-")
        if service in ports:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[service]}"]}]
    return config


@pytest.fixture
def prometheus(services: dict[str, int], tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("prometheus")
    assert exe, "prometheus not found: run make stack-up (it installs the Debian package)"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(services, ROOT / "deploy" / "prometheus" / "alerts")))
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", 30, "prometheus", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@asynccontextmanager
async def departments_and_grid_staff(settings: GwSettings) -> AsyncIterator[None]:
    """Accept and resolve everything (returning every third department matter once), and let
    the grid leader give feedback, so that every lifecycle metric moves."""
    registry = load_registry(settings.registry_path)
    broker = make_broker(settings, service="dashboard-test-departments")
    leaders = {g.grid_id: g.leader.staff_id for g in registry.town(TOWN).grids}

    def worker(client: DepartmentClient) -> Any:
        async def on_item(item: WorkItem, event: Any) -> None:
            if not isinstance(event, MatterDispatched) or item.state != "dispatched":
                return
            if item.tier == "department" and item.role == "lead" and item.round == 1 and item.matter_id.int % 3 == 0:
                await client.return_(item.matter_id, reason="not our competence")
                return
            await client.accept(item.matter_id)
            await client.resolve(item.matter_id, note="done")
            if item.role == "lead":
                await publish_command(
                    broker,
                    RecordFeedback(
                        matter_id=item.matter_id,
                        town_id=item.town_id,
                        grid_id=item.grid_id,
                        actor_id=leaders[item.grid_id],
                        round=item.round,
                        satisfaction=5,
                    ),
                )

        return on_item

    clients = [DepartmentClient(broker, d.department_id) for d in registry.all_departments()]
    clients.append(DepartmentClient.for_grid_staff(broker, TOWN))
    for client in clients:
        client.on_item = worker(client)
        client.subscribe()
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()


async def submit_reports(settings: GwSettings, intake_port: int, count: int = REPORTS) -> int:
    from services.intake.tokens import issue_token

    registry = load_registry(settings.registry_path)
    grids = registry.town(TOWN).grids
    severities = [Severity.URGENT, Severity.URGENT, Severity.MINOR, Severity.MAJOR, Severity.HARD]
    categories = [c for c in Category]
    limit = asyncio.Semaphore(CONCURRENCY)

    async def submit(client: httpx.AsyncClient, i: int) -> None:
        grid = grids[i % len(grids)]
        token = issue_token(settings.token_secret, town_id=TOWN, grid_id=grid.grid_id)
        body = {
            "report_id": f"dash-{uuid.uuid4()}",
            "town_id": TOWN,
            "grid_id": grid.grid_id,
            "micro_grid_id": grid.micro_grids[0].micro_grid_id,
            "category": categories[i % len(categories)].value,
            "severity": severities[i % len(severities)].value,
            "summary": f"dashboard test matter {i}",
        }
        async with limit:
            answer = await client.post("/v1/reports", json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202, answer.text

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{intake_port}", timeout=30.0) as client:
        await asyncio.gather(*(submit(client, i) for i in range(count)))
        # a client error too, so the outcome panels have more than one series
        bad = await client.post("/v1/reports", json={"report_id": "x"}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code in (401, 422)
    return count


def query(prom: str, expr: str) -> dict[str, Any]:
    answer = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10.0)
    body: dict[str, Any] = answer.json()
    assert answer.status_code == 200 and body.get("status") == "success", f"{expr}: {answer.text}"
    return body


def has_data(prom: str, expr: str) -> bool:
    return bool(query(prom, expr)["data"]["result"])


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every query of every checked-in dashboard."""
    found = []
    for path in sorted(dashboards.DASHBOARD_DIR.glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                found.append((model["uid"], panel["title"], target["expr"]))
    return found


def substitute(expr: str) -> str:
    """Template variables as Grafana sends them with "All" selected (allValue ``.*``)."""
    return expr.replace("$town", ".*").replace("$department", ".*").replace("$queue", ".*")


async def test_every_dashboard_panel_query_runs_and_has_data_under_load(
    settings: GwSettings, services: dict[str, int], prometheus: str
) -> None:
    started = time.monotonic()
    async with departments_and_grid_staff(settings):
        assert await submit_reports(settings, services["intake"]) == REPORTS
        submitted = time.monotonic()
        # the slowest-moving panels: closures, returns and a rate over several scrapes
        must_move = [
            "sum(gridwhistle_matters_closed_total) > 0",
            "sum(gridwhistle_returns_total) > 0",
            "sum(rate(gridwhistle_matters_reported_total[5m])) > 0",
            'sum(rate(faststream_published_messages_total{destination=~"gw[.]dispatch[.].*"}[5m])) > 0',
        ]
        end = time.monotonic() + DEADLINE_S
        waves, last_wave = 1, time.monotonic()
        while missing := [q for q in must_move if not await asyncio.to_thread(has_data, prometheus, q)]:
            assert time.monotonic() < end, "these never reached Prometheus: " + ", ".join(missing)
            # A rate needs a counter to grow between scrapes: a first burst can be done before
            # its series exists. Keep the load going in small waves (bounded) as real traffic would.
            if waves < MAX_WAVES and time.monotonic() - last_wave > WAVE_GAP_S:
                await submit_reports(settings, services["intake"], count=WAVE)
                waves, last_wave = waves + 1, time.monotonic()
            await asyncio.sleep(1.0)
        visible = time.monotonic()
        print(f"\nreports submitted in {submitted - started:.1f}s, lifecycle visible after {visible - started:.1f}s")

    allowed_empty = dashboards.may_be_empty()
    queries = panel_queries()
    assert len(queries) >= 30
    errors, empty = [], []
    for uid, title, expr in queries:
        try:
            result = query(prometheus, substitute(expr))
        except AssertionError as error:
            errors.append(f"{uid} / {title}: {error}")
            continue
        if not result["data"]["result"] and (uid, title) not in allowed_empty:
            empty.append(f"{uid} / {title}: {expr}")
    assert not errors, "queries failed:\n" + "\n".join(errors)
    assert not empty, "panels without data:\n" + "\n".join(empty)

    async with httpx.AsyncClient(timeout=10.0) as client:
        rules = (await client.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
    unhealthy = [r["name"] for g in rules for r in g["rules"] if r.get("health") not in ("ok", "unknown")]
    assert rules and not unhealthy, unhealthy
