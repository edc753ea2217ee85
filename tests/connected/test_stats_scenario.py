"""500 matters, ~2,000 events, 40 supervision visits, duplicates, SIGKILLs, two replicas: stats against the real stack.

One scenario runs once for the module (two real ``gridwhistle stats serve`` processes
competing on ``stats.events``, one of them SIGKILLed at random moments and restarted); the
tests then compare what they built with figures computed here, independently, from the
published events and from the generator's own record of where each matter ended up. The last
test stops the service and runs ``stats rebuild``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from pymongo import MongoClient

from services.simulator.processes import service_argv
from shared.broker import make_broker, publish_event
from shared.contracts import (
    AnyEvent,
    AnyStatsEvent,
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterDispatched,
    MatterEscalated,
    MatterOwner,
    MatterReopened,
    MatterReported,
    MatterResolved,
    MatterReturned,
    MatterSnapshot,
    MatterWhistled,
    SupervisionVisitRecorded,
    visit_event_id,
)
from shared.domain import Category, Channel, Priority, Severity, Tier
from shared.registry import Registry, load_registry
from shared.settings import PROJECT_ROOT, GwSettings
from shared.topology import STATS_EVENTS
from tools.vhosts import create_vhost, management_client

pytestmark = pytest.mark.connected

# The done-when size; GW_TEST_STATS_MATTERS shrinks it for a quick local run (never below 50).
MATTERS = max(50, int(os.environ.get("GW_TEST_STATS_MATTERS", "500")))
DUPLICATES = MATTERS // 4
VISITS = 40  # supervision visits: events about a grid, not a matter (guarded by the event log)
KILLS = 4 if MATTERS >= 500 else 2
SEED = 20261126
ZONE = ZoneInfo("Asia/Shanghai")
REGISTRY_PATH = PROJECT_ROOT / "deploy" / "config" / "registry" / "changjia.yaml"
DRAIN_WITHIN = 300.0

# ----------------------------------------------------------------------------- the scenario


@dataclass
class Outcome:
    """Where the generator left a matter (ground truth, not derived from the events)."""

    state: str = "reported"
    open: dict[str, bool] = field(default_factory=dict)  # department -> accepted


class Story:
    def __init__(self, rng: random.Random, registry: Registry, start: datetime) -> None:
        self.rng = rng
        self.id = uuid.uuid4()
        grid = rng.choice(registry.all_grids())
        self.grid = grid
        self.departments = [d.department_id for d in registry.departments_of_town("changjia")]
        self.category = rng.choice(list(Category))
        self.t = start
        self.seq = 0
        self.events: list[AnyEvent] = []
        self.outcome = Outcome()
        self.pending: tuple[type[Any], int, datetime, dict[str, Any]] | None = None
        self.round, self.level, self.tier, self.lead = 0, 0, Tier.DEPARTMENT, ""
        self.dispatched_at: datetime | None = None

    def emit(self, cls: type[Any], *, change: bool = True, **fields: Any) -> None:
        """Queue an event; it is built at the next ``emit`` (or ``play``'s end), once the outcome
        shows the state it produced: dispatch's events carry that state as their snapshot."""
        self._flush()
        self.t += timedelta(minutes=self.rng.randint(3, 400))
        seq = self.seq if change else max(self.seq - 1, 0)
        self.pending = (cls, seq, self.t, fields)
        if change:
            self.seq += 1

    def _flush(self) -> None:
        if self.pending is None:
            return
        cls, seq, at, fields = self.pending
        self.pending = None
        decided = {} if cls is MatterReported else {"matter": self.snapshot()}
        event: AnyEvent = cls(
            matter_id=self.id,
            town_id="changjia",
            grid_id=self.grid.grid_id,
            category=self.category,
            occurred_at=at,
            sequence=seq,
            **decided,
            **fields,
        )
        self.events.append(event)

    def snapshot(self) -> MatterSnapshot:
        """The generator's ground truth as dispatch would state it (the part stats keeps)."""
        owners = [
            MatterOwner(
                owner_id=d,
                role="lead" if d == self.lead else "supporting",
                state="accepted" if accepted else "dispatched",
                escalation_level=self.level if d == self.lead else 0,
            )
            for d, accepted in self.outcome.open.items()
        ]
        return MatterSnapshot(
            state=self.outcome.state,
            round=self.round,
            severity=Severity.MAJOR,
            tier=self.tier,
            lead=self.lead,
            owners=owners,
            open_departments=sorted(self.outcome.open),
            dispatched_at=self.dispatched_at,
            escalation_level=self.level,
        )

    def seconds(self) -> float:
        return round(self.rng.uniform(60, 200_000), 3)

    def dispatch(self, rnd: int, tier: Tier, lead: str, supporting: list[str], reason: str) -> None:
        self.emit(
            MatterDispatched,
            round=rnd,
            severity=Severity.MAJOR,
            tier=tier,
            lead=lead,
            supporting=supporting,
            priority=Priority.P2,
            rule_id="test",
            reason=reason,
            accept_by=self.t + timedelta(hours=4),
            resolve_by=self.t + timedelta(days=3),
        )
        self.round, self.level, self.tier, self.lead, self.dispatched_at = rnd, 0, tier, lead, self.t
        self.outcome.state = "dispatched"
        self.outcome.open = {d: False for d in [lead, *supporting]} if tier is Tier.DEPARTMENT else {}

    def maybe_reject(self, rnd: int) -> None:
        if self.rng.random() < 0.05:
            self.emit(
                MatterCommandRejected,
                change=False,
                command_id=uuid.uuid4(),
                command_type="accept_matter",
                actor_id="changjia-instructor-01",
                reason=f"round {rnd} is over",
            )

    def play(self) -> None:
        self._play()
        self._flush()

    def _play(self) -> None:
        r = self.rng
        self.emit(
            MatterReported,
            report_id=f"r-{self.id}",
            channel=Channel.APP,
            severity=Severity.MAJOR,
            summary="something to handle",
        )
        if r.random() < 0.05:
            return
        if r.random() < 0.35:
            staff = self.grid.leader.staff_id
            self.dispatch(1, Tier.GRID_LEADER, staff, [], "reported")
            if r.random() < 0.2:
                self.emit(MatterWhistled, round=1, by=staff, reason="needs the town")
                self.department_round(2, "whistled")
                return
            self.grid_round(staff)
            return
        self.department_round(1, "reported")

    def grid_round(self, staff: str) -> None:
        r = self.rng
        if r.random() < 0.35:
            return
        self.emit(
            MatterAccepted, round=1, by=staff, role="lead", waited_seconds=self.seconds(), on_time=r.random() < 0.8
        )
        self.outcome.state = "accepted"
        if r.random() < 0.35:
            return
        self.emit(MatterResolved, round=1, by=staff, role="lead", handling_seconds=self.seconds(), on_time=True)
        self.outcome.state = "resolved"
        if r.random() < 0.35:
            return
        self.emit(MatterClosed, round=1, by=staff, satisfaction=r.randint(3, 5))
        self.outcome.state = "closed"

    def department_round(self, rnd: int, reason: str) -> None:
        r = self.rng
        lead, *supporting = r.sample(self.departments, 1 + r.choice((0, 0, 0, 0, 1, 2)))
        self.dispatch(rnd, Tier.DEPARTMENT, lead, supporting, reason)
        self.maybe_reject(rnd)
        if rnd < 3 and r.random() < 0.12:
            self.emit(MatterReturned, round=rnd, by=lead, reason="not ours", outcome="rerouted")
            self.outcome.state, self.outcome.open = "returned", {}
            self.department_round(rnd + 1, "returned")
            return
        if r.random() < 0.1:
            self.emit(MatterEscalated, round=rnd, level=1, deadline="accept", owner=lead, due_at=self.t)
            self.level = 1
            if r.random() < 0.4:
                self.emit(MatterEscalated, round=rnd, level=2, deadline="accept", owner=lead, due_at=self.t)
                self.level = 2
        if r.random() < 0.2:
            return
        self.emit(
            MatterAccepted, round=rnd, by=lead, role="lead", waited_seconds=self.seconds(), on_time=r.random() < 0.75
        )
        self.outcome.state, self.outcome.open[lead] = "accepted", True
        for department in supporting:
            if r.random() < 0.2:
                self.emit(MatterReturned, round=rnd, by=department, reason="nothing for us", outcome="released")
                del self.outcome.open[department]
            elif r.random() < 0.8:
                self.emit(
                    MatterAccepted,
                    round=rnd,
                    by=department,
                    role="supporting",
                    waited_seconds=self.seconds(),
                    on_time=True,
                )
                self.outcome.open[department] = True
        if r.random() < 0.25:
            return
        for department in [d for d in supporting if d in self.outcome.open]:
            if r.random() < 0.7:
                self.emit(
                    MatterResolved,
                    round=rnd,
                    by=department,
                    role="supporting",
                    handling_seconds=self.seconds(),
                    on_time=True,
                )
                del self.outcome.open[department]
        self.emit(
            MatterResolved,
            round=rnd,
            by=lead,
            role="lead",
            handling_seconds=self.seconds(),
            on_time=r.random() < 0.7,
            supervised=r.random() < 0.1,
        )
        self.outcome.state = "resolved"
        del self.outcome.open[lead]
        if r.random() < 0.2:
            return
        self.emit(MatterClosed, round=rnd, by=self.grid.leader.staff_id, satisfaction=r.randint(1, 5))
        self.outcome.state, self.outcome.open = "closed", {}
        if r.random() < 0.08:
            self.emit(MatterReopened, round=rnd, by=self.grid.leader.staff_id, satisfaction=r.randint(1, 2), lead=lead)
            self.outcome.state, self.outcome.open = "accepted", {lead: True}


def generate(registry: Registry, rng: random.Random) -> tuple[list[AnyStatsEvent], dict[str, Outcome]]:
    start = datetime.now(UTC) - timedelta(days=40)
    events: list[AnyStatsEvent] = []
    outcomes: dict[str, Outcome] = {}
    for i in range(MATTERS):
        story = Story(rng, registry, start + timedelta(minutes=i * 50))
        story.play()
        events += story.events
        outcomes[str(story.id)] = story.outcome
    grids = registry.all_grids()
    for i in range(VISITS):
        grid = grids[rng.randrange(len(grids))]
        visit_id, at = uuid.UUID(int=rng.getrandbits(128)), start + timedelta(hours=i * 20)
        events.append(
            SupervisionVisitRecorded(
                message_id=visit_event_id(visit_id),
                occurred_at=at,
                town_id=grid.town_id,
                grid_id=grid.grid_id,
                visit_id=visit_id,
                instructor_id=registry.supervisors_of_grid(grid.grid_id)[0].staff_id,
                visited_at=at,
            )
        )
    return events, outcomes


# ----------------------------------------------------------------------------- the oracle

Figures = Counter[str]


def _day(event: AnyStatsEvent) -> str:
    return event.occurred_at.astimezone(ZONE).date().isoformat()


def independent_counts(events: list[AnyStatsEvent], registry: Registry) -> dict[str, dict[str, Any]]:
    """Per ``town|day|shard`` bucket: totals, per category, per grid, per department, per instructor."""
    buckets: dict[str, dict[str, Any]] = {}
    for e in events:
        b = buckets.setdefault(
            f"{e.town_id}|{_day(e)}|{e.message_id.int % 4:02d}",  # 4 shards chosen by message id
            {
                "totals": Counter(),
                "counts": defaultdict(Counter),
                "grids": defaultdict(Counter),
                "departments": defaultdict(Counter),
                "instructors": defaultdict(Counter),
            },
        )
        if isinstance(e, SupervisionVisitRecorded):  # a grid's event: no category, its instructor
            for part in (b["totals"], b["grids"][e.grid_id], b["instructors"][e.instructor_id]):
                part["visits"] += 1
            continue
        mine: Figures = Counter()
        theirs: dict[str, Figures] = defaultdict(Counter)
        if isinstance(e, MatterReported):
            mine["reported"] += 1
        elif isinstance(e, MatterDispatched):
            mine["dispatched"] += 1
            if e.tier is Tier.DEPARTMENT:
                for d in {e.lead, *e.supporting}:
                    theirs[d]["dispatched"] += 1
                theirs[e.lead]["dispatched_lead"] += 1
        elif isinstance(e, MatterAccepted):
            one = Counter(accepted=1, accepted_on_time=int(e.on_time), accept_ms=round(e.waited_seconds * 1000))
            if e.role == "lead":
                mine.update(one)
            if registry.has_department(e.by):
                theirs[e.by].update(one)
        elif isinstance(e, MatterResolved):
            one = Counter(resolved=1, resolved_on_time=int(e.on_time), resolve_ms=round(e.handling_seconds * 1000))
            if e.role == "lead":
                mine.update(one)
                mine["supervised"] += int(e.supervised)
            if registry.has_department(e.by):
                theirs[e.by].update(one)
        elif isinstance(e, MatterClosed | MatterReopened):
            mine["closed" if isinstance(e, MatterClosed) else "reopened"] += 1
            if isinstance(e, MatterClosed):
                mine["closed_citizen_requests"] += int(e.origin == "citizen_request")
                mine["closed_supervised"] += int(e.supervised)
            mine["feedback"] += 1
            mine["satisfaction_sum"] += e.satisfaction
        elif isinstance(e, MatterReturned):
            mine["returned"] += 1
            if registry.has_department(e.by):
                theirs[e.by]["returned"] += 1
        elif isinstance(e, MatterWhistled):
            mine["whistled"] += 1
        elif isinstance(e, MatterEscalated):
            for target in [mine, theirs[e.owner]] if registry.has_department(e.owner) else [mine]:
                target[f"escalated_l{e.level}"] += 1
                if e.level == 1:
                    target[f"breached_{e.deadline}"] += 1
        elif isinstance(e, MatterCommandRejected):
            mine["rejected"] += 1
        mine = +mine
        if not mine and not any(+f for f in theirs.values()):
            continue
        b["totals"].update(mine)
        b["counts"][e.category.value].update(mine)
        b["grids"][e.grid_id].update(mine)
        for d, f in theirs.items():
            b["departments"][d].update(+f)
    return {k: _plain(v) for k, v in buckets.items()}


def _plain(bucket: dict[str, Any]) -> dict[str, Any]:
    def clean(c: Figures) -> dict[str, int]:
        return {k: v for k, v in c.items() if v}

    return {
        "totals": clean(bucket["totals"]),
        "counts": {k: clean(v) for k, v in bucket["counts"].items() if clean(v)},
        "grids": {k: clean(v) for k, v in bucket["grids"].items() if clean(v)},
        "departments": {k: clean(v) for k, v in bucket["departments"].items() if clean(v)},
        "instructors": {k: clean(v) for k, v in bucket["instructors"].items() if clean(v)},
    }


def stored_counts(db: Any) -> dict[str, dict[str, Any]]:
    """The service's buckets in the oracle's shape (department keys decoded)."""
    result = {}
    for doc in db["counters"].find({}):
        result[doc["_id"]] = {
            "totals": doc.get("totals", {}),
            "counts": doc.get("counts", {}),
            "grids": doc.get("grids", {}),
            "departments": {k.replace("~", "."): v for k, v in doc.get("departments", {}).items()},
            "instructors": doc.get("instructors", {}),
        }
    return result


def sum_buckets(
    buckets: dict[str, dict[str, Any]], part: str, key: str | None = None, days: tuple[str, str] | None = None
) -> Figures:
    total: Figures = Counter()
    for bucket_id, bucket in buckets.items():
        day = bucket_id.split("|")[1]
        if days and not days[0] <= day <= days[1]:
            continue
        figures = bucket[part] if key is None else bucket[part].get(key, {})
        total.update(figures)
    return total


# ----------------------------------------------------------------------------- the process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class StatsProcess:
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                service_argv("stats", self.port),
                env=self.env,
                stdout=out,
                stderr=out,
                cwd=PROJECT_ROOT,
            )

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"stats did not become healthy: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Scenario:
    settings: GwSettings
    registry: Registry
    events: list[AnyStatsEvent]
    outcomes: dict[str, Outcome]
    expected: dict[str, dict[str, Any]]
    stats: StatsProcess
    db: Any
    kills: int
    published: int
    dead_letters: int
    rival: StatsProcess


