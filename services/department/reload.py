"""A department's matters from the stats read model, as ``WorkItem``s the client can act on.

The read model survives any restart: a row of ``GET /v1/departments/{id}/open-matters`` (or a
``GET /v1/matters/{id}`` answer) is turned into the item a ``MatterDispatched`` would have given,
with the round dispatch is on, so ``DepartmentClient``'s commands name the right round.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.department.client import WorkItem


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def work_item_from_matter(matter: dict[str, Any], department_id: str, *, actor_id: str | None = None) -> WorkItem:
    """The department's item for a matter it has open. ``matter``: the stats API's JSON, with
    either ``role``/``accepted`` (an open-matters row) or ``backlog`` (a matter answer)."""
    mine: dict[str, Any] = next((b for b in matter.get("backlog") or [] if b.get("department_id") == department_id), {})
    role = matter.get("role") or mine.get("role") or "lead"
    accepted = matter.get("accepted", mine.get("accepted", False))
    return WorkItem(
        matter_id=UUID(str(matter["matter_id"])),
        town_id=matter["town_id"],
        grid_id=matter["grid_id"],
        category=str(matter.get("category")),
        severity=str(matter.get("severity")),
        round=int(matter["round"]),
        tier=str(matter.get("tier") or "department"),
        role="supporting" if role == "supporting" else "lead",
        actor_id=actor_id or department_id,
        priority=str(matter.get("priority") or ""),
        accept_by=_moment(matter["accept_by"]),
        resolve_by=_moment(matter["resolve_by"]),
        reason="reloaded from the read model",
        state="accepted" if accepted else "dispatched",
        escalation_level=int(matter.get("escalation_level") or 0),
        lead=matter.get("lead") or "",
        supporting=list(matter.get("supporting") or []),
        owner_id=department_id,
        sequence=int(matter.get("sequence") or 0),
    )
