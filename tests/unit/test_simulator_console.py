"""The run console's reading of its sources: intake metrics, queue depths, the simulator summary."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from services.simulator.console import ConsoleState, Endpoints, accepted_reports, render, status_line
from services.simulator.queues import split_queues
from services.simulator.run import describe_exit
from shared.management import QueueDepth
from shared.settings import GwSettings

pytestmark = pytest.mark.unit

INTAKE_METRICS = """\
# HELP gridwhistle_intake_requests_total Reports and Open311 calls handled, by route template and outcome
# TYPE gridwhistle_intake_requests_total counter
gridwhistle_intake_requests_total{outcome="accepted",route="/v1/reports"} 120.0
gridwhistle_intake_requests_total{outcome="duplicate",route="/v1/reports"} 4.0
gridwhistle_intake_requests_total{outcome="accepted",route="amqp"} 30.0
gridwhistle_intake_requests_total{outcome="invalid",route="/v1/reports"} 2.0
# HELP gridwhistle_intake_requests_created Reports and Open311 calls handled, by route template and outcome
# TYPE gridwhistle_intake_requests_created gauge
gridwhistle_intake_requests_created{outcome="accepted",route="/v1/reports"} 1.7e9
"""


def test_accepted_reports_sums_every_route_and_nothing_else() -> None:
    assert accepted_reports(INTAKE_METRICS) == 150.0
    assert accepted_reports("") == 0.0


def test_dead_letter_queues_fold_into_the_queue_they_came_from() -> None:
    queues = [
        QueueDepth("stats.events", 900, 32, 1),
        QueueDepth("stats.events.dead", 0, 0, 0),
        QueueDepth("dept.changjia.environment", 3, 1, 1),
        QueueDepth("dept.changjia.environment.dead", 2, 0, 0),
        QueueDepth("grid.changjia", 0, 0, 1),
        QueueDepth("supervision.changjia", 1, 0, 1),
    ]
    services, work, dead = split_queues(queues)
    assert [q.name for q in services] == ["stats.events"]
    assert [q.name for q in work] == ["dept.changjia.environment", "grid.changjia", "supervision.changjia"]
    assert dead == {"stats.events": 0, "dept.changjia.environment": 2}


def _state(tmp_path: Path) -> ConsoleState:
    endpoints = Endpoints("http://i", "http://d", "http://s", "http://p", "http://r", console="http://c")
    state = ConsoleState(GwSettings(), endpoints, ["changjia"], tmp_path / "summary.json", started=time.monotonic())
    state.figures = Counter(reported=10, closed=4, returned=1, whistled=2, escalated_l1=3)
    state.accepted = 12
    state.queues = [QueueDepth("stats.events", 5, 1, 1), QueueDepth("dept.x.dead", 7, 0, 0)]
    return state


def test_status_line_carries_the_figures_and_the_dead_letters(tmp_path: Path) -> None:
    line = status_line(_state(tmp_path))
    assert "accepted 12" in line
    assert "counted 10 closed 4" in line
    assert "escalations 3" in line
    assert "service queues 6" in line
    assert "dead-lettered 7" in line


def test_the_console_shows_the_simulators_figures_once_it_has_finished(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.summary = {
        "planned": 10,
        "submit_seconds": 1.0,
        "drain_seconds": 2.0,
        "matches": False,
        "figures": [
            {"label": "reported", "key": "reported", "expected": 10, "observed": 10, "equal": True},
            {"label": "closed", "key": "closed", "expected": 10, "observed": 4, "equal": False},
        ],
    }
    out = Console(width=200, record=True)
    out.print(render(state))
    text = out.export_text()
    assert "closure rate 40.0%" in text
    assert "simulator finished: 10 matters" in text
    assert "figures differ" in text
    assert "≠" in text


def test_exit_codes_read_as_people_say_them() -> None:
    assert describe_exit(0) == "exit 0"
    assert describe_exit(1) == "exit 1"
    assert describe_exit(-15) == "ended by SIGTERM"
    assert describe_exit(None) == "not started"


async def test_the_figures_are_this_runs_the_stats_api_minus_what_earlier_runs_left(tmp_path: Path) -> None:
    """Earlier runs left 2,073 matters in the read models; this run's console counts only its own."""
    totals = iter([{"reported": 2073, "closed": 2000}, {"reported": 2083, "closed": 2004}])
    answers: dict[str, int] = {}

    def stats(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/backlog":
            return httpx.Response(200, json={"departments": []})
        answers.update(next(totals))
        return httpx.Response(200, json={"counts": dict(answers)})

    state = _state(tmp_path)
    state.figures = Counter()
    async with httpx.AsyncClient(transport=httpx.MockTransport(stats), base_url="http://s") as http:
        await state._read_stats(http)
        assert (state.figures["reported"], state.figures["closed"]) == (0, 0)
        await state._read_stats(http)
    assert (state.figures["reported"], state.figures["closed"]) == (10, 4)
    assert "counted 10 closed 4" in status_line(state)