async def _publish(settings: GwSettings, messages: list[AnyStatsEvent]) -> None:
    broker = make_broker(settings, service="test-publisher")
    await broker.connect()
    try:
        for i in range(0, len(messages), 25):
            await asyncio.gather(*(publish_event(broker, m) for m in messages[i : i + 25]))
    finally:
        await broker.stop()


def _queue(settings: GwSettings, client: httpx.Client, name: str) -> dict[str, Any]:
    vhost = quote(urlsplit(settings.amqp_url).path[1:], safe="")
    response = client.get(f"/api/queues/{vhost}/{quote(name, safe='')}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def scenario(base_settings: GwSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    registry = load_registry(REGISTRY_PATH)
    rng = random.Random(SEED)
    events, outcomes = generate(registry, rng)
    deliveries = events + rng.sample(events, DUPLICATES)  # the same message ids again
    rng.shuffle(deliveries)  # and out of order
    vhost, db_name = f"gw-test-{uuid.uuid4().hex[:12]}", f"gwtest_{uuid.uuid4().hex[:12]}"
    amqp_url = create_vhost(base_settings, vhost)
    settings = base_settings.model_copy(update={"amqp_url": amqp_url, "mongo_db": db_name})
    management = management_client(base_settings)
    port = _free_port()
    env = {
        **os.environ,
        "GW_AMQP_URL": amqp_url,
        "GW_MONGO_DB": db_name,
        "GW_STATS_REFRESH_SECONDS": "5",
        "GW_REGISTRY_PATH": str(REGISTRY_PATH),
        "GW_LOG_LEVEL": "WARNING",
    }
    logs = tmp_path_factory.mktemp("stats")
    stats = StatsProcess(env, port, logs / "stats.log")
    # A second replica competes on stats.events the whole time (never killed): the two write the
    # same matters and buckets concurrently, as replicas do in production.
    rival = StatsProcess(env, _free_port(), logs / "stats-rival.log")
    mongo: MongoClient[dict[str, Any]] = MongoClient(base_settings.mongo_url, tz_aware=True)
    try:
        stats.start()
        stats.wait_ready()  # the topology (stats.events) exists from here on
        rival.start()
        rival.wait_ready()
        asyncio.run(_publish(settings, deliveries))
        kills = 0
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 4.0))
            stats.kill()
            kills += 1
            stats.start()
            stats.wait_ready()
        expected = independent_counts(events, registry)
        db = mongo[db_name]
        deadline = time.monotonic() + DRAIN_WITHIN
        while True:
            queue = _queue(settings, management, STATS_EVENTS.name)
            drained = queue.get("messages", 1) == 0 and queue.get("consumers", 0) == 2
            if drained and stored_counts(db) == expected:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"stats did not converge within {DRAIN_WITHIN}s; queue {queue.get('messages')}")
            time.sleep(1.0)
        dead = _queue(settings, management, STATS_EVENTS.dead_letter_queue).get("messages", 0)
        yield Scenario(settings, registry, events, outcomes, expected, stats, db, kills, len(deliveries), dead, rival)
    finally:
        rival.stop()
        stats.stop()
        mongo.drop_database(db_name)
        mongo.close()
        management.delete(f"/api/vhosts/{vhost}")
        management.close()


