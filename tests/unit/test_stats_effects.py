"""Counter effects: what one event adds, and to which day bucket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.stats.effects import counter_update, day_of, department_id_of, department_key
from services.stats.queries import kpis
from shared.contracts import (
    MatterAccepted,
    MatterClosed,
    MatterCommandRejected,
    MatterDispatched,
    MatterEscalated,
    MatterResolved,
)
from shared.domain import Category, Priority, Severity, Tier
from shared.registry import Registry
from tests import factories
from tests.factories import changjia_registry

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
CIVIL = "changjia.civil_affairs"
PETITIONS = "changjia.petitions"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return changjia_registry()


def _base(at: datetime | None = None) -> dict[str, Any]:
    return {
        "matter_id": uuid.uuid4(),
        "town_id": "changjia",
        "grid_id": "changjia-g003",
        "category": Category.SAFETY_HAZARD,
        "occurred_at": at or datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
        "sequence": 2,
        "matter": factories.snapshot(),  # counting does not read it
    }


def test_counts_land_on_the_local_calendar_day() -> None:
    late_utc = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)  # 01:30 on the 21st in Changjia
    assert day_of(late_utc, SHANGHAI) == "2026-11-21"
    assert day_of(late_utc, UTC) == "2026-11-20"


def test_department_ids_are_written_without_dots_in_field_names(registry: Registry) -> None:
    event = MatterDispatched(
        **_base(),
        round=1,
        severity=Severity.HARD,
        tier=Tier.DEPARTMENT,
        lead=CIVIL,
        supporting=[PETITIONS, CIVIL],
        priority=Priority.P2,
        rule_id="r",
        accept_by=datetime.now(UTC),
        resolve_by=datetime.now(UTC),
    )
    inc = counter_update(event, registry, SHANGHAI).increments()
    assert inc["departments.changjia~civil_affairs.dispatched"] == 1  # listed twice, counted once
    assert inc["departments.changjia~civil_affairs.dispatched_lead"] == 1
    assert inc["departments.changjia~petitions.dispatched"] == 1
    assert "departments.changjia~petitions.dispatched_lead" not in inc
    for path in ("totals.dispatched", "counts.safety_hazard.dispatched", "grids.changjia-g003.dispatched"):
        assert inc[path] == 1
    assert all(not part.startswith("$") for path in inc for part in path.split("."))
    assert department_id_of(department_key(CIVIL)) == CIVIL


def test_supporting_acceptance_counts_for_the_department_but_not_the_matter(registry: Registry) -> None:
    event = MatterAccepted(**_base(), round=1, by=PETITIONS, role="supporting", waited_seconds=1.2345, on_time=False)
    inc = counter_update(event, registry, SHANGHAI).increments()
    assert inc == {
        "departments.changjia~petitions.accepted": 1,
        "departments.changjia~petitions.accept_ms": 1234,
    }


def test_lead_resolution_counts_everywhere_with_exact_millisecond_sums(registry: Registry) -> None:
    event = MatterResolved(**_base(), round=1, by=CIVIL, role="lead", handling_seconds=3600.0005, supervised=True)
    inc = counter_update(event, registry, SHANGHAI).increments()
    assert inc["totals.resolved"] == inc["totals.resolved_on_time"] == inc["totals.supervised"] == 1
    assert inc["totals.resolve_ms"] == 3600000
    assert inc["departments.changjia~civil_affairs.resolved"] == 1


def test_first_escalation_is_an_sla_breach_and_later_levels_are_not(registry: Registry) -> None:
    due = datetime.now(UTC)
    first = MatterEscalated(**_base(), round=1, level=1, deadline="resolve", owner=CIVIL, due_at=due)
    second = MatterEscalated(**_base(), round=1, level=2, deadline="resolve", owner=CIVIL, due_at=due)
    inc1 = counter_update(first, registry, SHANGHAI).increments()
    inc2 = counter_update(second, registry, SHANGHAI).increments()
    assert inc1["departments.changjia~civil_affairs.breached_resolve"] == 1
    assert inc1["totals.escalated_l1"] == 1
    assert "departments.changjia~civil_affairs.breached_resolve" not in inc2
    assert inc2["departments.changjia~civil_affairs.escalated_l2"] == 1


def test_grid_staff_owner_is_not_counted_as_a_department(registry: Registry) -> None:
    event = MatterEscalated(
        **_base(), round=1, level=1, deadline="accept", owner="changjia-g003-leader", due_at=datetime.now(UTC)
    )
    inc = counter_update(event, registry, SHANGHAI).increments()
    assert not any(path.startswith("departments.") for path in inc)
    assert inc["totals.breached_accept"] == 1


def test_rejected_command_is_counted_per_town_as_rejected(registry: Registry) -> None:
    event = MatterCommandRejected(
        **_base(), command_id=uuid.uuid4(), command_type="accept_matter", actor_id=CIVIL, reason="round over"
    )
    update = counter_update(event, registry, SHANGHAI)
    assert update.bucket_id == f"changjia|2026-11-20|{event.message_id.int % 4:02d}"
    assert update.increments()["totals.rejected"] == 1


def test_closing_counts_citizen_requests_and_supervised_matters_once_per_matter(registry: Registry) -> None:
    citizen = MatterClosed(**_base(), round=3, by="changjia-g003-member1", satisfaction=5, origin="citizen_request")
    supervised = MatterClosed(**_base(), round=2, by="changjia-g003-member1", satisfaction=4, supervised=True)
    inc_citizen = counter_update(citizen, registry, SHANGHAI).increments()
    inc_supervised = counter_update(supervised, registry, SHANGHAI).increments()
    assert inc_citizen["totals.closed"] == inc_citizen["totals.closed_citizen_requests"] == 1
    assert "totals.closed_supervised" not in inc_citizen
    assert inc_supervised["totals.closed_supervised"] == 1
    assert "totals.closed_citizen_requests" not in inc_supervised


def test_kpis_are_none_without_a_denominator_and_ratios_otherwise() -> None:
    from collections import Counter

    assert kpis(Counter())["closure_rate"] is None
    figures = Counter(reported=4, closed=3, dispatched=5, accepted=4, accept_ms=8000, feedback=2, satisfaction_sum=9)
    result = kpis(figures)
    assert result["closure_rate"] == 0.75
    assert result["acceptance_rate"] == 0.8
    assert result["mean_time_to_accept_seconds"] == 2.0
    assert result["satisfaction"] == 4.5
    assert result["on_time_rate"] is None
