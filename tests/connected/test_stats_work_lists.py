"""A grid's and a town's open matters and a town's figures per day, against the real broker and
store: what the grid staff and supervisor pages read (paged, oldest first, returned / overdue
filters, rejected commands of their own senders), and that the lists walk their indexes."""

from __future__ import annotations

from typing import Any

import pytest

from services.dispatch.decide import DeadlinesDue
from shared.settings import GwSettings
from tests.connected.stats_harness import eventually, publish_events, running_stats
from tests.stories import Matter

pytestmark = pytest.mark.connected

GRID = "changjia-g017"
CG = "changjia.comprehensive_governance"
JM = "changjia.judicial_mediation"
INSTRUCTOR = "changjia-instructor-04"
MEMBER = "changjia-g017-member1"


def _stories() -> dict[str, Matter]:
    grid_tier = Matter("dispute", "minor").report()  # stays with the micro-grid member
    returned = Matter("other", "urgent").report()
    returned.command("return_matter", CG, reason="wrong office")
    returned.command("reroute_matter", "changjia-g017-leader", lead=JM, reason="not a supervisor")  # rejected
    overdue = Matter("safety_hazard", "urgent").report()
    overdue.send(DeadlinesDue(overdue.id), after_minutes=61)
    closed = Matter("other", "urgent").report()
    closed.command("accept_matter", CG)
    closed.command("resolve_matter", CG)
    closed.command("record_feedback", MEMBER, satisfaction=5)
    return {"grid_tier": grid_tier, "returned": returned, "overdue": overdue, "closed": closed}


async def _pages(client: Any, url: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        body = (await client.get(url, params={"limit": 1, **params} | ({"after": after} if after else {}))).json()
        assert len(body["matters"]) <= 1
        rows += body["matters"]
        after = body["next"]
        if after is None:
            return rows


async def test_grid_and_town_lists_page_through_open_matters_with_their_filters(settings: GwSettings) -> None:
    stories = _stories()
    ids = {name: str(m.id) for name, m in stories.items()}
    async with running_stats(settings) as (_app, client):
        await publish_events(settings, [e for m in stories.values() for e in m.events])

        async def settled() -> tuple[bool, Any]:
            body = (await client.get(f"/v1/grids/{GRID}/open-matters")).json()
            closed = (await client.get(f"/v1/matters/{ids['closed']}")).json()
            return body.get("open") == 3 and closed.get("state") == "closed", body

        await eventually(settled, "three open matters of the grid, one closed")
        grid_rows = await _pages(client, f"/v1/grids/{GRID}/open-matters")
        assert {r["matter_id"] for r in grid_rows} == {ids["grid_tier"], ids["returned"], ids["overdue"]}
        assert [r["listed_at"] for r in grid_rows] == sorted(r["listed_at"] for r in grid_rows)
        by_id = {r["matter_id"]: r for r in grid_rows}
        assert by_id[ids["grid_tier"]]["tier"] == "micro_grid" and by_id[ids["grid_tier"]]["round"] == 1
        assert by_id[ids["returned"]]["returned"] and not by_id[ids["returned"]]["overdue"]
        assert by_id[ids["overdue"]]["overdue"] and by_id[ids["overdue"]]["escalation_level"] == 2
        rejected = by_id[ids["returned"]]["rejections"]  # sent by the grid leader: readable by the grid
        assert rejected and rejected[0]["by"] == "changjia-g017-leader"
        assert "not a supervisor" in rejected[0]["detail"]
        assert "contact" not in str(grid_rows)

        url = "/v1/towns/changjia/open-matters"
        returned = await _pages(client, url, filter="returned")
        overdue = await _pages(client, url, filter="overdue")
        everything = await _pages(client, url)
        assert [r["matter_id"] for r in returned] == [ids["returned"]]
        assert returned[0]["rejections"] == []  # the leader is no supervisor: not the town's sender
        assert [r["matter_id"] for r in overdue] == [ids["overdue"]]
        assert len(everything) == 3 and ids["closed"] not in {r["matter_id"] for r in everything}

        daily = await client.get("/v1/stats/towns/changjia/daily", params={"from": "2026-02-28", "to": "2026-03-02"})
        days = daily.json()["days"]
        assert [d["day"] for d in days] == ["2026-02-28", "2026-03-01", "2026-03-02"]
        assert sum(d["dispatched"] for d in days) >= 4 and sum(d["closed"] for d in days) == 1

        assert (await client.get("/v1/grids/changjia-g999/open-matters")).status_code == 404
        assert (await client.get(url, params={"filter": "late"})).status_code == 422
        assert (await client.get(url, params={"after": "nope"})).status_code == 422
        assert (await client.get("/v1/towns/nowhere/open-matters")).status_code == 404

        plan = (
            await _app.state.runtime.db["matters"]
            .find({"town_id": "changjia", "open_tags": "returned"})
            .sort([("listed_at", 1), ("_id", 1)])
            .explain()
        )
        assert "town_open_listed" in str(plan["queryPlanner"]["winningPlan"]), plan
