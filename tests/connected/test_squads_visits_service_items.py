"""Volunteer squads, supervision visits and service items through the real RabbitMQ and the local
store: dispatch and stats in-process, commands published on ``gw.commands`` as clients send them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from services.department.client import DepartmentClient
from shared.broker import publish_command, publish_event
from shared.contracts import RecordSupervisionVisit, visit_event_id
from shared.settings import GwSettings
from tests import factories
from tests.connected.dispatch_harness import (
    TOWN,
    client_broker,
    command,
    event_tap,
    eventually,
    running_dispatch,
)
from tests.connected.stats_harness import running_stats

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]

GRID = "changjia-g017"
INSTRUCTOR = "changjia-instructor-04"  # supervises g016..g020
SQUAD = "changjia-g017-s2"


def reported(category: str, severity: str, **fields: Any) -> Any:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return factories.reported(category, severity, reported_at=at, grid_id=GRID, **fields)


async def town_counts(stats: Any) -> dict[str, int]:
    response = await stats.get(f"/v1/stats/towns/{TOWN}")
    counts: dict[str, int] = response.json()["counts"]
    return counts


async def test_squad_assigned_by_the_micro_grid_member_is_stored_published_and_counted(settings: GwSettings) -> None:
    staff: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        staff.append(DepartmentClient.for_grid_staff(broker, TOWN))  # type: ignore[arg-type]
        staff[0].subscribe()

    async with (
        running_dispatch(settings) as deps,
        running_stats(settings) as (_, stats),
        client_broker(settings, setup) as broker,
        event_tap(settings) as tap,
    ):
        event = reported("living_environment", "minor", micro_grid_id="changjia-g017-m2")
        await publish_event(broker, event)
        item = await eventually(
            lambda: asyncio.sleep(0, staff[0].items.get(event.matter_id)), lambda i: i is not None, what="work item"
        )
        assert item is not None and item.actor_id == "changjia-g017-m2-staff"
        await publish_command(broker, command("assign_squad", event.matter_id, item.actor_id, 1, squad_id=SQUAD))
        [assigned] = await eventually(
            lambda: asyncio.sleep(0, tap.of("squad_assigned", event.matter_id)), bool, what="squad_assigned"
        )
        assert (assigned["squad_id"], assigned["by"], assigned["matter"]["squads"]) == (SQUAD, item.actor_id, [SQUAD])
        case = await deps.store.snapshot(str(event.matter_id))
        assert case is not None and case.squads == [SQUAD]
        # a squad of another grid is refused with the reason, and nothing is counted for it
        await publish_command(
            broker, command("assign_squad", event.matter_id, item.actor_id, 1, squad_id="changjia-g018-s1")
        )
        [rejected] = await eventually(
            lambda: asyncio.sleep(0, tap.of("matter_command_rejected", event.matter_id)), bool, what="the rejection"
        )
        assert "belongs to changjia-g018" in rejected["reason"]
        counts = await eventually(
            lambda: town_counts(stats), lambda c: c.get("rejected") == 1, what="stats to count the rejection"
        )
        size = deps.registry.squad(SQUAD).size
        assert (counts["squad_assignments"], counts["squad_volunteers"]) == (1, size)


async def test_visit_follows_up_its_matters_and_stats_counts_it_once_per_town_grid_and_instructor(
    settings: GwSettings,
) -> None:
    async with (
        running_dispatch(settings) as deps,
        running_stats(settings) as (_, stats),
        client_broker(settings) as broker,
        event_tap(settings) as tap,
    ):
        matters = [reported("dispute", "major"), reported("safety_hazard", "hard")]
        for event in matters:
            await publish_event(broker, event)
        for event in matters:
            await eventually(partial(deps.store.snapshot, str(event.matter_id)), bool, what="the case")
        visit = RecordSupervisionVisit(
            town_id=TOWN,
            grid_id=GRID,
            actor_id=INSTRUCTOR,
            visit_id=uuid.uuid4(),
            visited_at=datetime.now(UTC),
            matter_ids=[m.matter_id for m in matters],
        )
        await publish_command(broker, visit)
        await publish_command(broker, visit.model_copy(update={"message_id": uuid.uuid4()}))  # sent twice
        await eventually(
            lambda: asyncio.sleep(0, tap.of("matter_followed_up")), lambda f: len(f) == 2, what="two follow-ups"
        )
        counts = await eventually(
            lambda: town_counts(stats),
            lambda c: c.get("visits") == 1 and c.get("followed_up") == 2,
            what="the visit and its follow-ups in stats",
        )
        assert counts["followed_up_matters"] == 2 and counts["closed_followed_up"] == 0
        await tap.barrier(broker)
        recorded = tap.of("supervision_visit_recorded")
        assert {r["message_id"] for r in recorded} == {str(visit_event_id(visit.visit_id))}
        town = (await stats.get(f"/v1/stats/towns/{TOWN}")).json()
        assert town["by_instructor"] == {INSTRUCTOR: {"visits": 1, "followed_up": 2}}
        grid = (await stats.get(f"/v1/stats/grids/{GRID}")).json()
        assert grid["counts"]["visits"] == 1
        for event in matters:
            case = await deps.store.snapshot(str(event.matter_id))
            assert case is not None and case.followed_up and case.supervised


async def test_urgent_report_for_a_service_item_reaches_the_items_department_queue(settings: GwSettings) -> None:
    clients: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        clients.append(DepartmentClient(broker, "changjia.human_resources"))  # type: ignore[arg-type]
        clients[0].subscribe()

    async with running_dispatch(settings), client_broker(settings, setup) as broker:
        event = reported("service_proxy", "urgent", service_item="employment_registration")
        await publish_event(broker, event)
        item = await eventually(
            lambda: asyncio.sleep(0, clients[0].items.get(event.matter_id)),
            lambda i: i is not None,
            what="the item's department to receive it",
        )
        assert item is not None and item.tier == "department" and item.lead == "changjia.human_resources"
