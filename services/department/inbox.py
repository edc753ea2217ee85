"""``gridwhistle dept inbox``: a department's open matters, and the actions a person takes on them.

The table numbers the open matters; an action names a row: ``a 2`` accept (签收), ``r 2 <reason>``
return (退单, a reason is required), ``d 2 [note]`` resolve (办结), ``w 2 <reason>`` whistle up
(吹哨, grid tier). Parsing is pure (tested alone); the command goes out through the
``DepartmentClient``, and dispatch answers a refused one with ``MatterCommandRejected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.markup import escape
from rich.table import Table

from shared.domain import Tier

if TYPE_CHECKING:
    from services.department.client import DepartmentClient, WorkItem
    from shared.contracts import Command

Verb = Literal["accept", "return", "resolve", "whistle"]
VERBS: dict[str, Verb] = {
    "a": "accept",
    "accept": "accept",
    "r": "return",
    "return": "return",
    "d": "resolve",
    "resolve": "resolve",
    "w": "whistle",
    "whistle": "whistle",
}
NEEDS_REASON: frozenset[Verb] = frozenset({"return", "whistle"})
HELP = "a N accept · r N <reason> return · d N [note] resolve · w N <reason> whistle · Enter refresh · q quit"


class ActionError(ValueError):
    """An action line that cannot be carried out (said to the person, nothing is sent)."""


@dataclass(frozen=True)
class Action:
    verb: Verb
    row: int  # 1-based, as the table shows it
    text: str = ""  # reason or note


def parse_action(line: str) -> Action | None:
    """``None`` for an empty line (refresh); raises :class:`ActionError` saying what is wrong."""
    words = line.strip().split(maxsplit=2)
    if not words:
        return None
    verb = VERBS.get(words[0].lower())
    if verb is None:
        raise ActionError(f"unknown action {words[0]!r}; {HELP}")
    if len(words) < 2 or not words[1].isdigit() or int(words[1]) < 1:
        raise ActionError(f"{verb}: name a row number from the table, e.g. `{words[0]} 1`")
    text = words[2].strip() if len(words) > 2 else ""
    if verb in NEEDS_REASON and not text:
        raise ActionError(f"{verb}: a reason is required, e.g. `{words[0]} {words[1]} not within our remit`")
    return Action(verb, int(words[1]), text)


async def carry_out(action: Action, client: DepartmentClient) -> tuple[WorkItem, Command]:
    """Send the command for ``action`` on the row it names."""
    items = client.open_items()
    if action.row > len(items):
        raise ActionError(f"no row {action.row}: the table has {len(items)} open matters")
    item = items[action.row - 1]
    if action.verb == "accept":
        if item.state != "dispatched":
            raise ActionError(f"row {action.row} is {item.state} already")
        return item, await client.accept(item.matter_id)
    if action.verb == "return":
        return item, await client.return_(item.matter_id, action.text)
    if action.verb == "whistle":
        if not Tier(item.tier).is_grid_tier:
            raise ActionError(f"row {action.row} is with departments already: only a grid-tier matter is whistled up")
        return item, await client.whistle(item.matter_id, action.text)
    return item, await client.resolve(item.matter_id, action.text)


def inbox_table(client: DepartmentClient, *, numbered: bool) -> Table:
    table = Table(title=f"{client.queue.name}: open matters", expand=True)
    columns = ("matter", "grid", "category", "round", "role", "state", "accept by", "resolve by", "late")
    for col in ("#", *columns) if numbered else columns:
        table.add_column(col)
    for row, item in enumerate(client.open_items(), start=1):
        cells = [
            str(item.matter_id)[:8],
            item.grid_id,
            item.category,
            str(item.round),
            item.role,
            item.state,
            item.accept_by.strftime("%m-%d %H:%M"),
            item.resolve_by.strftime("%m-%d %H:%M"),
            str(item.escalation_level or ""),
        ]
        table.add_row(*([str(row), *cells] if numbered else cells))
    table.caption = escape(HELP) if numbered else "watching (no actions: not a terminal, or --watch)"
    return table