# ----------------------------------------------------------------------------- the tests


def test_counters_equal_the_event_log_after_duplicates_and_repeated_sigkills(scenario: Scenario) -> None:
    assert scenario.kills == KILLS
    assert len(scenario.events) >= 4 * MATTERS  # >= 2,000 at the default size
    stored = stored_counts(scenario.db)
    assert sum_buckets(stored, "totals")["visits"] == VISITS  # each visit once, despite duplicates and kills
    assert sum(f.get("visits", 0) for b in stored.values() for f in b["instructors"].values()) == VISITS
    assert scenario.published == len(scenario.events) + DUPLICATES
    assert scenario.dead_letters == 0
    assert stored_counts(scenario.db) == scenario.expected  # every figure of every bucket
    timeline_ids = [e["message_id"] for d in scenario.db["matters"].find({}, {"timeline": 1}) for e in d["timeline"]]
    about_matters = [e for e in scenario.events if not isinstance(e, SupervisionVisitRecorded)]
    assert sorted(timeline_ids) == sorted(str(e.message_id) for e in about_matters)  # each event applied once
    assert not [d["_id"] for d in scenario.db["counters"].find({"applied": {"$exists": True}})]  # no guard arrays
    logged = {d["_id"] for d in scenario.db["event_log"].find({}, {"_id": 1})}
    assert logged == {str(e.message_id) for e in scenario.events}
    for matter_id, outcome in scenario.outcomes.items():
        doc = scenario.db["matters"].find_one({"_id": matter_id})
        assert doc is not None
        ids = [t["message_id"] for t in doc["timeline"]]
        assert len(ids) == len(set(ids)) == doc["rev"]
        assert [t["sequence"] for t in doc["timeline"]] == sorted(t["sequence"] for t in doc["timeline"])
        assert doc["state"] == outcome.state, matter_id
        assert {b["department_id"]: b["accepted"] for b in doc["backlog"]} == outcome.open, matter_id


