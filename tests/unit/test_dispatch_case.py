"""Dispatch's rules, pure: ``decide`` and the ``Case`` aggregate, synchronous, without a store or a broker.

Every transition and every rejection of DESIGN §6 has a test here; the unit of work around
``decide`` (store, outbox, crashes, races) is tested in ``test_dispatch_unit_of_work``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from services.dispatch.case_state import IllegalCommandError, NotReadyError
from services.dispatch.decide import DeadlinesDue, decide
from shared.errors import PermanentError
from tests import factories
from tests.fakes.dispatch import INSTRUCTOR, TOWN
from tests.stories import T0, Matter, context

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.unit

EMERGENCY = "changjia.emergency_safety"
COUNTY_EMERGENCY = "county.emergency"
CG = "changjia.comprehensive_governance"
JM = "changjia.judicial_mediation"
PETITIONS = "changjia.petitions"
SERVICE_CENTER = "changjia.service_center"
MEMBER = "changjia-g017-member1"
LEADER = "changjia-g017-leader"
MICRO = "changjia-g017-m1-staff"


def resolved_emergency() -> Matter:
    """An urgent safety hazard both departments accepted and resolved (round 1)."""
    m = Matter("safety_hazard", "urgent").report()
    for kind, actor in (
        ("accept_matter", EMERGENCY),
        ("accept_matter", COUNTY_EMERGENCY),
        ("resolve_matter", COUNTY_EMERGENCY),
        ("resolve_matter", EMERGENCY),
    ):
        assert m.command(kind, actor).outcome == "applied"
    return m


def with_supervision() -> Matter:
    """Returned by the only department the rules name: the town's supervisors have it."""
    m = Matter("other", "urgent").report()
    assert m.command("return_matter", CG, reason="wrong office").outcome == "applied"
    return m


# ---------------------------------------------------------------- reports
def test_urgent_safety_hazard_is_dispatched_to_lead_and_supporting_departments() -> None:
    m = Matter("safety_hazard", "urgent")
    transition = m.send(m.reported)
    case = m.now
    assert (case.state, case.round, case.tier, case.lead, case.version) == ("dispatched", 1, "department", EMERGENCY, 1)
    assert [(o.owner_id, o.role, o.state) for o in case.owners] == [
        (EMERGENCY, "lead", "dispatched"),
        (COUNTY_EMERGENCY, "supporting", "dispatched"),
    ]
    [out] = transition.outbound
    assert sorted(out.dispatch_keys) == [
        f"{TOWN}.department.{EMERGENCY}.p1",
        f"{TOWN}.department.{COUNTY_EMERGENCY}.p1",
    ]
    event: Any = out.event
    assert (event.event_type, event.sequence, event.reason) == ("matter_dispatched", 1, "reported")
    assert event.accept_by == T0 + timedelta(minutes=30)


def test_minor_matter_goes_to_its_micro_grid_member_only() -> None:
    m = Matter("dispute", "minor", micro_grid_id="changjia-g017-m1")
    [out] = m.send(m.reported).outbound
    assert (m.now.tier, m.now.assignee, m.now.lead) == ("micro_grid", MICRO, MICRO)
    assert out.dispatch_keys == (f"{TOWN}.micro_grid.{MICRO}.p3",)
    assert out.event.matter.open_departments == []  # grid staff have no department backlog


def test_hard_matter_goes_to_the_grid_leader() -> None:
    m = Matter("dispute", "hard").report()
    assert (m.now.tier, m.now.lead) == ("grid_leader", LEADER)


def test_a_report_twice_is_a_duplicate_that_changes_nothing() -> None:
    m = Matter("safety_hazard", "urgent").report()
    again = m.send(m.reported)
    assert (again.outcome, again.outbound, m.now.version) == ("duplicate", [], 1)


def test_a_report_from_a_grid_outside_its_town_is_refused_for_good() -> None:
    report = factories.reported("dispute", "minor", reported_at=T0).model_copy(update={"town_id": "elsewhere"})
    with pytest.raises(PermanentError, match="is not in town"):
        decide(None, report, context())


# ---------------------------------------------------------------- accept, resolve, co-dispatch
def test_supporting_department_accepts_without_changing_the_matter_state() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", COUNTY_EMERGENCY)
    assert m.now.state == "dispatched" and m.now.owner(COUNTY_EMERGENCY).state == "accepted"  # type: ignore[union-attr]
    [accepted] = m.of("matter_accepted")
    assert (accepted.role, accepted.on_time) == ("supporting", True)


