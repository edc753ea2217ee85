"""Two real dispatch processes compete on the same queues: 1,000 mixed matters, shuffled and
duplicated commands, and every final state equals what an independent model of the rules says."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.simulator.processes import service_argv
from shared.broker import publish_command, publish_event
from shared.contracts import MatterReported
from shared.read_models import CASES
from shared.settings import PROJECT_ROOT, GwSettings
from tests.connected.dispatch_harness import client_broker, command, reported
from tools.vhosts import declare_registry_topology

pytestmark = pytest.mark.connected

# The full acceptance load: 1,000 matters, ~2,800 commands plus one in ten again, two dispatch
# processes competing on the same queues. DISPATCH_TEST_MATTERS scales it.
MATTERS = int(os.environ.get("DISPATCH_TEST_MATTERS", "1000"))
TOWN = "changjia"
E, CE, CG = "changjia.emergency_safety", "county.emergency", "changjia.comprehensive_governance"

# The model: hand-written from deploy/config/routing.yaml, independent of services.dispatch.
URGENT = {"safety_hazard": (E, [CE]), "dispute": (CG, ["county.public_security"])}
WHISTLED = {
    "dispute": ("changjia.judicial_mediation", [CG]),
    "safety_hazard": (E, []),
    "service_proxy": ("changjia.service_center", []),
    "living_environment": ("changjia.environment", []),
    "policy_publicity": ("changjia.publicity", []),
    "public_opinion": ("changjia.petitions", []),
    "other": (CG, []),
}
GRID_TIER = {"minor": "micro_grid", "major": "grid_member", "hard": "grid_leader"}
CATEGORIES = sorted(WHISTLED)


@dataclass
class Expected:
    state: str
    round: int
    tier: str
    lead: str | None  # None: a grid staff member (the model does not pick the assignee)


def script(rng: random.Random, index: int) -> tuple[MatterReported, list[Any], Expected]:
    grid = f"changjia-g{rng.randint(1, 62):03d}"
    leader = f"{grid}-leader"
    category = rng.choice(CATEGORIES)
    fate = rng.choice(["grid_close", "whistle", "urgent_resolve", "urgent_reopen", "urgent_return", "bad_return"])
    severity = rng.choice(["minor", "major", "hard"]) if fate in ("grid_close", "whistle") else "urgent"
    event = reported(category, severity, grid_id=grid)
    m = event.matter_id

    def c(kind: str, actor: str, round_: int, **fields: Any) -> Any:
        return command(kind, m, actor, round_, grid_id=grid, **fields)

    def work(lead: str, supporting: list[str], round_: int) -> list[Any]:
        out = [c("accept_matter", lead, round_)]
        for s in supporting:
            out += [c("accept_matter", s, round_), c("resolve_matter", s, round_)]
        return [*out, c("resolve_matter", lead, round_)]

    if fate == "grid_close":
        cmds = [
            c("accept_matter", leader, 1),
            c("resolve_matter", leader, 1),
            c("record_feedback", leader, 1, satisfaction=4),
        ]
        return event, cmds, Expected("closed", 1, GRID_TIER[severity], None)
    if fate == "whistle":
        lead, supporting = WHISTLED[category]
        cmds = [
            c("whistle_matter", leader, 1, reason="up"),
            *work(lead, supporting, 2),
            c("record_feedback", leader, 2, satisfaction=5),
        ]
        return event, cmds, Expected("closed", 2, "department", lead)
    lead, supporting = URGENT.get(category, (CG, []))
    if fate == "urgent_resolve":
        return event, work(lead, supporting, 1), Expected("resolved", 1, "department", lead)
    if fate == "urgent_reopen":
        cmds = [
            *work(lead, supporting, 1),
            c("record_feedback", leader, 1, satisfaction=2),
            c("resolve_matter", lead, 2),
            c("record_feedback", leader, 2, satisfaction=4),
        ]
        return event, cmds, Expected("closed", 2, "department", lead)
    if fate == "urgent_return":
        cmds = [c("return_matter", lead, 1, reason="not ours")]
        if lead == E:  # the rule's alternate takes it
            return event, cmds, Expected("dispatched", 2, "department", CG)
        if lead == CG and category == "dispute":  # urgent-dispute's alternate
            return event, cmds, Expected("dispatched", 2, "department", "changjia.judicial_mediation")
        return event, cmds, Expected("returned", 2, "supervision", TOWN)  # no department left
    return event, [c("return_matter", lead, 1, reason="")], Expected("dispatched", 1, "department", lead)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dispatch(settings: GwSettings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GW_AMQP_URL": settings.amqp_url,
        "GW_MONGO_DB": settings.mongo_db,
        "GW_LOG_LEVEL": "WARNING",
        "GW_SWEEP_INTERVAL": "30",  # no deadline falls due here: keep full scans off the store
        "GW_PREFETCH": os.environ.get("DISPATCH_TEST_PREFETCH", "8"),
    }
    with log.open("wb") as out:
        return subprocess.Popen(service_argv("dispatch", port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)


def wait_healthy(ports: list[int], procs: list[subprocess.Popen[bytes]], logs: list[Path], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise AssertionError(f"dispatch exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        for port in list(pending):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    pending.discard(port)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    assert not pending, f"dispatch on {pending} not healthy in {timeout}s"


async def test_two_dispatch_processes_end_all_matters_in_the_modelled_states(
    settings: GwSettings, mongo_ready: None, tmp_path: Path
) -> None:
    rng = random.Random(20260301)
    scripts = [script(rng, i) for i in range(MATTERS)]
    expected = {str(e.matter_id): x for e, _, x in scripts}
    handled = {str(e.matter_id): len(cmds) for e, cmds, _ in scripts}  # every command applied or rejected
    # reports first (departments act only on what was dispatched to them), then every command
    # of every matter shuffled together, one in ten delivered twice
    reports = [event for event, _, _ in scripts]
    commands = [c for _, cmds, _ in scripts for c in cmds]
    commands += [c for c in commands if rng.random() < 0.1]
    rng.shuffle(commands)

    await declare_registry_topology(settings)  # the operator's step, as in production
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"dispatch-{p}.log" for p in ports]
    procs = [start_dispatch(settings, port, log) for port, log in zip(ports, logs, strict=True)]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    try:
        await asyncio.to_thread(wait_healthy, ports, procs, logs)
        async with client_broker(settings) as broker:
            for start in range(0, len(reports), 200):
                await asyncio.gather(*(publish_event(broker, m) for m in reports[start : start + 200]))
            for start in range(0, len(commands), 200):
                await asyncio.gather(*(publish_command(broker, m) for m in commands[start : start + 200]))
        cases = mongo[settings.mongo_db][CASES]

        async def mismatches() -> dict[str, tuple[Any, ...]]:
            seen: dict[str, tuple[Any, ...]] = {}
            fields = {"state": 1, "round": 1, "tier": 1, "lead": 1, "pending": 1, "applied": 1}
            async for doc in cases.find({}, fields):
                seen[doc["_id"]] = (
                    doc.get("state"),
                    doc.get("round"),
                    doc.get("tier"),
                    doc.get("lead"),
                    len(doc.get("pending") or []),
                    len(doc.get("applied") or []),
                )
            wrong = {}
            for matter_id, want in expected.items():
                got = seen.get(matter_id)
                if (
                    got is None
                    or got[:3] != (want.state, want.round, want.tier)
                    or got[4:] != (0, handled[matter_id])
                    or (want.lead is not None and got[3] != want.lead)
                ):
                    wrong[matter_id] = (got, want)
            return wrong

        deadline = time.monotonic() + max(120.0, MATTERS * 1.2)
        wrong = await mismatches()
        while wrong and time.monotonic() < deadline:
            for proc, log in zip(procs, logs, strict=True):
                assert proc.poll() is None, f"dispatch died:\n{log.read_text()[-3000:]}"
            await asyncio.sleep(3.0)
            wrong = await mismatches()
        sample = dict(list(wrong.items())[:5])
        assert not wrong, f"{len(wrong)} of {MATTERS} matters not in the modelled state, e.g. {sample}"
        async with httpx.AsyncClient(timeout=5) as http:
            metrics = [(await http.get(f"http://127.0.0.1:{p}/metrics")).text for p in ports]
        assert all(
            'gridwhistle_dispatch_commands_total{command="accept_matter",outcome="applied"}' in t for t in metrics
        ), "both processes did work"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await mongo.close()
