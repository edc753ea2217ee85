"""The matters view: the snapshot of the highest sequence, the report's facts, and the timeline.

Dispatch decides; stats keeps what it decided. Every event dispatch publishes carries ``matter``,
the snapshot after its transition; a matters document holds the snapshot of the highest
``sequence`` seen (all events of one transition share their sequence and their snapshot, so
which of them arrives first does not matter), the report's facts from ``MatterReported``, and a
timeline entry per event (unique by ``message_id``). The result depends only on the *set* of
events, so duplicates, redelivery and arrival order cannot change it, and a rebuild from the
event log produces the very same document.

Backlog (the same everywhere: ``/v1/backlog``, ``/metrics``, incremental and rebuilt models):
the snapshot's ``open_departments``, each with its role, whether it accepted, and the escalation
level addressed to it this round.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any

from services.stats.work_fields import listed_at, tag_fields
from shared.contracts import (
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterDispatched,
    MatterEscalated,
    MatterEvent,
    MatterFollowedUp,
    MatterReopened,
    MatterReported,
    MatterRerouted,
    MatterResolved,
    MatterReturned,
    MatterWhistled,
    SquadAssigned,
)
from shared.domain import MatterState

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from shared.contracts import AnyEvent, MatterSnapshot
    from shared.mongo import MongoDoc

Entry = dict[str, Any]

SNAPSHOT_TIMES = ("dispatched_at", "accept_by", "resolve_by", "accepted_at", "resolved_at", "closed_at")


def to_millis(value: datetime) -> datetime:
    """BSON dates keep milliseconds: truncate first so stored and fresh documents compare alike."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def entry_key(entry: Entry) -> tuple[int, datetime, str]:
    return entry["sequence"], entry["occurred_at"], entry["message_id"]


def _told(event: AnyEvent) -> tuple[str | None, dict[str, Any], str | None]:
    """What the timeline tells of an event: who acted, its own figures (``data``: ids, reasons,
    notes and numbers, never personal data; pages render them in their language) and one English
    line (``detail``, for API readers)."""
    match event:
        case MatterReported():
            return event.reporter_id, {"channel": event.channel.value}, event.channel.value
        case MatterDispatched():
            data = {"round": event.round, "reason": event.reason, "tier": event.tier.value, "lead": event.lead}
            return None, data, f"round {event.round} ({event.reason}): {event.tier.value} {event.lead}"
        case MatterAccepted():
            return event.by, {"role": event.role}, event.role
        case MatterReturned():
            return event.by, {"outcome": event.outcome, "reason": event.reason}, f"{event.outcome}: {event.reason}"
        case MatterRerouted():
            return event.by, {"reason": event.reason, "lead": event.lead}, event.reason
        case MatterWhistled():
            return event.by, {"reason": event.reason}, event.reason
        case MatterResolved():
            return event.by, ({"note": event.note} if event.note else {}), event.note or None
        case MatterClosed() | MatterReopened():
            return event.by, {"satisfaction": event.satisfaction}, f"satisfaction {event.satisfaction}"
        case MatterEscalated():
            data = {"level": event.level, "deadline": event.deadline}
            return event.owner, data, f"level {event.level}, {event.deadline} deadline"
        case MatterFollowedUp():
            return event.by, {"visit_id": str(event.visit_id)}, f"followed up on visit {event.visit_id}"
        case SquadAssigned():
            data = {"squad_id": event.squad_id, "squad_kind": event.squad_kind, "volunteers": event.volunteers}
            return event.by, data, f"squad {event.squad_id} ({event.squad_kind}, {event.volunteers} volunteers)"
        case MatterCommandRejected():
            data = {"command_type": event.command_type, "reason": event.reason}
            return event.actor_id, data, f"{event.command_type}: {event.reason}"
    raise TypeError(f"not an event: {type(event).__name__}")  # pragma: no cover - AnyEvent is exhaustive


