"""Grid staff and supervisors in the console, with fakes at its ports: a grid reports through
intake as itself and whistles up only its own grid-tier matters; a supervisor reroutes only
within its town; every other role is refused their pages."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.console import handlers, work
from services.console.credentials import (
    CredentialError,
    Principal,
    issue_grid_credential,
    issue_supervisor_credential,
    verify_credential,
)
from tests.fakes.console import NOW, SECRET, FakeCommands, FakeReports, FakeStats, console_deps

pytestmark = pytest.mark.unit

GRID, OTHER_GRID = "changjia-g017", "changjia-g018"
LEADER = "changjia-g017-leader"
INSTRUCTOR = "changjia-instructor-04"
JM, PETITIONS = "changjia.judicial_mediation", "changjia.petitions"


def _matter(grid_id: str = GRID, tier: str = "micro_grid", state: str = "dispatched", **extra: Any) -> dict[str, Any]:
    return {
        "matter_id": str(uuid.uuid4()),
        "town_id": "changjia",
        "grid_id": grid_id,
        "category": "dispute",
        "severity": "minor",
        "state": state,
        "round": 1,
        "tier": tier,
        "lead": f"{grid_id}-m1-member",
        "open_departments": [],
        "departments": [],
        "accept_by": (NOW + timedelta(hours=1)).isoformat(),
        "resolve_by": (NOW + timedelta(days=1)).isoformat(),
        "timeline": [],
        **extra,
    }


def _grid(grid_id: str = GRID, staff: str = LEADER) -> Principal:
    credential = issue_grid_credential(SECRET, grid_id=grid_id, town_id="changjia", staff_id=staff)
    return verify_credential(credential, (SECRET,))


def _supervisor(town_id: str = "changjia") -> Principal:
    return verify_credential(issue_supervisor_credential(SECRET, supervisor_id=INSTRUCTOR, town_id=town_id), (SECRET,))


def test_grid_and_supervisor_credentials_carry_who_acts() -> None:
    grid = _grid()
    assert (grid.role, grid.subject, grid.actor_id, grid.town_id) == ("grid", GRID, LEADER, "changjia")
    boss = _supervisor()
    assert (boss.role, boss.subject, boss.actor_id) == ("supervisor", INSTRUCTOR, INSTRUCTOR)
    import jwt

    forged = jwt.encode({"kind": "console", "role": "grid", "sub": GRID, "town_id": "changjia", "iat": 1}, "x" * 32)
    with pytest.raises(CredentialError):
        verify_credential(forged, (SECRET,))
    staffless = jwt.encode(
        {"kind": "console", "role": "grid", "sub": GRID, "town_id": "changjia", "iat": 1}, SECRET.get_secret_value()
    )
    with pytest.raises(CredentialError, match="staff"):
        verify_credential(staffless, (SECRET,))


async def test_grid_reports_through_intake_as_itself_and_a_repeated_form_is_the_same_report() -> None:
    reports = FakeReports()
    deps = console_deps(FakeStats(), FakeCommands(), reports)
    form = work.ReportForm("console-r1", "safety_hazard", "major", f"{GRID}-m1", "桥栏松动", "村口桥")
    assert work.check_report(deps, _grid(), form) == []
    first = await work.report(deps, _grid(), form)
    again = await work.report(deps, _grid(), form)
    assert first["matter_id"] == again["matter_id"] and again["duplicate"]
    town_id, grid_id, body = reports.posted[0]
    assert (town_id, grid_id, body["grid_id"], body["reporter_id"]) == ("changjia", GRID, GRID, LEADER)
    assert body["reporter_role"] == "grid_leader" and body["location"] == {"address": "村口桥"}
    bad = work.ReportForm("console-r2", "weather", "major", f"{OTHER_GRID}-m1", " ")
    assert work.check_report(deps, _grid(), bad) == ["category", "micro_grid", "summary"]


async def test_grid_whistles_only_its_own_matters_still_on_a_grid_tier() -> None:
    mine, theirs = _matter(), _matter(OTHER_GRID)
    with_departments = _matter(tier="department", lead=JM)
    stats = FakeStats({m["matter_id"]: m for m in (mine, theirs, with_departments)})
    commands = FakeCommands()
    deps = console_deps(stats, commands)
    command = await work.whistle(deps, _grid(), mine["matter_id"], "需要司法所调解")
    assert (command.command_type, command.actor_id, command.round) == ("whistle_matter", LEADER, 1)
    with pytest.raises(handlers.ForbiddenError, match="forbidden_matter"):
        await work.whistle(deps, _grid(), theirs["matter_id"], "x")
    with pytest.raises(handlers.ForbiddenError, match="forbidden_whistle"):
        await work.whistle(deps, _grid(), with_departments["matter_id"], "x")
    with pytest.raises(handlers.InvalidActionError):
        await work.whistle(deps, _grid(), mine["matter_id"], "  ")
    listing = await work.grid_matters(deps, _grid(), "zh")
    assert listing.total == 2 and {r.matter_id for r in listing.rows} == {
        mine["matter_id"],
        with_departments["matter_id"],
    }
    assert len(commands.sent) == 1


async def test_supervisor_sees_its_town_and_reroutes_to_its_towns_departments_only() -> None:
    returned = _matter(tier="supervision", state="returned", lead="changjia", returned=True)
    closed = _matter(tier="department", state="closed", lead=JM)
    stats = FakeStats({m["matter_id"]: m for m in (returned, closed)})
    commands = FakeCommands()
    deps = console_deps(stats, commands)
    listing, counts = await work.supervision_matters(deps, _supervisor(), "returned", "zh")
    assert (
        listing.total == 1
        and [r.matter_id for r in listing.rows] == [returned["matter_id"]]
        and counts == {"overdue": 0, "returned": 1}
    )
    command = await work.reroute(deps, _supervisor(), returned["matter_id"], JM, [PETITIONS, JM], "调解优先")
    assert (command.command_type, command.actor_id) == ("reroute_matter", INSTRUCTOR)
    assert command.model_dump()["supporting"] == [PETITIONS]  # the lead is not its own supporter
    with pytest.raises(handlers.InvalidActionError, match="department"):
        await work.reroute(deps, _supervisor(), returned["matter_id"], "county.emergency_x", [], "x")
    with pytest.raises(handlers.ForbiddenError, match="forbidden_reroute"):
        await work.reroute(deps, _supervisor(), closed["matter_id"], JM, [], "x")
    elsewhere = _matter() | {"town_id": "other"}
    stats.matters[elsewhere["matter_id"]] = elsewhere
    with pytest.raises(handlers.ForbiddenError, match="forbidden_matter"):
        await work.reroute(deps, _supervisor(), elsewhere["matter_id"], JM, [], "x")


async def test_each_role_is_refused_the_pages_of_the_others() -> None:
    deps = console_deps(FakeStats(), FakeCommands())
    with pytest.raises(handlers.ForbiddenError, match="forbidden_page"):
        await handlers.inbox(deps, _grid(), "zh")
    with pytest.raises(handlers.ForbiddenError, match="forbidden_page"):
        await work.grid_matters(deps, _supervisor(), "zh")
    with pytest.raises(handlers.ForbiddenError, match="forbidden_page"):
        await work.supervision_matters(deps, _grid(), None, "zh")


def test_daily_chart_has_two_bars_a_day_scaled_to_the_busiest_day() -> None:
    from services.console.charts import daily_chart

    days = [{"day": "2026-03-01", "reported": 8, "closed": 2}, {"day": "2026-03-02", "reported": 0, "closed": 4}]
    chart = daily_chart(days, "zh")
    assert len(chart.bars) == 4 and [label for _, _, label in chart.labels] == ["03-01", "03-02"]
    heights = [round(b.height) for b in chart.bars]
    assert heights[0] == max(heights) and heights[2] == 0 and chart.bars[0].title == "2026-03-01 上报: 8"
    assert [name for _, name in chart.legend] == ["上报", "办结"]


def test_cli_issues_grid_and_supervisor_credentials_and_refuses_what_the_registry_does_not_know(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from services.console.cli import console_app

    monkeypatch.setenv("GW_TOKEN_SECRET", SECRET.get_secret_value())
    runner = CliRunner()

    def issued(*args: str) -> Principal:
        result = runner.invoke(console_app, ["issue", *args])
        assert result.exit_code == 0, result.output
        return verify_credential(result.output.strip(), (SECRET,))

    assert issued("--grid", GRID).actor_id == LEADER
    assert issued("--grid", GRID, "--staff", f"{GRID}-member1").actor_id == f"{GRID}-member1"
    assert issued("--supervisor", INSTRUCTOR).subject == INSTRUCTOR
    assert issued("--supervisor", "changjia").subject == "changjia-instructor-01"
    for wrong in (
        ["--grid", "changjia-g999"],
        ["--grid", GRID, "--staff", f"{OTHER_GRID}-leader"],
        ["--supervisor", LEADER],
        ["--grid", GRID, "--department", JM],
        [],
    ):
        assert runner.invoke(console_app, ["issue", *wrong]).exit_code != 0, wrong


async def test_grid_records_the_follow_up_of_its_resolved_matters_only() -> None:
    resolved = _matter(tier="department", state="resolved", lead=JM)
    running = _matter(tier="department", state="accepted", lead=JM)
    theirs = _matter(OTHER_GRID, tier="department", state="resolved", lead=JM)
    commands = FakeCommands()
    deps = console_deps(FakeStats({m["matter_id"]: m for m in (resolved, running, theirs)}), commands)
    command = await work.feedback(deps, _grid(), resolved["matter_id"], 4)
    assert (command.command_type, command.actor_id, command.model_dump()["satisfaction"]) == (
        "record_feedback",
        LEADER,
        4,
    )
    with pytest.raises(handlers.ForbiddenError, match="forbidden_feedback"):
        await work.feedback(deps, _grid(), running["matter_id"], 4)
    with pytest.raises(handlers.ForbiddenError, match="forbidden_matter"):
        await work.feedback(deps, _grid(), theirs["matter_id"], 4)
    with pytest.raises(handlers.InvalidActionError):
        await work.feedback(deps, _grid(), resolved["matter_id"], 9)
    with pytest.raises(handlers.ForbiddenError, match="forbidden_page"):
        await work.feedback(deps, _supervisor(), resolved["matter_id"], 4)
    assert len(commands.sent) == 1