def test_api_figures_equal_an_independent_computation_for_500_matters(scenario: Scenario) -> None:
    expected, registry = scenario.expected, scenario.registry
    with httpx.Client(base_url=scenario.stats.url, timeout=10.0) as api:
        town = api.get("/v1/stats/towns/changjia").json()
        totals = sum_buckets(expected, "totals")
        assert {k: v for k, v in town["counts"].items() if v and k != "escalated"} == dict(+totals)
        assert town["kpis"]["reported"] == MATTERS
        assert town["kpis"]["closure_rate"] == round(totals["closed"] / totals["reported"], 6)
        assert town["kpis"]["acceptance_rate"] == round(totals["accepted"] / totals["dispatched"], 6)
        assert town["kpis"]["on_time_rate"] == round(totals["resolved_on_time"] / totals["resolved"], 6)
        assert town["kpis"]["mean_time_to_accept_seconds"] == round(totals["accept_ms"] / totals["accepted"] / 1000, 3)
        assert town["kpis"]["mean_time_to_resolve_seconds"] == round(
            totals["resolve_ms"] / totals["resolved"] / 1000, 3
        )
        assert town["kpis"]["satisfaction"] == round(totals["satisfaction_sum"] / totals["feedback"], 4)
        for category, body in town["by_category"].items():
            assert {k: v for k, v in body["counts"].items() if v and k != "escalated"} == dict(
                +sum_buckets(expected, "counts", category)
            )

        days = sorted(b.split("|")[1] for b in expected)
        window = (days[len(days) // 3], days[len(days) // 3 + 4])
        ranged = api.get("/v1/stats/towns/changjia", params={"from": window[0], "to": window[1]}).json()
        in_window = sum_buckets(expected, "totals", days=window)
        assert {k: v for k, v in ranged["counts"].items() if v and k != "escalated"} == dict(+in_window)

        for grid in registry.all_grids():
            body = api.get(f"/v1/stats/grids/{grid.grid_id}").json()
            want = sum_buckets(expected, "grids", grid.grid_id)
            assert {k: v for k, v in body["counts"].items() if v and k != "escalated"} == dict(+want), grid.grid_id

        backlog = {r["department_id"]: r for r in api.get("/v1/backlog").json()["departments"]}
        for department in registry.departments_of_town("changjia"):
            d = department.department_id
            body = api.get(f"/v1/stats/departments/{d}").json()
            want = sum_buckets(expected, "departments", d)
            assert {k: v for k, v in body["counts"].items() if v and k != "escalated"} == dict(+want), d
            open_here = [o.open[d] for o in scenario.outcomes.values() if d in o.open]
            assert (backlog[d]["open"], backlog[d]["unaccepted"]) == (len(open_here), open_here.count(False)), d
            assert body["backlog"]["open"] == len(open_here)

        for matter_id, outcome in list(scenario.outcomes.items())[:25]:
            view = api.get(f"/v1/matters/{matter_id}").json()
            assert view["state"] == outcome.state
            assert view["matter_id"] == matter_id
            assert "contact" not in view


def _snapshot(db: Any) -> dict[str, Any]:
    counters = {d["_id"]: d for d in db["counters"].find({})}
    matters = {d["_id"]: d for d in db["matters"].find({})}
    return {"counters": counters, "matters": matters}


def test_rebuild_produces_read_models_identical_to_the_incremental_ones(scenario: Scenario) -> None:
    scenario.stats.stop()  # rebuild runs with the stats consumers stopped (it refuses otherwise)
    scenario.rival.stop()
    before = _snapshot(scenario.db)
    assert len(before["matters"]) == MATTERS
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "stats", "rebuild"],
        env=scenario.stats.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rebuilt from {len(scenario.events)} events" in result.stdout + result.stderr
    after = _snapshot(scenario.db)
    assert after["counters"].keys() == before["counters"].keys()
    for bucket_id, doc in before["counters"].items():
        assert after["counters"][bucket_id] == doc, bucket_id
    assert after["matters"].keys() == before["matters"].keys()
    for matter_id, doc in before["matters"].items():
        assert after["matters"][matter_id] == doc, matter_id
    names = set(scenario.db.list_collection_names())
    assert not {n for n in names if n.endswith(("__rebuild", "__old"))}
    indexes = scenario.db["matters"].index_information()
    assert "open_departments_since" in indexes
