"""What grid staff and supervisors do in the console, as plain async functions taking its deps:
a grid reports a matter (through intake, as the grid), sees its matters and whistles one up
(吹哨); a supervisor sees the town's overdue and returned matters and reroutes one (督办改派).
Access is checked here, on every call; a refusal is ``ForbiddenError`` (a 403 page)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from services.console.handlers import (
    InvalidActionError,
    Listing,
    MatterRow,
    command_sent,
    matter_for_command,
    matter_row,
    require_role,
)
from shared.domain import Category, Severity

if TYPE_CHECKING:
    from services.console.credentials import Principal
    from services.console.deps import ConsoleDeps
    from services.console.i18n import Lang
    from shared.contracts import Command

log = logging.getLogger("gridwhistle.console")
Json = dict[str, Any]
Filter = Literal["overdue", "returned"]
FILTERS: tuple[Filter, ...] = ("overdue", "returned")


def work_row(matter: Json, lang: Lang, now: datetime) -> MatterRow:
    """A grid's or supervisor's row: the deadline of the matter's state (a resolved one waits for feedback)."""
    state = matter.get("state")
    kind = "resolve_by" if state in ("accepted", "resolved") else "accept_by"
    return matter_row(matter, kind, lang, now, running=state != "resolved")


# ---------------------------------------------------------------- grid staff


@dataclass(frozen=True)
class ReportForm:
    """What grid staff fill in; ``report_id`` is minted with the form, so a repeated post of the
    same form is answered by intake as the same matter (its idempotency key)."""

    report_id: str
    category: str
    severity: str
    micro_grid_id: str
    summary: str
    address: str = ""
    errors: list[str] = field(default_factory=list)

    @classmethod
    def blank(cls) -> ReportForm:
        return cls(report_id=f"console-{uuid.uuid4()}", category="", severity="", micro_grid_id="", summary="")


async def grid_matters(deps: ConsoleDeps, who: Principal, lang: Lang, after: str | None = None) -> Listing:
    """The grid's matters not closed yet (oldest first, a page) and how many."""
    require_role(deps, who, "grid")
    page = await deps.stats.grid_open_matters(who.subject, limit=deps.page_size, after=after)
    now = deps.clock()
    return Listing([work_row(m, lang, now) for m in page["matters"]], int(page["open"]), after, page.get("next"))


def check_report(deps: ConsoleDeps, who: Principal, form: ReportForm) -> list[str]:
    """The fields intake would refuse, named before anything is sent (i18n keys)."""
    errors = []
    if form.category not in {c.value for c in Category}:
        errors.append("category")
    if form.severity not in {s.value for s in Severity}:
        errors.append("severity")
    if form.micro_grid_id and form.micro_grid_id not in {
        m.micro_grid_id for m in deps.registry.grid(who.subject).micro_grids
    }:
        errors.append("micro_grid")
    if not form.summary.strip():
        errors.append("summary")
    return errors


async def report(deps: ConsoleDeps, who: Principal, form: ReportForm) -> Json:
    """上报: the grid's report, to intake's HTTP API as the grid (202 only once confirmed)."""
    require_role(deps, who, "grid")
    body: Json = {
        "report_id": form.report_id,
        "town_id": who.town_id,
        "grid_id": who.subject,
        "category": form.category,
        "severity": form.severity,
        "origin": "grid_inspection",
        "summary": form.summary.strip(),
        "reporter_id": who.actor_id,
    }
    if deps.registry.has_staff(who.actor_id):  # a credential may outlive a registry entry
        body["reporter_role"] = deps.registry.staff(who.actor_id).role.value
    if form.micro_grid_id:
        body["micro_grid_id"] = form.micro_grid_id
    if form.address.strip():
        body["location"] = {"address": form.address.strip()}
    answer = await deps.reports.report(who.town_id, who.subject, body)
    deps.metrics.commands.labels("report", "duplicate" if answer.get("duplicate") else "sent").inc()
    log.info("report sent", extra={"matter_id": answer.get("matter_id"), "grid_id": who.subject})
    return answer


async def whistle(deps: ConsoleDeps, who: Principal, matter_id: str, reason: str) -> Command:
    """吹哨: a grid-tier matter of the grid goes up to the departments, with a reason."""
    require_role(deps, who, "grid")
    reason = reason.strip()
    if not reason:
        raise InvalidActionError("reason")
    matter = await matter_for_command(deps, who, matter_id, who.may_act_on, "forbidden_whistle")
    return command_sent(deps, await deps.commands.whistle(who.actor_id, matter, reason))


async def feedback(deps: ConsoleDeps, who: Principal, matter_id: str, satisfaction: int) -> Command:
    """回访: the reporter's satisfaction (1..5) with a resolved matter of the grid; dispatch closes
    it (3 or more) or reopens it to its lead."""
    require_role(deps, who, "grid")
    if not 1 <= satisfaction <= 5:
        raise InvalidActionError("satisfaction")
    matter = await matter_for_command(deps, who, matter_id, who.may_follow_up, "forbidden_feedback")
    return command_sent(deps, await deps.commands.feedback(who.actor_id, matter, satisfaction))


# ---------------------------------------------------------------- supervisors


async def supervision_matters(
    deps: ConsoleDeps, who: Principal, only: str | None, lang: Lang, after: str | None = None
) -> tuple[Listing, dict[str, int]]:
    """The town's open matters (all, or only overdue or returned ones; a page), and how many of each."""
    require_role(deps, who, "supervisor")
    if only is not None and only not in FILTERS:
        raise InvalidActionError("filter")
    page = await deps.stats.town_open_matters(who.town_id, only=only, limit=deps.page_size, after=after)
    counts: dict[str, int] = {}
    for name in FILTERS:  # the tabs' figures: a one-row page each, O(1) beyond its count
        other = page if name == only else await deps.stats.town_open_matters(who.town_id, only=name, limit=1)
        counts[name] = int(other["open"])
    now = deps.clock()
    rows = [work_row(m, lang, now) for m in page["matters"]]
    return Listing(rows, int(page["open"]), after, page.get("next")), counts


async def reroute(
    deps: ConsoleDeps, who: Principal, matter_id: str, lead: str, supporting: list[str], reason: str
) -> Command:
    """督办改派: the supervisor gives a running matter of its town to departments of that town."""
    require_role(deps, who, "supervisor")
    matter = await matter_for_command(deps, who, matter_id, who.may_act_on, "forbidden_reroute")
    allowed = {d.department_id for d in deps.registry.departments_of_town(matter["town_id"])}
    supporting = [s for s in dict.fromkeys(supporting) if s and s != lead]
    if lead not in allowed or any(s not in allowed for s in supporting):
        raise InvalidActionError("department")
    reason = reason.strip()
    if not reason:
        raise InvalidActionError("reason")
    return command_sent(deps, await deps.commands.reroute(who.actor_id, matter, lead, supporting, reason))
