"""The inbox's actions: what a person types, what is sent, and what is refused before sending."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest

from services.department.client import WorkItem
from services.department.inbox import Action, ActionError, carry_out, parse_action

if TYPE_CHECKING:
    from services.department.client import DepartmentClient

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def item(tier: str = "department", state: str = "dispatched") -> WorkItem:
    return WorkItem(
        matter_id=uuid.uuid4(),
        town_id="changjia",
        grid_id="changjia-g017",
        category="dispute",
        severity="hard",
        round=1,
        tier=tier,
        role="lead",
        actor_id="changjia.judicial_mediation",
        priority="normal",
        accept_by=NOW + timedelta(hours=2),
        resolve_by=NOW + timedelta(days=3),
        reason="",
        state=state,  # type: ignore[arg-type]
    )


@dataclass
class RecordingClient:
    """Stands in for DepartmentClient: the open items, and the commands asked for."""

    items: list[WorkItem]
    sent: list[tuple[str, uuid.UUID, str]] = field(default_factory=list)

    def open_items(self) -> list[WorkItem]:
        return self.items

    async def _record(self, verb: str, matter_id: uuid.UUID, text: str = "") -> Any:
        self.sent.append((verb, matter_id, text))
        return type("Sent", (), {"command_type": verb})()

    async def accept(self, matter_id: uuid.UUID) -> Any:
        return await self._record("accept", matter_id)

    async def return_(self, matter_id: uuid.UUID, reason: str) -> Any:
        return await self._record("return", matter_id, reason)

    async def resolve(self, matter_id: uuid.UUID, note: str = "") -> Any:
        return await self._record("resolve", matter_id, note)

    async def whistle(self, matter_id: uuid.UUID, reason: str) -> Any:
        return await self._record("whistle", matter_id, reason)


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("a 1", Action("accept", 1)),
        ("accept 3", Action("accept", 3)),
        ("r 2 not within our remit", Action("return", 2, "not within our remit")),
        ("d 1", Action("resolve", 1)),
        ("d 1 fence repaired", Action("resolve", 1, "fence repaired")),
        ("W 4 needs the town's departments", Action("whistle", 4, "needs the town's departments")),
        ("   ", None),
    ],
)
def test_an_action_line_names_a_verb_a_row_and_a_reason(line: str, action: Action | None) -> None:
    assert parse_action(line) == action


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("x 1", "unknown action"),
        ("a", "row number"),
        ("a zero", "row number"),
        ("a 0", "row number"),
        ("r 1", "a reason is required"),
        ("w 2   ", "a reason is required"),
    ],
)
def test_a_bad_action_line_is_refused_with_what_is_wrong(line: str, says: str) -> None:
    with pytest.raises(ActionError, match=says):
        parse_action(line)


async def test_an_action_sends_the_command_for_the_row_it_names() -> None:
    rows = [item(), item(state="accepted")]
    client = RecordingClient(rows)
    as_client = cast("DepartmentClient", client)
    await carry_out(Action("accept", 1), as_client)
    await carry_out(Action("return", 2, "not ours"), as_client)
    await carry_out(Action("resolve", 2, "done"), as_client)
    assert client.sent == [
        ("accept", rows[0].matter_id, ""),
        ("return", rows[1].matter_id, "not ours"),
        ("resolve", rows[1].matter_id, "done"),
    ]


async def test_actions_that_cannot_apply_are_refused_before_anything_is_sent() -> None:
    client = RecordingClient([item(state="accepted"), item(tier="department")])
    as_client = cast("DepartmentClient", client)
    with pytest.raises(ActionError, match="no row 3"):
        await carry_out(Action("accept", 3), as_client)
    with pytest.raises(ActionError, match="accepted already"):
        await carry_out(Action("accept", 1), as_client)
    with pytest.raises(ActionError, match="only a grid-tier matter"):
        await carry_out(Action("whistle", 2, "up"), as_client)
    assert client.sent == []


async def test_grid_staff_whistle_a_grid_tier_matter_up() -> None:
    row = item(tier="grid_leader")
    client = RecordingClient([row])
    await carry_out(Action("whistle", 1, "needs departments"), cast("DepartmentClient", client))
    assert client.sent == [("whistle", row.matter_id, "needs departments")]


def test_the_table_numbers_the_rows_and_shows_the_actions_verbatim() -> None:
    from rich.console import Console

    from services.department.inbox import HELP, inbox_table

    client = RecordingClient([item(), item(state="accepted")])
    client.queue = type("Queue", (), {"name": "dept.changjia.judicial_mediation"})()  # type: ignore[attr-defined]
    out = Console(width=250, record=True)
    out.print(inbox_table(cast("DepartmentClient", client), numbered=True))
    text = out.export_text()
    assert HELP in text  # "[note]" survives rich's markup
    assert "│ 1 " in text and "│ 2 " in text