def test_lead_acceptance_after_the_deadline_is_counted_late() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.send(m.make("accept_matter", EMERGENCY), after_minutes=45)
    [accepted] = m.of("matter_accepted")
    assert (m.now.state, accepted.on_time, accepted.waited_seconds) == ("accepted", False, 2700.0)


def test_lead_resolves_only_after_supporting_departments_resolved_or_released() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", EMERGENCY)
    early = m.command("resolve_matter", EMERGENCY)
    assert (early.outcome, early.reason) == ("parked", f"waiting for supporting departments: {COUNTY_EMERGENCY}")
    released = m.command("return_matter", COUNTY_EMERGENCY, reason="not county level")
    assert [s.outcome for s in released.steps] == ["applied", "applied"]  # the release, then the parked resolve
    assert (m.now.state, m.now.pending) == ("resolved", [])
    assert [o.event.event_type for o in released.outbound] == ["matter_returned", "matter_resolved"]
    assert m.of("matter_returned")[0].outcome == "released"


def test_resolve_before_accepting_waits_for_the_acceptance() -> None:
    m = Matter("other", "urgent").report()
    assert m.command("resolve_matter", CG).outcome == "parked"
    accepted = m.command("accept_matter", CG)
    assert [s.message_type for s in accepted.steps] == ["accept_matter", "resolve_matter"]
    assert m.now.state == "resolved"


def test_grid_leader_may_act_for_the_assignee_but_a_stranger_may_not() -> None:
    m = Matter("other", "major").report()
    stranger = m.command("accept_matter", "changjia-g018-leader")
    assert stranger.outcome == "rejected" and "not an owner of round 1" in stranger.reason
    assert m.command("accept_matter", LEADER).outcome == "applied"
    assert m.now.state == "accepted"


# ---------------------------------------------------------------- whistle, return, supervision, reroute
def test_whistle_sends_a_grid_matter_up_to_the_departments_in_a_new_round() -> None:
    m = Matter("dispute", "minor", micro_grid_id="changjia-g017-m1").report()
    transition = m.command("whistle_matter", MICRO, reason="too big")
    assert (m.now.tier, m.now.round, m.now.lead, m.now.stage) == ("department", 2, JM, "whistled")
    assert [o.event.event_type for o in transition.outbound] == ["matter_whistled", "matter_dispatched"]
    assert m.of("matter_whistled")[0].round == 1 and m.of("matter_dispatched")[-1].reason == "whistled"


def test_return_reroutes_to_the_next_rule_lead_excluding_returners() -> None:
    m = Matter("dispute", "hard").report()
    m.command("whistle_matter", LEADER, reason="needs the town")
    m.command("return_matter", JM, reason="not a legal matter")
    assert (m.now.round, m.now.lead, m.now.returned_by) == (3, PETITIONS, [JM])
    returned = m.of("matter_returned")[-1]
    assert (returned.outcome, returned.round) == ("rerouted", 2)
    assert m.now.departments == [JM, CG, PETITIONS]


def test_return_with_no_department_left_goes_to_supervision() -> None:
    m = with_supervision()
    assert (m.now.state, m.now.tier, m.now.lead, m.now.supervised) == ("returned", "supervision", TOWN, True)
    assert m.of("matter_returned")[0].outcome == "supervision"
    dispatched = m.of("matter_dispatched")[-1]
    assert dispatched.matter.open_departments == [] and dispatched.matter.state == "returned"


def test_a_supervisor_reroutes_a_returned_matter_to_departments_of_their_choosing() -> None:
    m = with_supervision()
    transition = m.command("reroute_matter", INSTRUCTOR, lead=SERVICE_CENTER, supporting=[PETITIONS], reason="x")
    assert (m.now.state, m.now.round, m.now.lead, m.now.tier) == ("dispatched", 3, SERVICE_CENTER, "department")
    assert [o.event.event_type for o in transition.outbound] == ["matter_rerouted", "matter_dispatched"]
    assert transition.outbound[-1].event.matter.open_departments == [PETITIONS, SERVICE_CENTER]


