"""Dispatch's unit of work: load, decide, compare-and-set with the outbox, publish — with the
store and publish ports faked (crashes between commit and publish, racing writers, sweepers).
The rules themselves are tested purely in ``test_dispatch_case``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.dispatch.deps import DispatchDeps
from services.dispatch.handlers import on_command, on_matter_reported, sweep_once
from shared.contracts import COMMAND_ADAPTER, AnyCommand, MatterReported
from tests.fakes.dispatch import (
    GRID,
    TOWN,
    FakeCaseStore,
    FakeClock,
    FakePublisher,
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


def broker(deps: DispatchDeps) -> FakePublisher:
    assert isinstance(deps.publish, FakePublisher)
    return deps.publish


async def case_of(deps: DispatchDeps, matter_id: uuid.UUID) -> Any:
    case = await deps.store.snapshot(str(matter_id))
    assert case is not None
    return case


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
    publisher = FakePublisher()  # one broker to count what both publish
    replica_a, replica_b = make_deps(clock, store, publisher), make_deps(clock, store, publisher)
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
    """An accept parked before its report; the report's transition (which applies the parked accept
    too) commits, then the broker goes away before its events are out."""
    deps = make_deps(clock)
    event = reported("safety_hazard", "urgent")
    assert (await on_command(deps, cmd("accept_matter", event.matter_id, EMERGENCY, 1))).outcome == "parked"
    broker(deps).fail_next = 1
    with pytest.raises(ConnectionError):
        await on_matter_reported(deps, event)
    stored = await deps.store.load(str(event.matter_id))
    assert stored is not None and stored.in_flight and stored.case.state == "accepted"
    assert broker(deps).events() == []
    clock.advance(seconds=11)
    return deps, event


async def test_a_parked_command_applied_with_a_transition_is_published_when_it_is_redelivered_after_a_crash() -> None:
    deps, event = await _parked_accept_then_report_dies_after_commit(FakeClock())
    assert (await on_matter_reported(deps, event)).outcome == "duplicate"  # the redelivery
    case = await case_of(deps, event.matter_id)
    assert case.pending == [] and case.state == "accepted"
    assert [e["event_type"] for e in broker(deps).events()] == ["matter_dispatched", "matter_accepted"]


async def test_the_sweeper_publishes_a_stalled_outbox_with_the_parked_commands_it_applied() -> None:
    deps, event = await _parked_accept_then_report_dies_after_commit(FakeClock())
    await sweep_once(deps)  # the message is not redelivered here: the sweeper completes the transition
    case = await case_of(deps, event.matter_id)
    assert case.pending == [] and case.state == "accepted"
    assert [e["event_type"] for e in broker(deps).events()] == ["matter_dispatched", "matter_accepted"]
    stored = await deps.store.load(str(event.matter_id))
    assert stored is not None and not stored.in_flight


async def test_commands_are_counted_by_type_and_outcome_including_parked_ones_applied_later() -> None:
    deps = make_deps()
    event = reported("safety_hazard", "urgent")
    await on_command(deps, cmd("accept_matter", event.matter_id, EMERGENCY, 1))
    await on_matter_reported(deps, event)
    await on_command(deps, cmd("whistle_matter", event.matter_id, EMERGENCY, 1))

    def count(command: str, outcome: str) -> float:
        return float(deps.metrics.commands.labels(command, outcome)._value.get())

    assert (count("accept_matter", "parked"), count("accept_matter", "applied")) == (1, 1)
    assert count("whistle_matter", "rejected") == 1
