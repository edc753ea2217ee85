"""The matters view as a pure function of the set of events seen for a matter.

Events for one matter arrive out of order and duplicated, so the view is never patched
event by event: every event becomes one timeline entry (unique by ``message_id``), and every
derived field (state, owners, deadlines, backlog) is recomputed by folding the whole timeline
in ``(sequence, occurred_at, message_id)`` order. The result depends only on the *set* of
entries, so duplicates, redelivery and arrival order cannot change it, and a rebuild from the
event log produces the very same document.

Backlog rule (the same everywhere: ``/v1/backlog``, ``/metrics``, incremental and rebuilt
models): a department has a matter open when it is lead or supporting of the matter's current
department-tier dispatch round (or the lead it was reopened to), and has not resolved it in that
round, has not left it (``released``), the lead has not returned it, and the matter is not
closed. "Unaccepted" = open and not yet accepted by that department in that round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.contracts import (
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterDispatched,
    MatterEscalated,
    MatterReopened,
    MatterReported,
    MatterRerouted,
    MatterResolved,
    MatterReturned,
    MatterWhistled,
)
from shared.domain import MatterState, Tier

if TYPE_CHECKING:
    from datetime import datetime

    from shared.contracts import AnyEvent

Entry = dict[str, Any]

REPORT_FIELDS = (
    "report_id",
    "micro_grid_id",
    "origin",
    "channel",
    "summary",
    "location",
    "reported_at",
)
"""Copied from ``MatterReported`` into the matters document (never the citizen contact);
``severity`` is folded instead (a dispatch round may re-rate it)."""


def to_millis(value: datetime) -> datetime:
    """BSON dates keep milliseconds: truncate first so stored and fresh entries sort alike."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def entry_key(entry: Entry) -> tuple[int, datetime, str]:
    return entry["sequence"], entry["occurred_at"], entry["message_id"]


