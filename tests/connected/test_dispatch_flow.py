"""Dispatch against the real RabbitMQ and the local store: routing, tiers, co-dispatch, returns, deadlines."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from services.department.client import DepartmentClient, WorkItem
from services.dispatch.case import Case
from services.dispatch.deps import DispatchDeps
from services.dispatch.handlers import sweep_once
from shared.broker import publish_command, publish_event
from shared.settings import GwSettings
from tests.connected.dispatch_harness import (
    TOWN,
    client_broker,
    command,
    event_tap,
    eventually,
    reported,
    running_dispatch,
)

pytestmark = pytest.mark.connected

LEADER = "changjia-g017-leader"
MEMBER = "changjia-g017-member1"
INSTRUCTOR = "changjia-instructor-04"
CG = "changjia.comprehensive_governance"

# category -> (lead, supporting) once whistled, as deploy/config/routing.yaml names them
WHISTLED = {
    "dispute": ("changjia.judicial_mediation", [CG]),
    "safety_hazard": ("changjia.emergency_safety", []),
    "service_proxy": ("changjia.service_center", []),
    "living_environment": ("changjia.environment", []),
    "policy_publicity": ("changjia.publicity", []),
    "public_opinion": ("changjia.petitions", []),
    "other": (CG, []),
}


async def item_in(client: DepartmentClient, matter_id: uuid.UUID) -> WorkItem | None:
    return client.items.get(matter_id)


def led_by(lead: str, case: Case | None) -> bool:
    return case is not None and case.lead == lead


async def case_state(deps: DispatchDeps, matter_id: uuid.UUID) -> str | None:
    case = await deps.store.snapshot(str(matter_id))
    return None if case is None else f"{case.state}/{case.round}"


async def test_every_seed_category_reaches_the_departments_its_rule_names(
    settings: GwSettings, mongo_ready: None
) -> None:
    departments = sorted({d for lead, sup in WHISTLED.values() for d in (lead, *sup)} | {"county.emergency"})
    clients: dict[str, DepartmentClient] = {}
    grid_staff: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        for dept in departments:
            clients[dept] = DepartmentClient(broker, dept)  # type: ignore[arg-type]
            clients[dept].subscribe()
        grid_staff.append(DepartmentClient.for_grid_staff(broker, TOWN, {LEADER}))  # type: ignore[arg-type]
        grid_staff[0].subscribe()

    async with running_dispatch(settings) as deps, client_broker(settings, setup) as broker:
        matters = {category: reported(category, "hard") for category in WHISTLED}
        urgent = reported("safety_hazard", "urgent")
        for event in [*matters.values(), urgent]:
            await publish_event(broker, event)
        leader = grid_staff[0]
        await eventually(lambda: asyncio.sleep(0, len(leader.items)), lambda n: n == len(matters), what="grid tier")
        for event in matters.values():
            assert leader.items[event.matter_id].tier == "grid_leader"
            await leader.whistle(event.matter_id, "needs the departments")
        for category, event in matters.items():
            lead, supporting = WHISTLED[category]
            for dept, role in [(lead, "lead")] + [(s, "supporting") for s in supporting]:
                client = clients[dept]
                item = await eventually(
                    partial(item_in, client, event.matter_id),
                    lambda i: i is not None,
                    what=f"{category} in dept.{dept}",
                )
                assert item is not None and (item.round, item.role, item.tier) == (2, role, "department")
                assert item.accept_by > datetime.now(UTC) and item.resolve_by > item.accept_by
            # events are confirmed before the case document is written: poll the case
            case = await eventually(
                partial(deps.store.snapshot, str(event.matter_id)),
                partial(led_by, lead),
                what=f"case of {category} led by {lead}",
            )
            assert case is not None and case.accept_by is not None and case.round == 2
        for dept in ("changjia.emergency_safety", "county.emergency"):
            item = await eventually(
                partial(item_in, clients[dept], urgent.matter_id),
                lambda i: i is not None,
                what=f"urgent in dept.{dept}",
            )
            assert item is not None and item.priority == "p1" and item.round == 1


async def test_minor_matter_stays_in_the_grid_tier_and_a_whistle_moves_it_to_departments(
    settings: GwSettings, mongo_ready: None
) -> None:
    staff: list[DepartmentClient] = []
    dept: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        staff.append(DepartmentClient.for_grid_staff(broker, TOWN))  # type: ignore[arg-type]
        dept.append(DepartmentClient(broker, "changjia.environment"))  # type: ignore[arg-type]
        for client in (*staff, *dept):
            client.subscribe()

    async with running_dispatch(settings) as deps, client_broker(settings, setup) as broker, event_tap(settings) as tap:
        event = reported("living_environment", "minor")
        await publish_event(broker, event)
        item = await eventually(
            lambda: asyncio.sleep(0, staff[0].items.get(event.matter_id)),
            lambda i: i is not None,
            what="micro-grid work item",
        )
        assert item is not None and item.tier == "micro_grid" and item.actor_id.startswith("changjia-g017-m")
        await staff[0].accept(event.matter_id)
        await eventually(lambda: case_state(deps, event.matter_id), lambda s: s == "accepted/1")
        assert dept[0].items == {}
        await staff[0].whistle(event.matter_id, "sewage needs the town")
        moved = await eventually(
            lambda: asyncio.sleep(0, dept[0].items.get(event.matter_id)),
            lambda i: i is not None,
            what="whistled work item",
        )
        assert moved is not None and moved.round == 2 and moved.reason == "whistled"
        assert [e["by"] for e in tap.of("matter_whistled", event.matter_id)] == [item.actor_id]


async def test_co_dispatch_resolves_only_after_supporting_departments(settings: GwSettings, mongo_ready: None) -> None:
    async with running_dispatch(settings) as deps, client_broker(settings) as broker, event_tap(settings) as tap:
        event = reported("safety_hazard", "urgent")
        await publish_event(broker, event)
        m = event.matter_id
        lead, support = "changjia.emergency_safety", "county.emergency"
        await eventually(lambda: case_state(deps, m), lambda s: s == "dispatched/1")
        for cmd in (
            command("accept_matter", m, lead, 1),
            command("accept_matter", m, support, 1),
            command("resolve_matter", m, lead, 1, note="done"),
        ):
            await publish_command(broker, cmd)
        await eventually(
            lambda: deps.store.snapshot(str(m)),
            lambda c: c is not None and len(c.pending) == 1,
            what="lead resolve parked",
        )
        assert tap.of("matter_resolved", m) == []
        await publish_command(broker, command("resolve_matter", m, support, 1))
        await eventually(lambda: case_state(deps, m), lambda s: s == "resolved/1")
        resolved = await eventually(lambda: asyncio.sleep(0, tap.of("matter_resolved", m)), lambda r: len(r) == 2)
        assert [r["role"] for r in resolved] == ["supporting", "lead"]
        await publish_command(broker, command("record_feedback", m, MEMBER, 1, satisfaction=5))
        await eventually(lambda: case_state(deps, m), lambda s: s == "closed/1")


async def test_return_is_rerouted_or_sent_to_supervision_and_needs_a_reason(
    settings: GwSettings, mongo_ready: None
) -> None:
    supervisors: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        supervisors.append(DepartmentClient.for_supervisor(broker, TOWN, INSTRUCTOR))  # type: ignore[arg-type]
        supervisors[0].subscribe()

    async with running_dispatch(settings) as deps, client_broker(settings, setup) as broker, event_tap(settings) as tap:
        rerouted, supervised = reported("safety_hazard", "urgent"), reported("other", "urgent")
        for event in (rerouted, supervised):
            await publish_event(broker, event)
            await eventually(partial(case_state, deps, event.matter_id), lambda s: s == "dispatched/1")
        no_reason = command("return_matter", rerouted.matter_id, "changjia.emergency_safety", 1, reason="")
        await publish_command(broker, no_reason)
        [rejected] = await eventually(
            lambda: asyncio.sleep(0, tap.of("matter_command_rejected")), lambda r: len(r) == 1
        )
        assert rejected["command_id"] == str(no_reason.message_id) and "reason" in rejected["reason"]

        await publish_command(
            broker,
            command(
                "return_matter",
                rerouted.matter_id,
                "changjia.emergency_safety",
                1,
                reason="a fire-safety matter for governance",
            ),
        )
        await eventually(lambda: case_state(deps, rerouted.matter_id), lambda s: s == "dispatched/2")
        case = await deps.store.snapshot(str(rerouted.matter_id))
        assert case is not None and case.lead == CG and case.returned_by == ["changjia.emergency_safety"]
        assert tap.of("matter_returned", rerouted.matter_id)[0]["outcome"] == "rerouted"

        await publish_command(broker, command("return_matter", supervised.matter_id, CG, 1, reason="not ours"))
        item = await eventually(
            lambda: asyncio.sleep(0, supervisors[0].items.get(supervised.matter_id)),
            lambda i: i is not None,
            what="supervision work item",
        )
        assert item is not None and item.tier == "supervision"
        await supervisors[0].reroute(supervised.matter_id, "changjia.service_center", [], "instructor decided")
        await eventually(lambda: case_state(deps, supervised.matter_id), lambda s: s == "dispatched/3")
        case = await deps.store.snapshot(str(supervised.matter_id))
        assert case is not None and case.lead == "changjia.service_center" and case.supervised


async def test_missed_deadline_yields_exactly_one_escalation_per_level(settings: GwSettings, mongo_ready: None) -> None:
    now = [datetime.now(UTC)]

    def clock() -> datetime:
        return now[0]

    supervisors: list[DepartmentClient] = []

    def setup(broker: object) -> None:
        supervisors.append(DepartmentClient.for_supervisor(broker, TOWN, INSTRUCTOR))  # type: ignore[arg-type]
        supervisors[0].subscribe()

    async with (
        running_dispatch(settings, clock=clock) as replica_a,
        running_dispatch(settings, clock=clock) as replica_b,
        client_broker(settings, setup) as broker,
        event_tap(settings) as tap,
    ):
        event = reported("safety_hazard", "urgent")  # accept within 30m
        await publish_event(broker, event)
        await eventually(lambda: case_state(replica_a, event.matter_id), lambda s: s == "dispatched/1")
        for minutes in (29, 2, 30, 30, 45):
            now[0] += timedelta(minutes=minutes)
            await asyncio.gather(sweep_once(replica_a), sweep_once(replica_b), sweep_once(replica_a))
        notices = supervisors[0].escalations
        await eventually(lambda: asyncio.sleep(0, len(notices)), lambda n: n >= 3, what="supervision notices")
        await eventually(lambda: asyncio.sleep(0, tap.of("matter_escalated", event.matter_id)), lambda e: len(e) >= 3)
        await tap.barrier(broker)  # would a duplicate level still arrive? it must not
        escalated = tap.of("matter_escalated", event.matter_id)
        assert sorted(e["level"] for e in escalated) == [1, 2, 3]
        assert len({e["message_id"] for e in escalated}) == 3
        assert sorted(n.level for n in notices) == [1, 2, 3]
        assert {n.owner for n in notices} == {"changjia.emergency_safety"}
        levels = ["1:accept:1", "1:accept:2", "1:accept:3"]
        await eventually(
            lambda: replica_a.store.snapshot(str(event.matter_id)),
            lambda c: c is not None and sorted(c.escalations) == levels,
            what="three escalation levels on the case",
        )
