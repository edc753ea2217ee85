"""The dispatch state machine through its handlers, with a fake store, broker and clock."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.dispatch.handlers import DispatchDeps, on_command, on_matter_reported, sweep_once
from shared.contracts import COMMAND_ADAPTER, AnyCommand, MatterReported
from tests.fakes.dispatch import (
    GRID,
    INSTRUCTOR,
    TOWN,
    FakeBroker,
    FakeCaseStore,
    FakeClock,
    make_deps,
    reported,
)

pytestmark = pytest.mark.unit

EMERGENCY = "changjia.emergency_safety"
CG = "changjia.comprehensive_governance"
JM = "changjia.judicial_mediation"
PETITIONS = "changjia.petitions"


def cmd(kind: str, matter_id: uuid.UUID, actor: str, round_: int, **fields: Any) -> AnyCommand:
    return COMMAND_ADAPTER.validate_python(
        {
            "command_type": kind,
            "matter_id": str(matter_id),
            "town_id": TOWN,
            "grid_id": GRID,
            "actor_id": actor,
            "round": round_,
            **fields,
        }
    )


def broker(deps: DispatchDeps) -> FakeBroker:
    assert isinstance(deps.broker, FakeBroker)
    return deps.broker


async def case_of(deps: DispatchDeps, matter_id: uuid.UUID) -> Any:
    case = await deps.store.snapshot(str(matter_id))
    assert case is not None
    return case


async def test_urgent_safety_hazard_goes_to_lead_and_supporting_department_queues() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    case = await case_of(deps, event.matter_id)
    assert (case.state, case.round, case.tier, case.lead) == ("dispatched", 1, "department", EMERGENCY)
    assert [o.owner_id for o in case.supporting] == ["county.emergency"]
    assert case.accept_by is not None and case.resolve_by is not None
    assert sorted(broker(deps).dispatch_keys()) == [
        f"{TOWN}.department.{EMERGENCY}.p1",
        f"{TOWN}.department.county.emergency.p1",
    ]
    [dispatched] = broker(deps).events("matter_dispatched")
    assert dispatched["sequence"] == 1 and dispatched["reason"] == "reported"


async def test_minor_matter_stays_with_the_micro_grid_member_until_whistled() -> None:
    deps = make_deps()
    event = reported("dispute", "minor", micro_grid_id="changjia-g017-m1")
    await on_matter_reported(deps, event)
    case = await case_of(deps, event.matter_id)
    assert (case.tier, case.assignee, case.lead) == ("micro_grid", "changjia-g017-m1-staff", "changjia-g017-m1-staff")
    assert broker(deps).dispatch_keys() == [f"{TOWN}.micro_grid.changjia-g017-m1-staff.p3"]

    await on_command(deps, cmd("whistle_matter", event.matter_id, "changjia-g017-m1-staff", 1, reason="too big"))
    case = await case_of(deps, event.matter_id)
    assert (case.tier, case.round, case.lead, case.stage) == ("department", 2, JM, "whistled")
    assert [o.owner_id for o in case.supporting] == [CG]
    assert broker(deps).events("matter_whistled")[0]["round"] == 1


async def test_grid_leader_may_act_for_the_assignee_but_a_stranger_may_not() -> None:
    deps = make_deps()
    event = reported("other", "major")
    await on_matter_reported(deps, event)
    stranger = await on_command(deps, cmd("accept_matter", event.matter_id, "changjia-g018-leader", 1))
    assert stranger.outcome == "rejected" and "not an owner of round 1" in stranger.reason
    leader = await on_command(deps, cmd("accept_matter", event.matter_id, "changjia-g017-leader", 1))
    assert leader.outcome == "applied"
    assert (await case_of(deps, event.matter_id)).state == "accepted"


async def test_lead_resolves_only_after_supporting_departments_resolved_or_released() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    m = event.matter_id
    await on_command(deps, cmd("accept_matter", m, EMERGENCY, 1))
    early = await on_command(deps, cmd("resolve_matter", m, EMERGENCY, 1))
    assert early.outcome == "parked" and "county.emergency" in early.reason
    assert (await case_of(deps, m)).state == "accepted"
    released = await on_command(deps, cmd("return_matter", m, "county.emergency", 1, reason="not county level"))
    assert released.outcome == "applied"
    case = await case_of(deps, m)
    assert case.state == "resolved" and case.pending == []  # the parked resolve went through
    [resolved] = broker(deps).events("matter_resolved")
    assert resolved["role"] == "lead" and resolved["on_time"] is True
    assert broker(deps).events("matter_returned")[0]["outcome"] == "released"


async def test_return_without_reason_is_rejected_with_matter_command_rejected() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    outcome = await on_command(deps, cmd("return_matter", event.matter_id, EMERGENCY, 1, reason="  "))
    assert outcome.outcome == "rejected"
    [rejected] = broker(deps).events("matter_command_rejected")
    assert rejected["reason"] == "a return needs a reason" and rejected["actor_id"] == EMERGENCY
    assert (await case_of(deps, event.matter_id)).round == 1


async def test_return_reroutes_to_the_next_rule_lead_excluding_returners() -> None:
    deps = make_deps()
    event = reported("dispute", "hard")
    await on_matter_reported(deps, event)
    m = event.matter_id
    await on_command(deps, cmd("whistle_matter", m, "changjia-g017-leader", 1, reason="needs the town"))
    await on_command(deps, cmd("return_matter", m, JM, 2, reason="not a legal matter"))
    case = await case_of(deps, m)
    assert (case.round, case.lead, case.returned_by) == (3, PETITIONS, [JM])
    returned = broker(deps).events("matter_returned")[-1]
    assert (returned["outcome"], returned["round"]) == ("rerouted", 2)
    assert broker(deps).events("matter_dispatched")[-1]["reason"] == "returned"


async def test_return_with_no_department_left_goes_to_supervision_and_a_supervisor_reroutes() -> None:
    deps = make_deps()
    event = reported("other", "urgent")  # urgent-other and default-reported both lead with CG
    await on_matter_reported(deps, event)
    m = event.matter_id
    await on_command(deps, cmd("return_matter", m, CG, 1, reason="wrong office"))
    case = await case_of(deps, m)
    assert (case.state, case.tier, case.lead, case.supervised) == ("returned", "supervision", TOWN, True)
    assert broker(deps).dispatch_keys()[-1] == f"{TOWN}.supervision.{TOWN}.p1"
    not_boss = await on_command(deps, cmd("reroute_matter", m, EMERGENCY, 2, lead="changjia.service_center"))
    assert not_boss.outcome == "rejected" and "not a supervisor" in not_boss.reason
    await on_command(deps, cmd("reroute_matter", m, INSTRUCTOR, 2, lead="changjia.service_center", reason="x"))
    case = await case_of(deps, m)
    assert (case.state, case.round, case.lead, case.tier) == ("dispatched", 3, "changjia.service_center", "department")


async def test_closed_supervised_matter_carries_its_origin_and_the_report_reference() -> None:
    deps = make_deps()
    event = reported("other", "urgent")
    await on_matter_reported(deps, event)
    m = event.matter_id
    await on_command(deps, cmd("return_matter", m, CG, 1, reason="wrong office"))
    await on_command(deps, cmd("reroute_matter", m, INSTRUCTOR, 2, lead="changjia.service_center", reason="x"))
    for c in (
        cmd("accept_matter", m, "changjia.service_center", 3),
        cmd("resolve_matter", m, "changjia.service_center", 3),
        cmd("record_feedback", m, "changjia-g017-member1", 3, satisfaction=5),
    ):
        assert (await on_command(deps, c)).outcome == "applied"
    assert {d["report_id"] for d in broker(deps).events("matter_dispatched")} == {event.report_id}
    [closed] = broker(deps).events("matter_closed")
    assert (closed["origin"], closed["supervised"]) == ("grid_inspection", True)


async def test_unsatisfied_feedback_reopens_to_the_lead_in_a_new_round() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    m = event.matter_id
    for c in (
        cmd("accept_matter", m, EMERGENCY, 1),
        cmd("accept_matter", m, "county.emergency", 1),
        cmd("resolve_matter", m, "county.emergency", 1),
        cmd("resolve_matter", m, EMERGENCY, 1),
        cmd("record_feedback", m, "changjia-g017-member1", 1, satisfaction=2),
    ):
        assert (await on_command(deps, c)).outcome == "applied"
    case = await case_of(deps, m)
    assert (case.state, case.round, case.lead, case.satisfaction) == ("accepted", 2, EMERGENCY, 2)
    assert broker(deps).events("matter_dispatched")[-1]["reason"] == "reopened"
    await on_command(deps, cmd("resolve_matter", m, EMERGENCY, 2))
    await on_command(deps, cmd("record_feedback", m, "changjia-g017-member1", 2, satisfaction=5))
    assert (await case_of(deps, m)).state == "closed"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (lambda m: cmd("whistle_matter", m, EMERGENCY, 1), "only a grid-tier matter can be whistled"),
        (lambda m: cmd("accept_matter", m, "changjia.publicity", 1), "not an owner of round 1"),
        (lambda m: cmd("record_feedback", m, "changjia-g001-leader", 1, satisfaction=4), "neither grid staff"),
        (lambda m: cmd("reroute_matter", m, INSTRUCTOR, 1, lead="nowhere.office"), "unknown department"),
    ],
)
async def test_illegal_commands_are_rejected_with_a_reason(command: Any, reason: str) -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    outcome = await on_command(deps, command(event.matter_id))
    assert outcome.outcome == "rejected"
    assert reason in broker(deps).events("matter_command_rejected")[0]["reason"]


async def test_command_for_a_finished_round_is_rejected_as_stale() -> None:
    deps = make_deps()
    event = reported("dispute", "minor")
    await on_matter_reported(deps, event)
    m = event.matter_id
    case = await case_of(deps, m)
    await on_command(deps, cmd("whistle_matter", m, case.assignee, 1, reason="up"))
    stale = await on_command(deps, cmd("accept_matter", m, case.assignee, 1))
    assert stale.outcome == "rejected" and stale.reason == "round 1 is over; matter is in round 2"


async def test_duplicate_command_is_applied_once() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    accept = cmd("accept_matter", event.matter_id, EMERGENCY, 1)
    assert (await on_command(deps, accept)).outcome == "applied"
    assert (await on_command(deps, accept)).outcome == "duplicate"
    assert len(broker(deps).events("matter_accepted")) == 1
    assert (await on_matter_reported(deps, event)).outcome == "duplicate"
    assert len(broker(deps).events("matter_dispatched")) == 1


async def test_command_before_its_matter_is_parked_then_applied() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    early = await on_command(deps, cmd("accept_matter", event.matter_id, EMERGENCY, 1))
    assert early.outcome == "parked" and early.reason == "matter not reported yet"
    await on_matter_reported(deps, event)
    case = await case_of(deps, event.matter_id)
    assert case.state == "accepted" and case.pending == []


async def test_illegal_command_before_its_matter_is_rejected_once_the_matter_exists() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    early = await on_command(deps, cmd("return_matter", event.matter_id, EMERGENCY, 1, reason=""))
    assert early.outcome == "parked"
    await on_matter_reported(deps, event)
    [rejected] = broker(deps).events("matter_command_rejected")
    assert rejected["reason"] == "a return needs a reason" and rejected["category"] == "safety_hazard"
    assert (await case_of(deps, event.matter_id)).pending == []


async def test_crash_between_commit_and_publish_is_repaired_by_redelivery() -> None:
    clock = FakeClock()
    deps = make_deps(clock)
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    accept = cmd("accept_matter", event.matter_id, EMERGENCY, 1)
    broker(deps).fail_next = 1
    with pytest.raises(ConnectionError):
        await on_command(deps, accept)
    assert broker(deps).events("matter_accepted") == []  # committed, not published
    stored = await deps.store.load(str(event.matter_id))
    assert stored is not None and stored.in_flight and stored.case.state == "accepted"
    clock.advance(seconds=11)  # the broker redelivers once the dead consumer's channel is gone
    assert (await on_command(deps, accept)).outcome == "duplicate"  # the redelivery finishes it
    [accepted] = broker(deps).events("matter_accepted")
    assert accepted["sequence"] == 2
    assert (await case_of(deps, event.matter_id)).state == "accepted"


async def test_sweeper_finishes_a_transition_whose_writer_died() -> None:
    clock = FakeClock()
    deps = make_deps(clock)
    event = reported("safety_hazard", "urgent")
    broker(deps).fail_next = 1
    with pytest.raises(ConnectionError):
        await on_matter_reported(deps, event)
    stored = await deps.store.load(str(event.matter_id))
    assert stored is not None and stored.in_flight  # committed with its outbox, not sent
    await sweep_once(deps)  # within the grace period the writer may still be alive
    assert broker(deps).events() == []
    clock.advance(seconds=11)
    await sweep_once(deps)
    assert [e["event_type"] for e in broker(deps).events()] == ["matter_dispatched"]
    assert (await case_of(deps, event.matter_id)).state == "dispatched"


async def test_missed_deadlines_escalate_once_per_level_even_with_two_sweepers() -> None:
    clock = FakeClock()
    store = FakeCaseStore()
    replica_a, replica_b = make_deps(clock, store), make_deps(clock, store)
    replica_b.broker = replica_a.broker  # one broker to count what both publish
    event = reported("safety_hazard", "urgent")  # accept within 30m
    await on_matter_reported(replica_a, event)
    for minutes in (29, 2, 30, 30, 30, 60):
        clock.advance(minutes=minutes)
        await asyncio.gather(sweep_once(replica_a), sweep_once(replica_b), sweep_once(replica_a))
    escalated = broker(replica_a).events("matter_escalated")
    assert [(e["level"], e["deadline"]) for e in escalated] == [(1, "accept"), (2, "accept"), (3, "accept")]
    assert {e["owner"] for e in escalated} == {EMERGENCY}
    keys = [k for _, k, b in broker(replica_a).published if b.get("event_type") == "matter_escalated"]
    assert keys.count(f"{TOWN}.supervision.{TOWN}.p1") == 3
    case = await case_of(replica_a, event.matter_id)
    assert case.supervised and case.next_deadline is None


async def test_parked_command_is_rejected_after_the_park_timeout() -> None:
    clock = FakeClock()
    deps = make_deps(clock)
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps, event)
    resolve = cmd("resolve_matter", event.matter_id, EMERGENCY, 1)
    assert (await on_command(deps, resolve)).outcome == "parked"
    clock.advance(minutes=16)
    await sweep_once(deps)
    rejected = broker(deps).events("matter_command_rejected")
    assert len(rejected) == 1 and rejected[0]["reason"].startswith("gave up waiting: waiting for")
    assert (await case_of(deps, event.matter_id)).pending == []


async def test_two_writers_of_one_version_never_both_win() -> None:
    store = FakeCaseStore()
    deps_a, deps_b = make_deps(store=store), make_deps(store=store)
    event = reported("safety_hazard", "urgent")
    await on_matter_reported(deps_a, event)
    m = event.matter_id
    await asyncio.gather(
        on_command(deps_a, cmd("accept_matter", m, EMERGENCY, 1)),
        on_command(deps_b, cmd("accept_matter", m, "county.emergency", 1)),
    )
    case = await case_of(deps_a, m)
    assert case.version == 3 and {o.state for o in case.owners} == {"accepted"}
    assert [e["sequence"] for e in broker(deps_a).events() + broker(deps_b).events()].count(3) == 1


async def _parked_accept_then_report_dies_after_commit(clock: FakeClock) -> tuple[DispatchDeps, MatterReported]:
    """An accept parked before its report; the report's transition commits, then the broker goes away."""
    deps = make_deps(clock)
    event = reported("safety_hazard", "urgent")
    assert (await on_command(deps, cmd("accept_matter", event.matter_id, EMERGENCY, 1))).outcome == "parked"
    broker(deps).fail_next = 1
    with pytest.raises(ConnectionError):
        await on_matter_reported(deps, event)
    assert (await case_of(deps, event.matter_id)).pending != []  # no drain ran
    clock.advance(seconds=11)
    return deps, event


async def test_a_parked_command_is_retried_when_the_transition_it_waits_for_is_redelivered_after_a_crash() -> None:
    deps, event = await _parked_accept_then_report_dies_after_commit(FakeClock())
    assert (await on_matter_reported(deps, event)).outcome == "duplicate"  # the redelivery
    case = await case_of(deps, event.matter_id)
    assert case.pending == [] and case.state == "accepted"


async def test_the_sweeper_retries_parked_commands_after_sending_a_stalled_outbox() -> None:
    deps, event = await _parked_accept_then_report_dies_after_commit(FakeClock())
    await sweep_once(deps)  # the message is not redelivered here: the sweeper completes the transition
    case = await case_of(deps, event.matter_id)
    assert case.pending == [] and case.state == "accepted"
    assert [e["event_type"] for e in broker(deps).events()] == ["matter_dispatched", "matter_accepted"]
