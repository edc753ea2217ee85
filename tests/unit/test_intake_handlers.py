"""intake's accept flow with hand-written fakes: idempotency, conflicts, broker failure, registry."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.handlers import (
    IntakeUnavailableError,
    RegistryMismatchError,
    ReportConflictError,
    accept_report,
    check_against_registry,
    submission_hash,
)
from services.intake.store import ReportRecord
from shared.contracts import MatterReported, ReportSubmission
from shared.domain import Channel
from tests.fakes.intake import FakePublisher, FakeReportStore, changjia, intake_deps

pytestmark = pytest.mark.unit


def submission(**changes: Any) -> ReportSubmission:
    body = {
        "report_id": "r-1",
        "town_id": "changjia",
        "grid_id": "changjia-g017",
        "micro_grid_id": "changjia-g017-m1",
        "category": "dispute",
        "severity": "minor",
        "summary": "Two neighbours argue about a wall",
    }
    return ReportSubmission.model_validate({**body, **changes})


async def accept(s: ReportSubmission, store: FakeReportStore, broker: FakePublisher) -> Any:
    """What every door does: check against the registry once, then accept."""
    registered = check_against_registry(s, changjia())
    return await accept_report(intake_deps(store, broker), registered, channel=Channel.APP)


async def test_new_report_is_published_once_then_answered_from_the_store() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    first = await accept(submission(), store, broker)
    again = await accept(submission(), store, broker)
    assert not first.duplicate and again.duplicate
    assert first.matter_id == again.matter_id == str(broker.published[0].matter_id)
    assert len(broker.published) == 1
    assert store.records["changjia:r-1"].status == "published"


async def test_same_report_id_with_another_body_is_a_conflict() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    await accept(submission(), store, broker)
    with pytest.raises(ReportConflictError):
        await accept(submission(summary="something else"), store, broker)
    assert len(broker.published) == 1


async def test_broker_down_leaves_the_report_pending_and_a_retry_republishes_the_same_message() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    broker.down = True
    with pytest.raises(IntakeUnavailableError):
        await accept(submission(), store, broker)
    pending = store.records["changjia:r-1"]
    assert pending.status == "pending" and broker.published == []
    broker.down = False
    accepted = await accept(submission(), store, broker)
    assert not accepted.duplicate
    assert [e.message_id for e in broker.published] == [pending.event.message_id]
    assert accepted.matter_id == pending.matter_id


async def test_losing_the_insert_race_follows_the_winners_record() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    winner = ReportRecord("changjia:r-1", submission_hash(submission()), _event(), "published")
    store.lose_insert_race_to = winner
    accepted = await accept(submission(), store, broker)
    assert accepted.duplicate and accepted.matter_id == winner.matter_id
    assert broker.published == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"town_id": "atlantis"}, "town_id"),
        ({"grid_id": "changjia-g999"}, "grid_id"),
        ({"micro_grid_id": "changjia-g017-m9"}, "micro_grid_id"),
        ({"micro_grid_id": "changjia-g018-m1"}, "micro_grid_id"),
    ],
)
async def test_registry_misses_name_the_field_and_publish_nothing(changes: dict[str, str], field: str) -> None:
    store, broker = FakeReportStore(), FakePublisher()
    with pytest.raises(RegistryMismatchError) as raised:
        await accept(submission(**changes), store, broker)
    assert raised.value.field == field
    assert broker.published == [] and store.records == {}


ALLOWANCE = {"category": "service_proxy", "service_item": "minimum_living_allowance"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": "service_proxy", "service_item": "free_lunch"}, "service_item"),
        ({"category": "dispute", "service_item": "minimum_living_allowance"}, "service_item"),
        (ALLOWANCE, "service_details.household_size"),  # required by the item
        ({**ALLOWANCE, "service_details": {"household_size": "many"}}, "service_details.household_size"),
        ({**ALLOWANCE, "service_details": {"household_size": "3", "income": "1"}}, "service_details.income"),
        ({"service_details": {"household_size": "3"}}, "service_details"),  # no item to answer
    ],
)
async def test_service_item_misses_name_the_field_and_publish_nothing(changes: dict[str, Any], field: str) -> None:
    store, broker = FakeReportStore(), FakePublisher()
    with pytest.raises(RegistryMismatchError) as raised:
        await accept(submission(**changes), store, broker)
    assert raised.value.field == field
    assert broker.published == [] and store.records == {}


async def test_a_report_for_a_service_item_carries_it_on_matter_reported() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    await accept(submission(**ALLOWANCE, service_details={"household_size": "4"}), store, broker)
    (event,) = broker.published
    assert (event.service_item, event.service_details) == ("minimum_living_allowance", {"household_size": "4"})
    assert event.category == "service_proxy"


async def test_reported_at_is_occurred_at_in_utc_or_now() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    await accept(submission(occurred_at="2026-03-01T08:30:00+08:00"), store, broker)
    await accept(submission(report_id="r-2"), store, broker)
    assert broker.published[0].reported_at.isoformat() == "2026-03-01T00:30:00+00:00"
    assert broker.published[1].reported_at.utcoffset() is not None
    assert broker.published[0].matter_id != broker.published[1].matter_id


def test_body_hash_ignores_key_order_but_not_content() -> None:
    a = ReportSubmission.model_validate(dict(reversed(submission().model_dump().items())))
    assert submission_hash(a) == submission_hash(submission())
    assert submission_hash(submission(severity="major")) != submission_hash(submission())


def _event() -> MatterReported:
    from uuid import uuid4

    return MatterReported(
        matter_id=uuid4(),
        town_id="changjia",
        grid_id="changjia-g017",
        category="dispute",
        report_id="r-1",
        channel=Channel.APP,
        severity="minor",
        summary="x",
    )


class RegistryNotToBeAsked:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the registry was consulted again ({name})")


async def test_accepting_a_registered_submission_does_not_consult_the_registry_again() -> None:
    store, broker = FakeReportStore(), FakePublisher()
    registered = check_against_registry(submission(), changjia())
    deps = replace(intake_deps(store, broker), registry=RegistryNotToBeAsked())  # type: ignore[arg-type]
    accepted = await accept_report(deps, registered, channel=Channel.APP)
    assert not accepted.duplicate and len(broker.published) == 1


class RefusingStore(FakeReportStore):
    """A store that refuses the write (as a store refuses a document it cannot hold)."""

    async def insert_pending(self, record: ReportRecord) -> bool:
        raise RuntimeError("document refused")


async def test_a_store_failure_is_reported_as_the_store_not_the_broker() -> None:
    broker = FakePublisher()
    with pytest.raises(IntakeUnavailableError) as away:
        await accept(submission(), RefusingStore(), broker)
    assert away.value.dependency == "store" and broker.published == []


async def test_a_broker_failure_is_reported_as_the_broker() -> None:
    broker = FakePublisher()
    broker.down = True
    with pytest.raises(IntakeUnavailableError) as away:
        await accept(submission(), FakeReportStore(), broker)
    assert away.value.dependency == "broker"


@pytest.mark.parametrize("field", ["summary", "report_id", "reporter_id"])
def test_a_nul_character_is_refused_naming_its_field(field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        submission(**{field: "wall\x00 dispute"})
    [error] = refused.value.errors()
    assert error["loc"] == (field,) and "NUL" in error["msg"]