# ---------------------------------------------------------------- feedback
def test_satisfied_feedback_closes_the_matter_with_its_origin() -> None:
    m = resolved_emergency()
    m.command("record_feedback", MEMBER, satisfaction=4)
    [closed] = m.of("matter_closed")
    assert (m.now.state, closed.origin, closed.supervised, closed.matter.closed_at) == (
        "closed",
        "grid_inspection",
        False,
        T0,
    )


def test_unsatisfied_feedback_reopens_to_the_lead_who_has_it_already() -> None:
    m = resolved_emergency()
    transition = m.command("record_feedback", MEMBER, satisfaction=2)
    assert (m.now.state, m.now.round, m.now.lead, m.now.satisfaction) == ("accepted", 2, EMERGENCY, 2)
    assert [o.event.event_type for o in transition.outbound] == ["matter_reopened", "matter_dispatched"]
    assert [(o.owner_id, o.state) for o in m.now.owners] == [(EMERGENCY, "accepted")]
    m.command("resolve_matter", EMERGENCY)
    m.command("record_feedback", MEMBER, satisfaction=5)
    assert m.now.state == "closed"


def test_feedback_before_the_resolution_waits_for_it() -> None:
    m = Matter("other", "urgent").report()
    assert m.command("record_feedback", MEMBER, satisfaction=5).outcome == "parked"
    m.command("accept_matter", CG)
    m.command("resolve_matter", CG)
    assert (m.now.state, m.now.pending) == ("closed", [])


# ---------------------------------------------------------------- rejections
@pytest.mark.parametrize(
    ("setup", "kind", "actor", "fields", "reason"),
    [
        ("urgent", "return_matter", EMERGENCY, {"reason": "  "}, "a return needs a reason"),
        ("urgent", "whistle_matter", EMERGENCY, {}, "only a grid-tier matter can be whistled up"),
        ("urgent", "accept_matter", "changjia.publicity", {}, "not an owner of round 1"),
        ("urgent", "record_feedback", "changjia-g001-leader", {"satisfaction": 4}, "neither grid staff"),
        ("urgent", "reroute_matter", EMERGENCY, {"lead": SERVICE_CENTER}, "not a supervisor of town changjia"),
        ("urgent", "reroute_matter", INSTRUCTOR, {"lead": "nowhere.office"}, "unknown department 'nowhere.office'"),
        ("minor", "return_matter", MICRO, {"reason": "not mine"}, "a grid-tier matter is whistled up, not returned"),
        ("supervision", "accept_matter", TOWN, {}, "matter is with supervision: a supervisor reroutes it"),
        ("supervision", "record_feedback", MEMBER, {"satisfaction": 5}, "there is no resolution to rate"),
        ("resolved", "return_matter", EMERGENCY, {"reason": "late"}, "matter is already resolved"),
        ("resolved", "resolve_matter", EMERGENCY, {}, "matter is already resolved"),
        ("resolved", "reroute_matter", INSTRUCTOR, {"lead": SERVICE_CENTER}, "it cannot be rerouted"),
        ("closed", "record_feedback", MEMBER, {"satisfaction": 5}, "matter is already closed"),
        ("closed", "whistle_matter", EMERGENCY, {}, "matter is already closed: nothing to whistle"),
    ],
)
def test_illegal_commands_are_rejected_with_their_reason(
    setup: str, kind: str, actor: str, fields: dict[str, Any], reason: str
) -> None:
    setups: dict[str, Callable[[], Matter]] = {
        "urgent": lambda: Matter("safety_hazard", "urgent").report(),
        "minor": lambda: Matter("dispute", "minor", micro_grid_id="changjia-g017-m1").report(),
        "supervision": with_supervision,
        "resolved": resolved_emergency,
        "closed": lambda: _closed(resolved_emergency()),
    }
    m = setups[setup]()
    before = m.now.model_dump(exclude={"version", "applied"})
    transition = m.command(kind, actor, **fields)
    assert transition.outcome == "rejected" and reason in transition.reason
    [out] = transition.outbound
    rejected: Any = out.event
    assert (rejected.event_type, rejected.command_type, rejected.actor_id) == ("matter_command_rejected", kind, actor)
    assert reason in rejected.reason
    assert m.now.model_dump(exclude={"version", "applied"}) == before  # a rejection changes no rule state


