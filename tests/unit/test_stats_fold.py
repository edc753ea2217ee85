"""The matters view is a pure fold of the set of events: order and duplicates cannot change it."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.stats.fold import matter_fields, project, timeline_entry
from shared.contracts import (
    AnyEvent,
    MatterAccepted,
    MatterClosed,
    MatterDispatched,
    MatterEscalated,
    MatterReopened,
    MatterReported,
    MatterResolved,
    MatterReturned,
)
from shared.domain import Category, Channel, Priority, Severity, Tier

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CIVIL = "changjia.civil_affairs"
MEDIATION = "changjia.judicial_mediation"
PETITIONS = "changjia.petitions"


class Story:
    """Events of one matter with increasing sequence numbers and times."""

    def __init__(self) -> None:
        self.matter_id = uuid.uuid4()
        self.seq = 0
        self.events: list[AnyEvent] = []

    def _base(self, minutes: int) -> dict[str, Any]:
        return {
            "matter_id": self.matter_id,
            "town_id": "changjia",
            "grid_id": "changjia-g017",
            "category": Category.DISPUTE,
            "occurred_at": T0 + timedelta(minutes=minutes),
        }

    def add(self, cls: type[Any], minutes: int, **fields: Any) -> AnyEvent:
        event: AnyEvent = cls(**self._base(minutes), sequence=self.seq, **fields)
        self.seq += 1
        self.events.append(event)
        return event

    def report(self) -> AnyEvent:
        return self.add(
            MatterReported, 0, report_id="r-1", channel=Channel.APP, severity=Severity.HARD, summary="a quarrel"
        )

    def dispatch(self, minutes: int, rnd: int, lead: str, supporting: list[str] | None = None) -> AnyEvent:
        return self.add(
            MatterDispatched,
            minutes,
            round=rnd,
            severity=Severity.HARD,
            tier=Tier.DEPARTMENT,
            lead=lead,
            supporting=supporting or [],
            priority=Priority.P2,
            rule_id="dispute-hard",
            accept_by=T0 + timedelta(hours=4),
            resolve_by=T0 + timedelta(days=3),
        )


def _view(events: list[AnyEvent]) -> dict[str, Any]:
    return project([timeline_entry(e) for e in events])


def _full_story() -> Story:
    s = Story()
    s.report()
    s.dispatch(5, 1, MEDIATION)
    s.add(MatterReturned, 30, round=1, by=MEDIATION, reason="not ours", outcome="rerouted")
    s.dispatch(31, 2, CIVIL, [PETITIONS])
    s.add(MatterAccepted, 40, round=2, by=CIVIL, role="lead", waited_seconds=540.0)
    s.add(MatterEscalated, 300, round=2, level=1, deadline="accept", owner=PETITIONS, due_at=T0)
    s.add(MatterResolved, 600, round=2, by=CIVIL, role="lead", handling_seconds=36000.0)
    s.add(MatterClosed, 700, round=2, by="changjia-g017-leader", satisfaction=4)
    return s


def test_view_is_identical_for_every_arrival_order_with_duplicates() -> None:
    events = _full_story().events
    expected = _view(events)
    rng = random.Random(7)
    for _ in range(50):
        delivered = events + rng.sample(events, 3)
        rng.shuffle(delivered)
        unique = list({e.message_id: e for e in delivered}.values())
        fields = matter_fields([timeline_entry(e) for e in unique], unique[-1])
        assert {k: fields[k] for k in expected} == expected
        assert [t["sequence"] for t in fields["timeline"]] == sorted(t["sequence"] for t in fields["timeline"])


def test_closed_matter_has_the_state_of_its_highest_sequence_and_no_backlog() -> None:
    view = _view(_full_story().events)
    assert view["state"] == "closed"
    assert view["round"] == 2
    assert view["lead"] == CIVIL
    assert view["satisfaction"] == 4
    assert view["backlog"] == []
    assert view["in_backlog"] is False
    assert view["departments"] == sorted([MEDIATION, CIVIL, PETITIONS])


def test_supporting_department_stays_open_after_the_lead_resolved_until_it_resolves() -> None:
    s = Story()
    s.report()
    s.dispatch(5, 1, CIVIL, [PETITIONS])
    s.add(MatterAccepted, 10, round=1, by=CIVIL, role="lead")
    s.add(MatterResolved, 20, round=1, by=CIVIL, role="lead")
    view = _view(s.events)
    assert view["state"] == "resolved"
    assert view["backlog"] == [{"department_id": PETITIONS, "role": "supporting", "accepted": False, "lateness": 0}]
    s.add(MatterResolved, 25, round=1, by=PETITIONS, role="supporting")
    assert _view(s.events)["in_backlog"] is False


def test_released_supporting_department_leaves_the_backlog_and_the_lead_stays() -> None:
    s = Story()
    s.report()
    s.dispatch(5, 1, CIVIL, [PETITIONS])
    s.add(MatterReturned, 10, round=1, by=PETITIONS, reason="nothing for us", outcome="released")
    view = _view(s.events)
    assert view["open_departments"] == [CIVIL]
    assert view["state"] == "dispatched"


def test_lead_return_empties_the_backlog_until_the_next_round() -> None:
    s = Story()
    s.report()
    s.dispatch(5, 1, CIVIL, [PETITIONS])
    s.add(MatterReturned, 10, round=1, by=CIVIL, reason="wrong office", outcome="supervision")
    view = _view(s.events)
    assert (view["state"], view["open_departments"]) == ("returned", [])
    s.dispatch(60, 2, MEDIATION)
    view = _view(s.events)
    assert view["open_departments"] == [MEDIATION]
    assert view["open_since"] == T0 + timedelta(minutes=60)


def test_reopened_matter_goes_back_to_its_lead_as_accepted() -> None:
    s = _full_story()
    s.add(MatterReopened, 800, round=2, by="changjia-g017-leader", satisfaction=1, lead=CIVIL)
    view = _view(s.events)
    assert view["state"] == "accepted"
    assert view["closed_at"] is None
    assert view["backlog"] == [{"department_id": CIVIL, "role": "lead", "accepted": True, "lateness": 0}]


def test_escalation_sets_the_lateness_of_the_owning_department_only() -> None:
    s = Story()
    s.report()
    s.dispatch(5, 1, CIVIL, [PETITIONS])
    s.add(MatterEscalated, 300, round=1, level=1, deadline="accept", owner=CIVIL, due_at=T0)
    s.add(MatterEscalated, 900, round=1, level=2, deadline="accept", owner=CIVIL, due_at=T0)
    view = _view(s.events)
    lateness = {b["department_id"]: b["lateness"] for b in view["backlog"]}
    assert lateness == {CIVIL: 2, PETITIONS: 0}
    assert view["escalation_level"] == 2


def test_events_of_a_finished_round_do_not_touch_the_current_one() -> None:
    s = Story()
    s.report()
    s.dispatch(5, 1, CIVIL)
    s.dispatch(50, 2, MEDIATION)
    s.add(MatterAccepted, 51, round=1, by=CIVIL, role="lead")  # late, for round 1
    view = _view(s.events)
    assert view["state"] == "dispatched"
    assert view["backlog"][0]["accepted"] is False


def test_report_fields_never_include_the_citizen_contact() -> None:
    s = Story()
    report = s.report()
    assert isinstance(report, MatterReported)
    fields = matter_fields([timeline_entry(report)], report, report)
    assert "contact" not in fields
    assert fields["summary"] == "a quarrel"
