"""The matters view keeps what dispatch decided: the snapshot of the highest sequence, whatever
the arrival order, duplicates and batching; the report's facts; one timeline entry per event.

The events are dispatch's own (``tests.stories`` drives the real ``decide``)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.dispatch.decide import DeadlinesDue
from services.stats.matter_view import matter_document, matter_write, timeline_entry
from shared.contracts import CitizenContact
from tests.stories import Matter

pytestmark = pytest.mark.unit

EMERGENCY = "changjia.emergency_safety"
COUNTY = "county.emergency"
CG = "changjia.comprehensive_governance"
JM = "changjia.judicial_mediation"
PETITIONS = "changjia.petitions"
INSTRUCTOR = "changjia-instructor-04"
MEMBER = "changjia-g017-member1"
LEADER = "changjia-g017-leader"


def apply_in_batches(events: list[Any], batch: int) -> dict[str, Any]:
    """What ``StatsStore.apply_batch`` leaves in one matters document: per batch, the unseen
    events' ``$set`` over the stored document (``$setOnInsert`` when there was none)."""
    doc: dict[str, Any] | None = None
    for i in range(0, len(events), batch):
        seen = {e["message_id"] for e in (doc or {}).get("timeline", [])}
        fresh = list({str(e.message_id): e for e in events[i : i + batch] if str(e.message_id) not in seen}.values())
        if not fresh:
            continue
        entries = [*(doc or {}).get("timeline", []), *(timeline_entry(e) for e in fresh)]
        fields, initial = matter_write(entries, fresh, None if doc is None else doc["sequence"])
        doc = {**initial, **fields} if doc is None else {**doc, **fields}
    assert doc is not None
    return doc


def full_story() -> Matter:
    """Returned to supervision, rerouted with a supporting department, escalated, resolved, closed."""
    m = Matter("other", "urgent").report()
    m.command("return_matter", CG, reason="wrong office")
    m.command("reroute_matter", INSTRUCTOR, lead=JM, supporting=[PETITIONS], reason="mediation first")
    m.command("accept_matter", JM)
    m.command("accept_matter", PETITIONS)
    m.send(m.make("resolve_matter", PETITIONS), after_minutes=500)
    m.send(m.make("resolve_matter", JM), after_minutes=2000)
    m.command("record_feedback", MEMBER, satisfaction=4)
    return m


def test_view_is_identical_for_every_arrival_order_duplicates_and_batching() -> None:
    events = full_story().events
    expected = matter_document("m", [timeline_entry(e) for e in events], events)
    expected.pop("_id")
    rng = random.Random(7)
    for _ in range(50):
        delivered = events + rng.sample(events, 3)
        rng.shuffle(delivered)
        assert apply_in_batches(delivered, rng.randint(1, 5)) == expected


def test_closed_matter_has_the_state_dispatch_left_it_in_and_no_backlog() -> None:
    m = full_story()
    view = matter_document("m", [timeline_entry(e) for e in m.events], m.events)
    assert (view["state"], view["round"], view["lead"], view["satisfaction"]) == ("closed", 3, JM, 4)
    assert (view["backlog"], view["in_backlog"], view["open_since"]) == ([], False, None)
    assert view["departments"] == sorted([CG, JM, PETITIONS])
    assert view["supervised"] is True and view["sequence"] == m.now.version
    assert [t["event_type"] for t in view["timeline"]][:2] == ["matter_reported", "matter_dispatched"]


def test_backlog_lists_open_departments_with_role_acceptance_and_lateness() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", COUNTY)
    m.send(m.make("accept_matter", EMERGENCY), after_minutes=1)
    m2 = Matter("safety_hazard", "urgent").report()
    m2.send(DeadlinesDue(m2.id), after_minutes=61)  # two levels of the 30-minute accept deadline
    view = apply_in_batches(m.events, 10)
    assert view["backlog"] == [  # by department id
        {"department_id": EMERGENCY, "role": "lead", "accepted": True, "lateness": 0},
        {"department_id": COUNTY, "role": "supporting", "accepted": True, "lateness": 0},
    ]
    late = apply_in_batches(m2.events, 10)
    assert {b["department_id"]: b["lateness"] for b in late["backlog"]} == {EMERGENCY: 2, COUNTY: 0}
    assert late["escalation_level"] == 2 and late["open_since"] == late["dispatched_at"]


