"""What the console does, as plain async functions taking its deps: read a department's inbox, a
matter, a town's figures; send a department's command. Access is checked here, on every call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.console.commands import ACTIONS
from services.console.i18n import countdown, term

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.console.credentials import Principal
    from services.console.deps import ConsoleDeps
    from services.console.i18n import Lang
    from shared.contracts import Command

log = logging.getLogger("gridwhistle.console")
Json = dict[str, Any]


class ForbiddenError(Exception):
    """Signed in, but not allowed: ``key`` names the explanation (``services.console.i18n``)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class InvalidActionError(ValueError):
    """A form the console will not send: ``field`` names what is missing or wrong (the page says
    ``invalid_<field>`` from ``services.console.i18n``)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class MatterRow:
    """One matter of a list, with the deadline that runs now and the time left to it."""

    matter: Json
    deadline_kind: str  # accept_by | resolve_by
    deadline: datetime | None
    countdown: str
    late: bool

    @property
    def matter_id(self) -> str:
        return str(self.matter["matter_id"])


def matter_row(matter: Json, kind: str, lang: Lang, now: datetime, *, running: bool = True) -> MatterRow:
    """The row with ``kind``'s deadline; one not ``running`` (resolved, waiting for feedback) shows
    its deadline but no countdown and is never late."""
    deadline = _moment(matter.get(kind))
    remaining = (deadline - now) if deadline and running else None
    return MatterRow(
        matter=matter,
        deadline_kind=kind,
        deadline=deadline,
        countdown=countdown(lang, remaining) if remaining is not None else "—",
        late=remaining is not None and remaining.total_seconds() < 0,
    )


def inbox_row(matter: Json, lang: Lang, now: datetime) -> MatterRow:
    """A department's row: the accept deadline until it accepted, then the resolve deadline."""
    return matter_row(matter, "resolve_by" if matter.get("accepted") else "accept_by", lang, now)


def require_role(deps: ConsoleDeps, who: Principal, role: str) -> None:
    """A page of another role (a grid opening the department inbox...) is a 403 page."""
    if who.role != role:
        deps.metrics.refusals.labels("page").inc()
        raise ForbiddenError("forbidden_page")


@dataclass(frozen=True)
class Listing:
    """One page of a list: its rows, how many there are in all, and the cursors of this page
    (``after``, None on the first) and of the next one (None on the last)."""

    rows: list[Any]
    total: int
    after: str | None = None
    next: str | None = None

    def context(self) -> dict[str, Any]:
        return {"rows": self.rows, "total": self.total, "after": self.after, "next": self.next}


async def inbox(deps: ConsoleDeps, who: Principal, lang: Lang, after: str | None = None) -> Listing:
    """The department's open matters (oldest first, a page) and how many it has open."""
    require_role(deps, who, "department")
    page = await deps.stats.open_matters(who.subject, limit=deps.page_size, after=after)
    now = deps.clock()
    return Listing([inbox_row(m, lang, now) for m in page["matters"]], int(page["open"]), after, page.get("next"))


async def matter_for(deps: ConsoleDeps, who: Principal, matter_id: str) -> Json:
    """The matter, if this department was ever given it (a grid: of its grid; a supervisor: of its
    town); a 403 otherwise (also for an unknown id, so nobody can probe which matters exist)."""
    matter = await deps.stats.matter(matter_id)
    if matter is None or not who.may_see(matter):
        deps.metrics.refusals.labels("matter").inc()
        raise ForbiddenError("forbidden_matter")
    return matter


def rejections_for(matter: Json, who: Principal) -> list[Json]:
    """The signed-in sender's own commands that dispatch rejected, with dispatch's reason."""
    return [
        e
        for e in matter.get("timeline") or []
        if e.get("event_type") == "matter_command_rejected" and e.get("by") == who.actor_id
    ]


async def act(deps: ConsoleDeps, who: Principal, matter_id: str, action: str, text: str) -> Command:
    """Accept, return (a reason is required) or resolve, for a matter open for this department."""
    require_role(deps, who, "department")
    if action not in ACTIONS:
        raise InvalidActionError("action")
    text = text.strip()
    if action == "return" and not text:
        raise InvalidActionError("reason")
    matter = await matter_for_command(deps, who, matter_id, who.may_act_on, "forbidden_act")
    return command_sent(deps, await deps.commands.send(who.subject, matter, action, text))


async def matter_for_command(
    deps: ConsoleDeps, who: Principal, matter_id: str, may: Callable[[Json], bool], refusal: str
) -> Json:
    """The matter, when ``may`` lets ``who`` send this command for it; else a 403 page saying ``refusal``."""
    matter = await matter_for(deps, who, matter_id)
    if not may(matter):
        deps.metrics.refusals.labels("act").inc()
        raise ForbiddenError(refusal)
    return matter


def command_sent(deps: ConsoleDeps, command: Command) -> Command:
    """Count and log (ids only, never a citizen's words) a command dispatch will receive."""
    deps.metrics.commands.labels(command.command_type, "sent").inc()
    log.info("command sent", extra=command.log_fields())
    return command


def towns_visible(deps: ConsoleDeps, who: Principal) -> list[str]:
    """A town department sees its own town; a county department every town of the county."""
    return list(deps.registry.town_ids) if who.town_id == "county" else [who.town_id]


@dataclass(frozen=True)
class TownOverview:
    town_id: str
    figures: Json
    backlog: Json
    daily: Json


async def town_overview(deps: ConsoleDeps, who: Principal, town_id: str | None) -> TownOverview:
    towns = towns_visible(deps, who)
    chosen = town_id or towns[0]
    if chosen not in towns:
        deps.metrics.refusals.labels("town").inc()
        raise ForbiddenError("forbidden_town")
    return TownOverview(
        chosen, await deps.stats.town(chosen), await deps.stats.backlog(chosen), await deps.stats.town_daily(chosen)
    )


def department_name(deps: ConsoleDeps, department_id: str | None, lang: Lang) -> str:
    if not department_id:
        return "—"
    if not deps.registry.has_department(department_id):
        return department_id
    department = deps.registry.department(department_id)
    return department.name_zh if lang == "zh" else department.name


def label(lang: Lang, value: str | None) -> str:
    return term(lang, value)
