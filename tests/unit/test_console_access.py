"""The console's access rules and credentials, with fakes at its ports (no broker, no stats)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.console import handlers
from services.console.credentials import CredentialError, issue_credential, verify_credential
from services.intake.tokens import issue_token
from tests.fakes.console import NOW, SECRET, FakeCommands, FakeStats, console_deps

pytestmark = pytest.mark.unit

CIVIL, PETITIONS, SAFETY = "changjia.civil_affairs", "changjia.petitions", "changjia.emergency_safety"


def _matter(open_departments: list[str], departments: list[str] | None = None) -> dict[str, Any]:
    return {
        "matter_id": str(uuid.uuid4()),
        "town_id": "changjia",
        "grid_id": "changjia-g001",
        "category": "service_proxy",
        "severity": "major",
        "round": 2,
        "tier": "department",
        "lead": CIVIL,
        "open_departments": open_departments,
        "departments": departments or open_departments,
        "backlog": [{"department_id": d, "role": "lead", "accepted": False, "lateness": 0} for d in open_departments],
        "accept_by": (NOW + timedelta(hours=1)).isoformat(),
        "resolve_by": (NOW + timedelta(days=1)).isoformat(),
        "timeline": [],
    }


def _who(department_id: str) -> Any:
    return verify_credential(issue_credential(SECRET, department_id=department_id, town_id="changjia"), (SECRET,))


def test_credential_round_trips_and_rotated_secret_still_verifies() -> None:
    old = SecretStr("old-secret-0123456789abcdef0123456")
    credential = issue_credential(old, department_id=CIVIL, town_id="changjia")
    who = verify_credential(credential, (SECRET, old))
    assert (who.role, who.subject, who.town_id) == ("department", CIVIL, "changjia")
    with pytest.raises(CredentialError):
        verify_credential(credential, (SECRET,))


def test_a_grid_token_is_not_a_console_credential() -> None:
    grid_token = issue_token(SECRET, town_id="changjia", grid_id="changjia-g001")
    with pytest.raises(CredentialError, match="not a console credential"):
        verify_credential(grid_token, (SECRET,))


def test_expired_credential_is_refused() -> None:
    credential = issue_credential(
        SECRET, department_id=CIVIL, town_id="changjia", valid_for=timedelta(hours=1), now=NOW - timedelta(days=1)
    )
    with pytest.raises(CredentialError):
        verify_credential(credential, (SECRET,))


async def test_department_is_refused_a_matter_it_was_never_given() -> None:
    matter = _matter([CIVIL])
    deps = console_deps(FakeStats({matter["matter_id"]: matter}), FakeCommands())
    assert (await handlers.matter_for(deps, _who(CIVIL), matter["matter_id"]))["lead"] == CIVIL
    with pytest.raises(handlers.ForbiddenError, match="forbidden_matter"):
        await handlers.matter_for(deps, _who(PETITIONS), matter["matter_id"])
    with pytest.raises(handlers.ForbiddenError, match="forbidden_matter"):  # unknown ids look the same
        await handlers.matter_for(deps, _who(PETITIONS), str(uuid.uuid4()))


async def test_department_that_left_a_matter_sees_it_but_cannot_act_on_it() -> None:
    matter = _matter([CIVIL], departments=[CIVIL, SAFETY])
    commands = FakeCommands()
    deps = console_deps(FakeStats({matter["matter_id"]: matter}), commands)
    with pytest.raises(handlers.ForbiddenError, match="forbidden_act"):
        await handlers.act(deps, _who(SAFETY), matter["matter_id"], "accept", "")
    assert commands.sent == []


async def test_accept_names_the_round_of_the_read_model_and_return_needs_a_reason() -> None:
    matter = _matter([CIVIL])
    commands = FakeCommands()
    deps = console_deps(FakeStats({matter["matter_id"]: matter}), commands)
    command = await handlers.act(deps, _who(CIVIL), matter["matter_id"], "accept", "")
    assert (command.command_type, command.round, command.actor_id) == ("accept_matter", 2, CIVIL)
    with pytest.raises(handlers.InvalidActionError):
        await handlers.act(deps, _who(CIVIL), matter["matter_id"], "return", "   ")
    with pytest.raises(handlers.InvalidActionError):
        await handlers.act(deps, _who(CIVIL), matter["matter_id"], "close", "")
    assert len(commands.sent) == 1


async def test_town_department_sees_only_its_own_town() -> None:
    deps = console_deps(FakeStats(), FakeCommands())
    overview = await handlers.town_overview(deps, _who(CIVIL), None)
    assert overview.town_id == "changjia"
    with pytest.raises(handlers.ForbiddenError, match="forbidden_town"):
        await handlers.town_overview(deps, _who(CIVIL), "elsewhere")


def test_inbox_row_counts_down_to_the_accept_deadline_in_chinese() -> None:
    row = handlers.inbox_row(_matter([CIVIL]) | {"accepted": False}, "zh", NOW)
    assert (row.deadline_kind, row.countdown, row.late) == ("accept_by", "剩余 1小时0分", False)
    late = handlers.inbox_row(_matter([CIVIL]) | {"accepted": False}, "en", NOW + timedelta(hours=2))
    assert (late.countdown, late.late) == ("late by 1h 0m", True)