def test_released_supporting_department_leaves_the_backlog_and_the_lead_stays() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("return_matter", COUNTY, reason="nothing for us")
    view = apply_in_batches(m.events, 2)
    assert (view["open_departments"], view["state"]) == ([EMERGENCY], "dispatched")


def test_return_to_supervision_empties_the_backlog_until_the_reroute() -> None:
    m = Matter("other", "urgent").report()
    m.command("return_matter", CG, reason="wrong office")
    view = apply_in_batches(m.events, 1)
    assert (view["state"], view["tier"], view["open_departments"], view["in_backlog"]) == (
        "returned",
        "supervision",
        [],
        False,
    )
    m.send(m.make("reroute_matter", INSTRUCTOR, lead=JM, reason="x"), after_minutes=60)
    view = apply_in_batches(m.events, 1)
    assert view["open_departments"] == [JM] and view["open_since"] == view["dispatched_at"]


def test_reopened_matter_goes_back_to_its_lead_as_accepted() -> None:
    m = Matter("safety_hazard", "urgent").report()
    for kind, actor in (("accept_matter", EMERGENCY), ("accept_matter", COUNTY)):
        m.command(kind, actor)
    m.command("resolve_matter", COUNTY)
    m.command("resolve_matter", EMERGENCY)
    m.command("record_feedback", MEMBER, satisfaction=1)
    view = apply_in_batches(m.events, 3)
    assert (view["state"], view["closed_at"], view["round"]) == ("accepted", None, 2)
    assert view["backlog"] == [{"department_id": EMERGENCY, "role": "lead", "accepted": True, "lateness": 0}]


def test_an_older_snapshot_arriving_late_does_not_overwrite_a_newer_one() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.command("accept_matter", EMERGENCY)
    report, dispatched, accepted = m.events
    view = apply_in_batches([accepted, dispatched, report], 1)  # newest first, the report last
    assert (view["state"], view["sequence"], view["severity"]) == ("accepted", 2, "urgent")


def test_the_report_alone_makes_a_reported_matter() -> None:
    m = Matter("dispute", "minor")
    view = apply_in_batches([m.reported], 1)
    assert (view["state"], view["sequence"], view["severity"], view["in_backlog"]) == ("reported", 0, "minor", False)
    assert view["summary"] == "test matter"


def test_report_fields_never_include_the_citizen_contact() -> None:
    m = Matter("dispute", "minor")
    report = m.reported.model_copy(update={"contact": CitizenContact(name="张三", phone="13800000000")})
    view = matter_document("m", [timeline_entry(report)], [report])
    assert "contact" not in view and "13800000000" not in repr(view)


def test_each_timeline_entry_keeps_the_events_own_figures_as_data_beside_its_english_detail() -> None:
    m = full_story()
    view = matter_document("m", [timeline_entry(e) for e in m.events], m.events)
    told = [(t["event_type"], t["data"], t["detail"]) for t in view["timeline"]]
    assert told[0] == ("matter_reported", {"channel": "app"}, "app")
    assert told[1] == (
        "matter_dispatched",
        {"round": 1, "reason": "reported", "tier": "department", "lead": CG},
        f"round 1 (reported): department {CG}",
    )
    returned = ("matter_returned", {"outcome": "supervision", "reason": "wrong office"}, "supervision: wrong office")
    assert returned in told
    assert ("matter_rerouted", {"reason": "mediation first", "lead": JM}, "mediation first") in told
    assert ("matter_accepted", {"role": "supporting"}, "supporting") in told
    assert ("matter_closed", {"satisfaction": 4}, "satisfaction 4") in told
