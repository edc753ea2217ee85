"""``GET /v1/departments/{id}/open-matters`` against the real broker and store: what a department's
inbox reads (paged, oldest first, its role and lateness, its rejected commands)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.contracts import AnyEvent, MatterAccepted, MatterCommandRejected, MatterResolved
from shared.settings import GwSettings
from tests.connected.stats_harness import Matter, eventually, publish_events, running_stats

pytestmark = pytest.mark.connected

CIVIL = "changjia.civil_affairs"
PETITIONS = "changjia.petitions"


async def test_department_pages_through_its_open_matters_oldest_first_without_resolved_ones(
    settings: GwSettings,
) -> None:
    matters = [Matter() for _ in range(5)]
    events: list[AnyEvent] = []
    for i, m in enumerate(matters):
        m.t -= timedelta(minutes=10 * (len(matters) - i))  # matters[0] opened first
        events += [m.reported(), m.dispatched(CIVIL, [PETITIONS] if i == 0 else None)]
    resolved = Matter()
    events += [resolved.reported(), resolved.dispatched(CIVIL)]
    events.append(resolved.next(MatterAccepted, round=1, by=CIVIL, role="lead"))
    events.append(resolved.next(MatterResolved, round=1, by=CIVIL, role="lead"))
    rejected = matters[2]
    events.append(
        rejected.next(
            MatterCommandRejected,
            command_id=uuid.uuid4(),
            command_type="resolve_matter",
            actor_id=CIVIL,
            reason="not accepted yet",
        )
    )

    async with running_stats(settings) as (_app, client):
        await publish_events(settings, events)
        url = f"/v1/departments/{CIVIL}/open-matters"

        async def all_pages() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            after: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 2} | ({"after": after} if after else {})
                body = (await client.get(url, params=params)).json()
                assert len(body["matters"]) <= 2
                rows += body["matters"]
                after = body["next"]
                if after is None:
                    return rows

        async def settled() -> tuple[bool, Any]:
            rows = await all_pages()
            return len(rows) == 5 and any(r["rejections"] for r in rows), rows

        rows = await eventually(settled, "five open matters of civil affairs, one with a rejection")
        assert [r["matter_id"] for r in rows] == [str(m.id) for m in matters]  # oldest open first
        assert str(resolved.id) not in {r["matter_id"] for r in rows}
        assert {r["role"] for r in rows} == {"lead"}
        assert all(r["lateness"] == "on_time" and not r["accepted"] for r in rows)
        by_id = {r["matter_id"]: r for r in rows}
        assert by_id[str(rejected.id)]["rejections"][0]["detail"] == "resolve_matter: not accepted yet"
        assert "contact" not in str(rows)

        supporting = (await client.get(f"/v1/departments/{PETITIONS}/open-matters")).json()
        assert [(r["matter_id"], r["role"]) for r in supporting["matters"]] == [(str(matters[0].id), "supporting")]
        assert supporting["next"] is None

        assert (await client.get("/v1/departments/changjia.nowhere/open-matters")).status_code == 404
        bad = await client.get(url, params={"after": "not-a-cursor"})
        assert bad.status_code == 422
        assert "after" in bad.text
