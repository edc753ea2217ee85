"""The work lists' fields of a matters document (``open_tags``, ``listed_at``) follow dispatch's
snapshots: open until closed, returned while in supervision, overdue while a round is late."""

from __future__ import annotations

import pytest

from services.dispatch.decide import DeadlinesDue
from services.stats.matter_view import matter_document, timeline_entry
from tests.stories import Matter

pytestmark = pytest.mark.unit

CG = "changjia.comprehensive_governance"
JM = "changjia.judicial_mediation"
INSTRUCTOR = "changjia-instructor-04"
MEMBER = "changjia-g017-member1"


def view(m: Matter) -> dict[str, object]:
    return matter_document(str(m.id), [timeline_entry(e) for e in m.events], m.events)


def test_a_matter_is_open_until_closed_returned_in_supervision_and_listed_from_its_report() -> None:
    m = Matter("other", "urgent").report()
    assert view(m)["open_tags"] == ["open"]
    assert view(m)["listed_at"] == timeline_entry(m.reported)["occurred_at"]
    m.command("return_matter", CG, reason="wrong office")
    assert view(m)["open_tags"] == ["open", "returned"]
    m.send(m.make("reroute_matter", INSTRUCTOR, lead=JM, reason="mediation"), after_minutes=5)
    assert view(m)["open_tags"] == ["open"]
    m.command("accept_matter", JM)
    m.command("resolve_matter", JM)
    assert view(m)["open_tags"] == ["open"]  # resolved: waits for the follow-up visit
    m.command("record_feedback", MEMBER, satisfaction=5)
    assert view(m)["open_tags"] == []


def test_a_late_round_is_overdue_and_a_new_round_starts_on_time() -> None:
    m = Matter("safety_hazard", "urgent").report()
    m.send(DeadlinesDue(m.id), after_minutes=61)
    assert view(m)["open_tags"] == ["open", "overdue"]


def test_the_report_alone_is_open() -> None:
    m = Matter("dispute", "minor")
    assert view(m)["open_tags"] == ["open"]
