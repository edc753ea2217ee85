"""What supervision visits, follow-ups and squad assignments add to the counters, fed with what
dispatch really publishes (``tests/stories.py``), applied through the stats handler on the fake store."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from services.stats.handlers import when_events_arrive_update_read_models
from shared.contracts import SupervisionVisitRecorded, visit_event_id
from tests.fakes.dispatch import INSTRUCTOR
from tests.fakes.stats import FakeEventStore, stats_deps
from tests.stories import T0, Matter

pytestmark = pytest.mark.unit

GRID = "changjia-g017"
MICRO = "changjia-g017-m1-staff"


def recorded_visit(matter_ids: list[uuid.UUID], visit_id: uuid.UUID | None = None) -> SupervisionVisitRecorded:
    visit = visit_id or uuid.uuid4()
    return SupervisionVisitRecorded(
        message_id=visit_event_id(visit),
        town_id="changjia",
        grid_id=GRID,
        visit_id=visit,
        instructor_id=INSTRUCTOR,
        visited_at=T0,
        occurred_at=T0,
        matter_ids=matter_ids,
    )


def totals(store: FakeEventStore, prefix: str = "totals.") -> Counter[str]:
    return Counter({k.removeprefix(prefix): v for k, v in store.figures.items() if k.startswith(prefix)})


async def apply(store: FakeEventStore, events: list[Any]) -> set[str]:
    return await when_events_arrive_update_read_models(stats_deps(store), events)


def closed_minor_matter(*, follow_up_before_close: bool) -> Matter:
    m = Matter("living_environment", "minor", micro_grid_id="changjia-g017-m1").report()
    if follow_up_before_close:
        assert m.follow_up(INSTRUCTOR).outcome == "applied"
    for kind, fields in (("accept_matter", {}), ("resolve_matter", {}), ("record_feedback", {"satisfaction": 5})):
        assert m.command(kind, MICRO, **fields).outcome == "applied"
    if not follow_up_before_close:
        assert m.follow_up(INSTRUCTOR).outcome == "applied"
    return m


async def test_a_visit_counts_once_for_the_town_its_grid_and_its_instructor() -> None:
    store = FakeEventStore()
    visit = recorded_visit([uuid.uuid4()])
    assert await apply(store, [visit, visit]) == {str(visit.message_id)}
    assert await apply(store, [visit]) == set()  # redelivered later: nothing changes
    assert totals(store)["visits"] == 1
    assert store.figures[f"grids.{GRID}.visits"] == 1
    assert store.figures[f"instructors.{INSTRUCTOR}.visits"] == 1
    assert not any(k.startswith("counts.") for k in store.figures)  # a visit has no category


@pytest.mark.parametrize("before_close", [True, False])
async def test_followed_up_matter_closed_counts_once_as_supervised_to_resolution(before_close: bool) -> None:
    store = FakeEventStore()
    m = closed_minor_matter(follow_up_before_close=before_close)
    await apply(store, m.events)
    assert m.follow_up(INSTRUCTOR).outcome == "applied"  # a second visit to the same closed matter
    await apply(store, m.events)  # the whole history again (duplicates) plus the new follow-up
    figures = totals(store)
    assert (figures["closed"], figures["closed_followed_up"]) == (1, 1)
    assert (figures["followed_up"], figures["followed_up_matters"]) == (2, 1)
    assert store.figures[f"instructors.{INSTRUCTOR}.followed_up"] == 2


async def test_a_closed_matter_nobody_followed_up_is_not_supervised_to_resolution() -> None:
    store = FakeEventStore()
    m = Matter("dispute", "minor", micro_grid_id="changjia-g017-m1").report()
    for kind, fields in (("accept_matter", {}), ("resolve_matter", {}), ("record_feedback", {"satisfaction": 4})):
        assert m.command(kind, MICRO, **fields).outcome == "applied"
    await apply(store, m.events)
    assert totals(store)["closed"] == 1 and totals(store)["closed_followed_up"] == 0


async def test_a_squad_assignment_counts_the_assignment_and_the_squads_people() -> None:
    store = FakeEventStore()
    m = Matter("living_environment", "minor", micro_grid_id="changjia-g017-m1").report()
    assert m.command("assign_squad", MICRO, squad_id="changjia-g017-s1").outcome == "applied"
    assert m.command("assign_squad", MICRO, squad_id="changjia-g017-s2").outcome == "applied"
    await apply(store, m.events)
    await apply(store, m.events)  # redelivered: counted once
    (first, second) = m.of("squad_assigned")
    figures = totals(store)
    assert figures["squad_assignments"] == 2
    assert figures["squad_volunteers"] == first.volunteers + second.volunteers
    assert store.figures[f"grids.{GRID}.squad_assignments"] == 2
    assert store.figures["counts.living_environment.squad_assignments"] == 2
