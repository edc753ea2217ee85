"""A department's matters from the stats read model, as ``WorkItem``s the client can act on.

The read model survives any restart: a row of ``GET /v1/departments/{id}/open-matters`` (or a
``GET /v1/matters/{id}`` answer) is turned into the item a ``MatterDispatched`` would have given,
with the round dispatch is on, so ``DepartmentClient``'s commands name the right round.
``reload_open_matters`` fills a client with every open matter of its department on start (and
on each refresh of ``gridwhistle dept inbox``): a restarted inbox shows its matters again, and an
escalation for one of them is followed instead of dropped as unknown.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from services.department.client import WorkItem

if TYPE_CHECKING:
    import httpx

    from services.department.client import DepartmentClient

PAGE = 200


class ReloadError(Exception):
    """The stats API did not answer with the department's open matters."""


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


async def reload_open_matters(client: DepartmentClient, http: httpx.AsyncClient) -> int:
    """Remember every open matter of the client's department from the stats API (all pages,
    O(its open matters)); returns how many. A newer item the client holds already is kept."""
    import httpx

    url = f"/v1/departments/{client.department_id}/open-matters"
    after: str | None = None
    count = 0
    while True:
        params: dict[str, Any] = {"limit": PAGE} | ({"after": after} if after else {})
        try:
            response = await http.get(url, params=params)
        except httpx.HTTPError as error:
            raise ReloadError(f"stats API: {type(error).__name__}") from None
        if response.status_code != 200:
            raise ReloadError(f"stats API: HTTP {response.status_code} for {url}")
        body = response.json()
        for row in body["matters"]:
            client.remember(work_item_from_matter(row, client.department_id))
            count += 1
        after = body.get("next")
        if not after:
            return count