def timeline_entry(event: AnyEvent) -> Entry:
    """One ``TimelineEntry`` of the matters document."""
    by, data, detail = _told(event)
    return {
        "sequence": event.sequence,
        "event_type": event.event_type,
        "occurred_at": to_millis(event.occurred_at),
        "message_id": str(event.message_id),
        "by": by,
        "detail": detail,
        "data": data,
    }


def report_fields(event: MatterReported) -> MongoDoc:
    """Copied from ``MatterReported`` (never the citizen contact)."""
    return {
        "report_id": event.report_id,
        "micro_grid_id": event.micro_grid_id,
        "origin": event.origin,
        "channel": event.channel.value,
        "service_item": event.service_item,
        "summary": event.summary,
        "location": event.location.model_dump(mode="json") if event.location else None,
        "reported_at": to_millis(event.reported_at),
    }


def snapshot_fields(sequence: int, snapshot: MatterSnapshot) -> MongoDoc:
    """The snapshot as the document keeps it, with the backlog entries its queries read."""
    fields: MongoDoc = snapshot.model_dump(mode="json", exclude=set(SNAPSHOT_TIMES))
    for name in SNAPSHOT_TIMES:
        moment = getattr(snapshot, name)
        fields[name] = to_millis(moment) if moment is not None else None
    open_departments = set(snapshot.open_departments)
    backlog = [
        {
            "department_id": o.owner_id,
            "role": o.role,
            "accepted": o.state == "accepted",
            "lateness": o.escalation_level,
        }
        for o in sorted(snapshot.owners, key=attrgetter("owner_id"))
        if o.owner_id in open_departments
    ]
    fields.update(
        sequence=sequence,
        backlog=backlog,
        in_backlog=bool(backlog),
        open_since=fields["dispatched_at"] if backlog else None,
    )
    fields.update(tag_fields(snapshot.state.value, snapshot.escalation_level))
    return fields


def reported_fields(report: MatterReported | None) -> MongoDoc:
    """A matter nothing was decided on yet (only its report, or not even that, has arrived)."""
    return {
        "state": MatterState.REPORTED.value,
        "sequence": 0,
        "severity": report.severity.value if report is not None else None,
        "round": 0,
        "owners": [],
        "open_departments": [],
        "departments": [],
        "backlog": [],
        "in_backlog": False,
        "open_since": None,
        "escalation_level": 0,
        "supervised": False,
        "followed_up": False,
        "squads": [],
        **tag_fields(MatterState.REPORTED.value, 0),
    }


def matter_write(
    entries: list[Entry], events: Sequence[AnyEvent], kept_sequence: int | None
) -> tuple[MongoDoc, MongoDoc]:
    """``($set, $setOnInsert)`` for one matter after ``events`` (``entries``: its whole timeline,
    theirs included; ``kept_sequence``: the sequence of the snapshot stored, None if none)."""
    first = events[0]
    fields: MongoDoc = {
        "town_id": first.town_id,
        "grid_id": first.grid_id,
        "category": first.category.value,
        "timeline": sorted(entries, key=entry_key),
        "rev": len(entries),
        "listed_at": listed_at(entries),
    }
    report = next((e for e in events if isinstance(e, MatterReported)), None)
    if report is not None:
        fields.update(report_fields(report))
    decided = [e for e in events if isinstance(e, MatterEvent)]
    newest = max(decided, key=attrgetter("sequence"), default=None)
    if newest is not None and (kept_sequence is None or newest.sequence > kept_sequence):
        fields.update(snapshot_fields(newest.sequence, newest.matter))
    initial = {name: value for name, value in reported_fields(report).items() if name not in fields}
    return fields, initial


def matter_document(matter_id: str, entries: list[Entry], events: Sequence[AnyEvent]) -> MongoDoc:
    """The whole document from all of a matter's events (a rebuild)."""
    fields, initial = matter_write(entries, events, None)
    return {"_id": matter_id, **initial, **fields}