def _closed(m: Matter) -> Matter:
    m.command("record_feedback", MEMBER, satisfaction=5)
    return m


def test_an_owner_cannot_accept_twice_nor_return_what_it_left() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", COUNTY_EMERGENCY)
    assert "already accepted round 1" in m.command("accept_matter", COUNTY_EMERGENCY).reason
    m.command("return_matter", COUNTY_EMERGENCY, reason="not ours")
    assert "already released round 1" in m.command("return_matter", COUNTY_EMERGENCY, reason="again").reason
    assert "already released round 1" in m.command("resolve_matter", COUNTY_EMERGENCY).reason


def test_a_command_for_another_grid_is_rejected() -> None:
    m = Matter("safety_hazard", "urgent").report()
    other = factories.command("accept_matter", m.id, EMERGENCY, 1, grid_id="changjia-g018")
    transition = m.send(other)
    assert transition.outcome == "rejected" and "matter is in changjia/changjia-g017" in transition.reason


def test_a_command_for_a_finished_round_is_rejected_as_stale() -> None:
    m = Matter("dispute", "minor").report()
    assignee = m.now.assignee
    assert assignee is not None
    m.command("whistle_matter", assignee, reason="up")
    stale = m.command("accept_matter", assignee, 1)
    assert (stale.outcome, stale.reason) == ("rejected", "round 1 is over; matter is in round 2")


def test_a_command_for_a_later_round_waits_for_it() -> None:
    m = Matter("dispute", "minor").report()
    early = m.command("accept_matter", JM, 2)
    assert (early.outcome, early.reason) == ("parked", "waiting for round 2; matter is in round 1")
    assignee = m.now.assignee
    assert assignee is not None
    m.command("whistle_matter", assignee, reason="up")
    assert m.now.owner(JM).state == "accepted"  # type: ignore[union-attr]


# ---------------------------------------------------------------- duplicates and parking
def test_a_duplicate_command_is_applied_once() -> None:
    m = Matter("safety_hazard", "urgent").report()
    accept = m.make("accept_matter", EMERGENCY)
    assert m.send(accept).outcome == "applied"
    again = m.send(accept)
    assert (again.outcome, again.outbound, len(m.of("matter_accepted"))) == ("duplicate", [], 1)


def test_a_command_before_its_matter_is_parked_then_applied_with_the_report() -> None:
    m = Matter("safety_hazard", "urgent")
    early = m.command("accept_matter", EMERGENCY, 1)
    assert (early.outcome, early.reason, m.now.exists) == ("parked", "matter not reported yet", False)
    reported = m.send(m.reported)
    assert [o.event.event_type for o in reported.outbound] == ["matter_dispatched", "matter_accepted"]
    assert [o.event.sequence for o in reported.outbound] == [2, 3]  # each its own version
    assert (m.now.state, m.now.pending, m.now.version) == ("accepted", [], 3)


def test_an_illegal_command_before_its_matter_is_rejected_once_the_matter_exists() -> None:
    m = Matter("safety_hazard", "urgent")
    assert m.command("return_matter", EMERGENCY, 1, reason="").outcome == "parked"
    m.send(m.reported)
    [rejected] = m.of("matter_command_rejected")
    assert (rejected.reason, rejected.category, m.now.pending) == ("a return needs a reason", "safety_hazard", [])


def test_a_parked_duplicate_is_recognised() -> None:
    m = Matter("safety_hazard", "urgent")
    accept = m.make("accept_matter", EMERGENCY, 1)
    m.send(accept)
    assert m.send(accept).outcome == "duplicate" and len(m.now.pending) == 1


# ---------------------------------------------------------------- deadlines
def test_missed_accept_deadline_escalates_once_per_level_to_supervision_and_the_lead() -> None:
    m = Matter("safety_hazard", "urgent").report()  # accept within 30 minutes
    assert m.send(DeadlinesDue(m.id), after_minutes=29).outcome == "noop"
    first = m.send(DeadlinesDue(m.id), after_minutes=2)
    [out] = first.outbound
    escalated: Any = out.event
    assert (escalated.level, escalated.deadline, escalated.owner) == (1, "accept", EMERGENCY)
    assert sorted(out.dispatch_keys) == [f"{TOWN}.department.{EMERGENCY}.p1", f"{TOWN}.supervision.{TOWN}.p1"]
    lead = escalated.matter.owner(EMERGENCY)
    assert escalated.matter.escalation_level == lead.escalation_level == 1
    late = m.send(DeadlinesDue(m.id), after_minutes=120)  # levels 2 and 3 at once, never twice
    assert [o.event.matter.escalation_level for o in late.outbound] == [3, 3]  # one transition, one snapshot
    assert [e.level for e in m.of("matter_escalated")] == [1, 2, 3]
    assert m.send(DeadlinesDue(m.id), after_minutes=60).outcome == "noop"
    assert (m.now.supervised, m.now.next_deadline) == (True, None)


