"""Fields of a matters document that the work lists read (grid staff, supervisors): written with
the document by ``matter_view.matter_write``, so incremental writes and a rebuild agree.

- ``open_tags``: ``open`` while the matter is not closed, ``returned`` while it waits in
  supervision for a reroute, ``overdue`` while an open round has missed a deadline (its
  escalation level is 1..3). Empty once closed, so a closed matter is in no index range the
  lists walk: a grid's or a town's list costs O(its open matters), never O(all matters).
- ``listed_at``: when the report was accepted (the earliest event seen until it arrives): the
  lists' order, a pure function of the set of events (arrival order cannot change it).

Derived from the snapshot dispatch sent (never re-deciding the lifecycle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain import MatterState

if TYPE_CHECKING:
    from datetime import datetime

    from shared.mongo import MongoDoc

OPEN, RETURNED, OVERDUE = "open", "returned", "overdue"
STILL_RUNNING = {MatterState.REPORTED.value, MatterState.DISPATCHED.value, MatterState.ACCEPTED.value, "returned"}


def open_tags(state: str, escalation_level: int) -> list[str]:
    if state == MatterState.CLOSED.value:
        return []
    tags = [OPEN]
    if state == MatterState.RETURNED.value:
        tags.append(RETURNED)
    if escalation_level >= 1 and state in STILL_RUNNING:
        tags.append(OVERDUE)
    return tags


def tag_fields(state: str, escalation_level: int) -> MongoDoc:
    return {"open_tags": open_tags(state, escalation_level)}


def listed_at(entries: list[dict[str, Any]]) -> datetime | None:
    """When the report was accepted; before it arrived, the earliest event seen."""
    reported = [e["occurred_at"] for e in entries if e["event_type"] == "matter_reported"]
    return min(reported or [e["occurred_at"] for e in entries], default=None)
