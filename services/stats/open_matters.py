"""Read-only: one department's, grid's or town's open matters, a page at a time (the console reads these).

A matter is open for a department while it is in the snapshot's ``open_departments`` (dispatch
decides that; stats keeps it). The query walks the ``(open_departments, open_since)`` index in
``(open_since, _id)`` order with a keyset cursor, so a page costs O(page) and all pages
O(open matters of the department), never O(all matters). Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.stats.queries import lateness_label
from services.stats.work_fields import OPEN, OVERDUE, RETURNED
from shared.read_models import MATTERS

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from shared.mongo import MongoDoc

REJECTED = "matter_command_rejected"
PAGE_MAX = 200

OPEN_MATTER_FIELDS: MongoDoc = {
    name: 1
    for name in (
        "town_id",
        "grid_id",
        "micro_grid_id",
        "category",
        "severity",
        "summary",
        "state",
        "round",
        "tier",
        "lead",
        "supporting",
        "accept_by",
        "resolve_by",
        "open_since",
        "escalation_level",
        "backlog",
        "timeline",
        "sequence",
        "priority",
        "assignee",
        "open_departments",
        "open_tags",
        "listed_at",
    )
}


class CursorError(ValueError):
    """The ``after`` cursor is not one this API handed out."""


def encode_cursor(open_since: datetime, matter_id: str) -> str:
    millis = int(open_since.replace(tzinfo=open_since.tzinfo or UTC).timestamp() * 1000)
    return base64.urlsafe_b64encode(f"{millis}|{matter_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        millis, matter_id = raw.split("|", 1)
        return datetime.fromtimestamp(int(millis) / 1000, UTC), matter_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("malformed cursor") from None


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=value.tzinfo or UTC).isoformat() if value is not None else None


def _matter_fields(doc: MongoDoc) -> dict[str, Any]:
    """What every open-matter list shows of a matter: what it is, where, its round, owners and deadlines."""
    return {
        "matter_id": doc["_id"],
        "town_id": doc["town_id"],
        "grid_id": doc["grid_id"],
        "micro_grid_id": doc.get("micro_grid_id"),
        "category": doc.get("category"),
        "severity": doc.get("severity"),
        "summary": doc.get("summary"),
        "state": doc.get("state"),
        "round": doc.get("round", 0),
        "sequence": doc.get("sequence", 0),
        "tier": doc.get("tier"),
        "lead": doc.get("lead"),
        "supporting": doc.get("supporting") or [],
        "accept_by": _iso(doc.get("accept_by")),
        "resolve_by": _iso(doc.get("resolve_by")),
    }


def open_matter_row(doc: MongoDoc, department_id: str) -> dict[str, Any]:
    """What a department sees of one open matter: its own role and lateness, and the commands of
    its that dispatch rejected (with dispatch's reason). Never a citizen contact (stats has none)."""
    mine: dict[str, Any] = next((b for b in doc.get("backlog") or [] if b["department_id"] == department_id), {})
    rejections = [
        {"occurred_at": _iso(entry["occurred_at"]), "detail": entry.get("detail")}
        for entry in doc.get("timeline") or []
        if entry.get("event_type") == REJECTED and entry.get("by") == department_id
    ]
    lateness = int(mine.get("lateness", 0))
    return {
        **_matter_fields(doc),
        "role": mine.get("role"),
        "accepted": bool(mine.get("accepted", False)),
        "lateness": lateness_label(lateness),
        "escalation_level": lateness,
        "open_since": _iso(doc.get("open_since")),
        "rejections": rejections,
        "priority": doc.get("priority"),
    }


async def department_open_matters(
    db: AsyncDatabase[MongoDoc], department_id: str, *, limit: int, after: str | None = None
) -> dict[str, Any]:
    """One page of the department's open matters, oldest first, and the cursor of the next page."""
    query: MongoDoc = {"open_departments": department_id}
    if after is not None:
        since, matter_id = decode_cursor(after)
        query["$or"] = [{"open_since": {"$gt": since}}, {"open_since": since, "_id": {"$gt": matter_id}}]
    cursor = db[MATTERS].find(query, OPEN_MATTER_FIELDS).sort([("open_since", 1), ("_id", 1)]).limit(limit + 1)
    docs = [doc async for doc in cursor]
    page, more = docs[:limit], len(docs) > limit
    last = page[-1] if page else None
    return {
        "department_id": department_id,
        "as_of": datetime.now(UTC).isoformat(),
        "open": await db[MATTERS].count_documents({"open_departments": department_id}),
        "matters": [open_matter_row(doc, department_id) for doc in page],
        "next": encode_cursor(last["open_since"], last["_id"]) if more and last and last.get("open_since") else None,
    }


# ---------------------------------------------------------------- grids and towns (work_fields.py)


def work_row(doc: MongoDoc, senders: set[str]) -> dict[str, Any]:
    """What grid staff or a supervisor see of one open matter: owners, deadlines, whether it is
    returned (waiting for a reroute) or overdue, and the commands of ``senders`` that dispatch
    rejected, with who sent each and dispatch's reason. Never a citizen contact."""
    tags = doc.get("open_tags") or []
    level = int(doc.get("escalation_level") or 0)
    return {
        **_matter_fields(doc),
        "assignee": doc.get("assignee"),
        "open_departments": doc.get("open_departments") or [],
        "returned": RETURNED in tags,
        "overdue": OVERDUE in tags,
        "escalation_level": level,
        "lateness": lateness_label(level),
        "listed_at": _iso(doc.get("listed_at")),
        "rejections": [
            {"occurred_at": _iso(entry["occurred_at"]), "by": entry.get("by"), "detail": entry.get("detail")}
            for entry in doc.get("timeline") or []
            if entry.get("event_type") == REJECTED and entry.get("by") in senders
        ],
    }


async def listed_open_matters(
    db: AsyncDatabase[MongoDoc],
    scope: tuple[str, str],
    *,
    tag: str = OPEN,
    senders: set[str],
    limit: int,
    after: str | None = None,
) -> dict[str, Any]:
    """One page of the open matters of ``scope`` (``("grid_id", id)`` or ``("town_id", id)``) that
    carry ``tag`` (``open``, ``returned``, ``overdue``), oldest first, and the next page's cursor.
    Walks the ``(<scope>, open_tags, listed_at, _id)`` index: O(page), all pages O(open matters)."""
    field, value = scope
    match: MongoDoc = {field: value, "open_tags": tag}
    query = dict(match)
    if after is not None:
        since, matter_id = decode_cursor(after)
        query["$or"] = [{"listed_at": {"$gt": since}}, {"listed_at": since, "_id": {"$gt": matter_id}}]
    cursor = db[MATTERS].find(query, OPEN_MATTER_FIELDS).sort([("listed_at", 1), ("_id", 1)]).limit(limit + 1)
    docs = [doc async for doc in cursor]
    page, more = docs[:limit], len(docs) > limit
    last = page[-1] if page else None
    return {
        field: value,
        "filter": tag,
        "as_of": datetime.now(UTC).isoformat(),
        "open": await db[MATTERS].count_documents(match),
        "matters": [work_row(doc, senders) for doc in page],
        "next": encode_cursor(last["listed_at"], last["_id"]) if more and last and last.get("listed_at") else None,
    }
