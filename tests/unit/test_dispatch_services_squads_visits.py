"""Dispatch's rules for service items, volunteer squads and supervision visits, pure (``decide``
through ``tests/stories.py``) and, for a visit as a whole, the handler over the fake ports."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.dispatch.handlers import MatterNotReportedYetError, on_matter_reported, on_supervision_visit
from shared.contracts import RecordSupervisionVisit, visit_event_id
from shared.errors import PermanentError
from tests import factories
from tests.fakes.dispatch import INSTRUCTOR, FakeCaseStore, FakePublisher, make_deps
from tests.stories import T0, Matter, context

pytestmark = pytest.mark.unit

MICRO = "changjia-g017-m1-staff"
OTHER_MICRO = "changjia-g018-m1-staff"
MEMBER = "changjia-g017-member1"
SQUAD = "changjia-g017-s1"  # assault squad of g017
CIVIL_AFFAIRS = "changjia.civil_affairs"


def minor_matter() -> Matter:
    return Matter("living_environment", "minor", micro_grid_id="changjia-g017-m1").report()


# ---------------------------------------------------------------- service items
def test_urgent_report_for_a_service_item_goes_to_the_items_department_with_its_deadlines() -> None:
    m = Matter("service_proxy", "urgent", service_item="minimum_living_allowance").report()
    (dispatched,) = m.of("matter_dispatched")
    assert (dispatched.tier, dispatched.lead, dispatched.rule_id) == (
        "department",
        CIVIL_AFFAIRS,
        "urgent-service-item",
    )
    assert dispatched.accept_by == T0 + timedelta(hours=24)  # the item's accept_hours
    assert dispatched.resolve_by == T0 + timedelta(days=15)  # the item's resolve_days


def test_open311_request_for_a_service_item_goes_to_the_items_department() -> None:
    m = Matter("safety_hazard", "minor", channel="open311", service_item="road_traffic_hazard").report()
    (dispatched,) = m.of("matter_dispatched")
    assert (dispatched.tier, dispatched.lead) == ("department", "county.public_security")


def test_whistled_service_item_goes_to_the_items_department() -> None:
    m = Matter("dispute", "major", service_item="wage_arrears").report()
    assert m.now.tier == "grid_member"  # a grid staff member's finding stays in the grid first
    assert m.command("whistle_matter", m.now.lead or "", reason="beyond the grid").outcome == "applied"
    assert (m.now.tier, m.now.lead, m.now.rule_id) == (
        "department",
        "changjia.human_resources",
        "whistled-service-item",
    )


def test_report_without_a_service_item_is_routed_as_before() -> None:
    m = Matter("service_proxy", "urgent").report()
    assert (m.now.lead, m.now.rule_id) == ("changjia.comprehensive_governance", "urgent-other")


# ---------------------------------------------------------------- volunteer squads
def test_micro_grid_member_assigns_a_squad_of_the_grid_to_a_minor_matter() -> None:
    m = minor_matter()
    transition = m.command("assign_squad", MICRO, squad_id=SQUAD)
    assert transition.outcome == "applied"
    (assigned,) = m.of("squad_assigned")
    assert (assigned.squad_id, assigned.squad_kind, assigned.by) == (SQUAD, "assault", MICRO)
    assert assigned.volunteers == context().registry.squad(SQUAD).size == 10  # people, no names
    assert assigned.matter.squads == [SQUAD] and m.now.lead == MICRO  # the member keeps the matter


@pytest.mark.parametrize(
    ("actor", "squad", "reason"),
    [
        (MICRO, "changjia-g018-s1", "belongs to changjia-g018"),
        (MICRO, "changjia-g017-s9", "unknown squad"),
        (OTHER_MICRO, SQUAD, "is not a micro-grid member of changjia-g017"),
        (MEMBER, SQUAD, "is not a micro-grid member of changjia-g017"),
    ],
)
def test_squad_assignment_outside_the_rules_is_rejected_with_the_reason(actor: str, squad: str, reason: str) -> None:
    m = minor_matter()
    transition = m.command("assign_squad", actor, squad_id=squad)
    assert transition.outcome == "rejected" and reason in transition.reason
    assert m.of("squad_assigned") == [] and m.now.squads == []


def test_squad_for_a_major_matter_is_rejected() -> None:
    m = Matter("dispute", "major").report()
    transition = m.command("assign_squad", MICRO, squad_id=SQUAD)
    assert transition.outcome == "rejected" and "only a minor matter on the micro-grid tier" in transition.reason


def test_the_same_squad_twice_is_rejected() -> None:
    m = minor_matter()
    assert m.command("assign_squad", MICRO, squad_id=SQUAD).outcome == "applied"
    assert m.command("assign_squad", MICRO, squad_id=SQUAD).outcome == "rejected"
    assert m.command("assign_squad", MICRO, squad_id="changjia-g017-s2").outcome == "applied"
    assert m.now.squads == [SQUAD, "changjia-g017-s2"]


# ---------------------------------------------------------------- follow-ups of a visit (per matter)
def close(m: Matter) -> None:
    lead = m.now.lead or ""
    for kind, fields in (("accept_matter", {}), ("resolve_matter", {}), ("record_feedback", {"satisfaction": 5})):
        assert m.command(kind, MICRO if kind == "record_feedback" else lead, **fields).outcome == "applied"


def test_followed_up_matter_is_supervised_and_closes_as_followed_up() -> None:
    m = minor_matter()
    assert m.follow_up(INSTRUCTOR).outcome == "applied"
    (followed,) = m.of("matter_followed_up")
    assert (followed.by, followed.first, followed.matter.followed_up, followed.matter.supervised) == (
        INSTRUCTOR,
        True,
        True,
        True,
    )
    close(m)
    (closed,) = m.of("matter_closed")
    assert closed.followed_up is True and closed.supervised is True


def test_the_same_visit_follows_a_matter_up_once_and_a_second_visit_is_not_a_first() -> None:
    m = minor_matter()
    visit = uuid.uuid4()
    assert m.follow_up(INSTRUCTOR, visit).outcome == "applied"
    assert m.follow_up(INSTRUCTOR, visit).outcome == "duplicate"
    assert m.follow_up(INSTRUCTOR).outcome == "applied"
    assert [e.first for e in m.of("matter_followed_up")] == [True, False]


def test_a_follow_up_does_not_change_the_round_or_the_owners() -> None:
    m = minor_matter()
    before = (m.now.round, m.now.state, m.now.lead)
    m.follow_up(INSTRUCTOR)
    assert (m.now.round, m.now.state, m.now.lead) == before
    assert m.command("accept_matter", MICRO).outcome == "applied"  # commands for the round still apply


# ---------------------------------------------------------------- a visit as a whole (handler, fake ports)
def visit(matter_ids: list[uuid.UUID], **changes: Any) -> RecordSupervisionVisit:
    body: dict[str, Any] = {
        "town_id": "changjia",
        "grid_id": "changjia-g017",
        "actor_id": INSTRUCTOR,
        "visit_id": str(uuid.uuid4()),
        "visited_at": T0.isoformat(),
        "matter_ids": [str(m) for m in matter_ids],
        **changes,
    }
    return RecordSupervisionVisit.model_validate(body)


async def reported_in(store: FakeCaseStore, publisher: FakePublisher, *grids: str) -> list[uuid.UUID]:
    deps = make_deps(store=store, publisher=publisher)
    ids = []
    for grid in grids:
        report = factories.reported("dispute", "minor", reported_at=T0, grid_id=grid)
        await on_matter_reported(deps, report)
        ids.append(report.matter_id)
    return ids


async def test_visit_follows_up_each_matter_and_records_the_visit_once_even_when_redelivered() -> None:
    store, publisher = FakeCaseStore(), FakePublisher()
    ids = await reported_in(store, publisher, "changjia-g017", "changjia-g017")
    deps = make_deps(store=store, publisher=publisher)
    command = visit(ids)
    recorded = await on_supervision_visit(deps, command)
    await on_supervision_visit(deps, command)  # redelivered
    assert recorded.message_id == visit_event_id(command.visit_id)
    assert len(publisher.events("matter_followed_up")) == 2  # once per matter, not per delivery
    visits = publisher.events("supervision_visit_recorded")
    assert {v["message_id"] for v in visits} == {str(recorded.message_id)}  # consumers dedupe the repeat
    assert visits[0]["matter_ids"] == [str(i) for i in ids] and visits[0]["instructor_id"] == INSTRUCTOR


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"grid_id": "changjia-g999"}, "unknown grid"),
        ({"actor_id": "changjia-instructor-01"}, "does not supervise grid changjia-g017"),
        ({"actor_id": "changjia-g017-leader"}, "is not a grid instructor"),
    ],
)
async def test_visit_by_the_wrong_person_or_to_an_unknown_grid_can_never_be_recorded(
    changes: dict[str, str], reason: str
) -> None:
    store, publisher = FakeCaseStore(), FakePublisher()
    ids = await reported_in(store, publisher, "changjia-g017")
    with pytest.raises(PermanentError, match=reason):
        await on_supervision_visit(make_deps(store=store, publisher=publisher), visit(ids, **changes))
    assert publisher.events("matter_followed_up") == publisher.events("supervision_visit_recorded") == []


async def test_visit_naming_a_matter_of_another_grid_is_refused_whole() -> None:
    store, publisher = FakeCaseStore(), FakePublisher()
    ids = await reported_in(store, publisher, "changjia-g017", "changjia-g018")
    with pytest.raises(PermanentError, match=r"matter_ids\[1\].*is not a matter of grid changjia-g017"):
        await on_supervision_visit(make_deps(store=store, publisher=publisher), visit(ids))
    assert publisher.events("matter_followed_up") == []  # nothing of it applied


async def test_visit_naming_a_matter_not_reported_yet_is_retried_later() -> None:
    store, publisher = FakeCaseStore(), FakePublisher()
    with pytest.raises(MatterNotReportedYetError):
        await on_supervision_visit(make_deps(store=store, publisher=publisher), visit([uuid.uuid4()]))
    assert publisher.events() == []