def _entry_detail(event: AnyEvent) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(by, detail, data)``: ``data`` holds what the fold needs, ids and figures only."""
    match event:
        case MatterReported():
            return event.reporter_id, event.channel.value, {"severity": event.severity.value}
        case MatterDispatched():
            data = {
                "round": event.round,
                "tier": event.tier.value,
                "lead": event.lead,
                "supporting": list(event.supporting),
                "assignee": event.assignee,
                "priority": event.priority.value,
                "severity": event.severity.value,
                "accept_by": to_millis(event.accept_by),
                "resolve_by": to_millis(event.resolve_by),
            }
            return None, f"round {event.round} ({event.reason}): {event.tier.value} {event.lead}", data
        case MatterAccepted():
            return event.by, event.role, {"round": event.round, "role": event.role}
        case MatterReturned():
            return event.by, f"{event.outcome}: {event.reason}", {"round": event.round, "outcome": event.outcome}
        case MatterRerouted():
            return event.by, event.reason, {"round": event.round, "lead": event.lead, "supporting": event.supporting}
        case MatterWhistled():
            return event.by, event.reason, {"round": event.round}
        case MatterResolved():
            data = {"round": event.round, "role": event.role, "supervised": event.supervised}
            return event.by, event.note or None, data
        case MatterClosed():
            return event.by, f"satisfaction {event.satisfaction}", {"satisfaction": event.satisfaction}
        case MatterReopened():
            data = {"round": event.round, "lead": event.lead, "satisfaction": event.satisfaction}
            return event.by, f"satisfaction {event.satisfaction}", data
        case MatterEscalated():
            data = {"round": event.round, "level": event.level, "deadline": event.deadline, "owner": event.owner}
            return event.owner, f"level {event.level}, {event.deadline} deadline", data
        case MatterCommandRejected():
            return event.actor_id, f"{event.command_type}: {event.reason}", {"command_type": event.command_type}
    raise TypeError(f"not an event: {type(event).__name__}")  # pragma: no cover - AnyEvent is exhaustive


def timeline_entry(event: AnyEvent) -> Entry:
    """One ``TimelineEntry`` (plus its fold ``data``) for an event."""
    by, detail, data = _entry_detail(event)
    return {
        "sequence": event.sequence,
        "event_type": event.event_type,
        "occurred_at": to_millis(event.occurred_at),
        "message_id": str(event.message_id),
        "by": by,
        "detail": detail,
        "data": data,
    }


def report_fields(event: MatterReported) -> dict[str, Any]:
    return {
        "report_id": event.report_id,
        "micro_grid_id": event.micro_grid_id,
        "origin": event.origin,
        "channel": event.channel.value,
        "summary": event.summary,
        "location": event.location.model_dump(mode="json") if event.location else None,
        "reported_at": to_millis(event.reported_at),
    }


class _Fold:
    """Mutable state while folding one matter's timeline (used by ``project`` only)."""

    def __init__(self) -> None:
        self.view: dict[str, Any] = {
            "state": MatterState.REPORTED.value,
            "sequence": 0,
            "severity": None,
            "round": 0,
            "tier": None,
            "lead": None,
            "supporting": [],
            "assignee": None,
            "priority": None,
            "accept_by": None,
            "resolve_by": None,
            "dispatched_at": None,
            "accepted_at": None,
            "resolved_at": None,
            "closed_at": None,
            "escalation_level": 0,
            "satisfaction": None,
            "supervised": False,
        }
        self.roles: dict[str, str] = {}  # department -> lead|supporting, current round
        self.accepted: set[str] = set()
        self.open: set[str] = set()
        self.escalations: dict[str, int] = {}  # owner -> highest level, current round
        self.open_since: datetime | None = None
        self.departments: set[str] = set()  # every department ever given the matter

    def _new_round(self, at: datetime, roles: dict[str, str]) -> None:
        self.roles = roles
        self.accepted = set()
        self.open = set(roles)
        self.escalations = {}
        self.open_since = at
        self.departments |= set(roles)
        self.view["escalation_level"] = 0

    def apply(self, entry: Entry) -> None:
        view, data, kind = self.view, entry["data"], entry["event_type"]
        at: datetime = entry["occurred_at"]
        view["sequence"] = max(view["sequence"], entry["sequence"])
        current = data.get("round", view["round"]) == view["round"]
        if kind == "matter_reported":
            view["severity"] = view["severity"] or data["severity"]
        elif kind == "matter_dispatched":
            for name in ("round", "tier", "lead", "supporting", "assignee", "priority", "accept_by", "resolve_by"):
                view[name] = data[name]
            view["severity"] = data["severity"]
            view.update(state=MatterState.DISPATCHED.value, dispatched_at=at, accepted_at=None, resolved_at=None)
            view["closed_at"] = None
            roles: dict[str, str] = {}
            if data["tier"] == Tier.DEPARTMENT.value:
                roles = {name: "supporting" for name in data["supporting"]}
                roles[data["lead"]] = "lead"
            self._new_round(at, roles)
        elif kind == "matter_accepted" and current:
            if entry["by"] in self.roles:
                self.accepted.add(entry["by"])
            if data["role"] == "lead":
                view["state"] = MatterState.ACCEPTED.value
                view["accepted_at"] = view["accepted_at"] or at
        elif kind == "matter_returned" and current:
            if data["outcome"] == "released":
                self.open.discard(entry["by"])
            else:  # the round is over: rerouted or sent to supervision; a new dispatch follows
                view["state"] = MatterState.RETURNED.value
                self.open = set()
        elif kind == "matter_resolved" and current:
            self.open.discard(entry["by"])
            if data["role"] == "lead":
                view.update(state=MatterState.RESOLVED.value, resolved_at=at)
                view["supervised"] = view["supervised"] or data["supervised"]
        elif kind == "matter_closed":
            view.update(state=MatterState.CLOSED.value, closed_at=at, satisfaction=data["satisfaction"])
            self.open = set()
        elif kind == "matter_reopened":
            view.update(state=MatterState.ACCEPTED.value, resolved_at=None, closed_at=None, lead=data["lead"])
            view.update(satisfaction=data["satisfaction"], supporting=[])
            lead_is_department = view["tier"] == Tier.DEPARTMENT.value
            self._new_round(at, {data["lead"]: "lead"} if lead_is_department else {})
            self.accepted = set(self.roles)
        elif kind == "matter_escalated" and current:
            owner = data["owner"]
            self.escalations[owner] = max(self.escalations.get(owner, 0), data["level"])
            view["escalation_level"] = max(view["escalation_level"], data["level"])
        # rerouted and whistled change nothing by themselves: the MatterDispatched that
        # follows them starts the new round; command rejections change nothing at all.

    def result(self, entries: list[Entry]) -> dict[str, Any]:
        backlog = [
            {
                "department_id": department,
                "role": self.roles[department],
                "accepted": department in self.accepted,
                "lateness": self.escalations.get(department, 0),
            }
            for department in sorted(self.open)
        ]
        return {
            **self.view,
            "open_departments": sorted(self.open),
            "backlog": backlog,
            "in_backlog": bool(backlog),
            "open_since": self.open_since if backlog else None,
            "departments": sorted(self.departments),
            "escalations": [{"owner": o, "level": lvl} for o, lvl in sorted(self.escalations.items())],
            "rev": len(entries),
        }


def project(entries: list[Entry]) -> dict[str, Any]:
    """Every derived field of a matters document from its timeline (any order, no duplicates)."""
    fold = _Fold()
    ordered = sorted(entries, key=entry_key)
    for entry in ordered:
        fold.apply(entry)
    return fold.result(ordered)


def matter_fields(entries: list[Entry], event: AnyEvent, report: MatterReported | None = None) -> dict[str, Any]:
    """The fields a write of ``matters`` sets: ids from ``event``, the fold of ``entries`` (which
    include ``event``), and the report's fields when ``report`` is given."""
    ordered = sorted(entries, key=entry_key)
    fields = {
        "town_id": event.town_id,
        "grid_id": event.grid_id,
        "category": event.category.value,
        **project(ordered),
        "timeline": ordered,
    }
    if report is not None:
        fields.update(report_fields(report))
    return fields