def test_after_acceptance_the_resolve_deadline_is_watched() -> None:
    m = Matter("other", "urgent").report()
    m.command("accept_matter", CG)
    due = m.now.due_escalation()
    assert due is not None and due[:2] == ("resolve", 1) and m.now.next_deadline == due[2]


def test_a_new_round_starts_escalation_afresh() -> None:
    m = Matter("dispute", "minor").report()
    m.send(DeadlinesDue(m.id), after_minutes=60 * 24 * 10)
    assert m.now.escalation_level == 3
    assignee = m.now.assignee
    assert assignee is not None
    m.command("whistle_matter", assignee, reason="up")
    assert (m.now.escalation_level, m.of("matter_dispatched")[-1].matter.escalation_level) == (0, 0)


def test_a_parked_command_is_rejected_after_the_park_timeout() -> None:
    m = Matter("safety_hazard", "urgent").report()
    assert m.command("resolve_matter", EMERGENCY).outcome == "parked"
    assert m.now.next_deadline == T0 + timedelta(minutes=15)
    expired = m.send(DeadlinesDue(m.id), after_minutes=16)
    assert expired.outcome == "rejected" and m.now.pending == []
    [rejected] = m.of("matter_command_rejected")
    assert rejected.reason.startswith("gave up waiting: waiting for")


def test_a_command_for_a_matter_never_reported_is_dropped_after_the_park_timeout() -> None:
    m = Matter("safety_hazard", "urgent")
    m.command("accept_matter", EMERGENCY, 1)
    dropped = m.send(DeadlinesDue(m.id), after_minutes=16)
    assert (dropped.outcome, dropped.outbound, m.now.pending) == ("rejected", [], [])


# ---------------------------------------------------------------- events carry the state
def test_every_event_of_a_transition_carries_its_version_and_the_snapshot_after_it() -> None:
    m = Matter("dispute", "hard").report()
    transition = m.command("whistle_matter", LEADER, reason="needs the town")
    whistled, dispatched = (o.event for o in transition.outbound)
    assert whistled.sequence == dispatched.sequence == m.now.version == 2
    assert whistled.matter == dispatched.matter == m.now.snapshot()
    snapshot = dispatched.matter
    assert (snapshot.state, snapshot.round, snapshot.tier, snapshot.stage) == (
        "dispatched",
        2,
        "department",
        "whistled",
    )
    assert [(o.owner_id, o.role, o.state) for o in snapshot.owners] == [
        (JM, "lead", "dispatched"),
        (CG, "supporting", "dispatched"),
    ]
    assert snapshot.open_departments == [CG, JM] and snapshot.departments == [CG, JM]


def test_open_departments_shrink_as_owners_finish_their_part() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", COUNTY_EMERGENCY)
    m.command("resolve_matter", COUNTY_EMERGENCY)
    assert m.of("matter_resolved")[-1].matter.open_departments == [EMERGENCY]
    m.command("accept_matter", EMERGENCY)
    m.command("resolve_matter", EMERGENCY)
    last = m.of("matter_resolved")[-1].matter
    assert (last.state, last.open_departments, last.resolved_at) == ("resolved", [], T0)


def test_the_aggregate_raises_for_what_is_not_yet_or_never_possible() -> None:
    m = Matter("safety_hazard", "urgent").report()
    case = m.now.model_copy(deep=True)
    with pytest.raises(NotReadyError, match=r"waiting for changjia\.emergency_safety to accept"):
        case.resolve(m.make("resolve_matter", EMERGENCY), context())
    with pytest.raises(IllegalCommandError, match="only a grid-tier matter"):
        case.whistle(m.make("whistle_matter", EMERGENCY), context())
