"""Intake's business logic: validate a report against the registry, make it a matter once.

The flow for every channel (HTTP, Open311, AMQP):

1. ``check_against_registry``: the submission names a town, grid and micro-grid that exist and
   belong together, and a service item (optional) of the town's catalogue and of the report's
   category, with the details its attributes ask for; it answers a ``RegisteredSubmission``,
   the only thing ``accept_report`` takes (so the registry is consulted once per report, whatever the door);
2. ``accept_report``: a ``MatterReported`` is built and inserted ``pending`` in ``intake_reports`` under its
   ``report_id`` (scoped by town, a unique key):
   - new: it is published;
   - same body, published: the earlier ``matter_id`` is answered, nothing is published;
   - same body, pending (an earlier attempt died, or the broker was down): the stored event is
     published again, with its original ``message_id``, so consumers see one message;
   - different body: ``ReportConflictError``;
3. only after the broker confirmed is the record marked ``published`` and the report accepted.

A broker or store failure raises ``IntakeUnavailableError``: no acceptance was given, and a retry
converges on exactly one matter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING
from uuid import uuid4

from pydantic import ValidationError

from services.intake.store import ReportRecord, report_key
from shared import topology
from shared.broker import publish_event
from shared.contracts import MatterReported, ReportSubmission, utc_now
from shared.domain import Channel
from shared.errors import PermanentError, describe_error
from shared.registry import UnknownEntity

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from faststream.message import StreamMessage
    from faststream.rabbit import RabbitBroker
    from prometheus_client import Histogram

    from services.intake.deps import IntakeDeps, Publish
    from services.intake.metrics import IntakeMetrics
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.intake.handlers")

AMQP_ROUTE = f"amqp:{topology.INTAKE_REPORTS.name}"


class RegistryMismatchError(PermanentError):
    """The submission names a town, grid or micro-grid the registry does not know (or mismatched)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ReportConflictError(PermanentError):
    """The ``report_id`` was already used for a different report."""

    field = "report_id"
    reason = "already used for a different report"

    def __init__(self) -> None:
        super().__init__(f"{self.field}: {self.reason}")


class IntakeUnavailableError(Exception):
    """The broker or the store did not take the report: retry later. ``dependency`` says which."""

    def __init__(self, message: str, dependency: str = "broker") -> None:
        super().__init__(message)
        self.dependency = dependency


@dataclass(frozen=True, slots=True)
class Accepted:
    matter_id: str
    duplicate: bool  # True: answered from an earlier acceptance, nothing published now


@dataclass(frozen=True, slots=True)
class RegisteredSubmission:
    """A submission whose town, grid and micro-grid were found in the registry, and fit together."""

    submission: ReportSubmission


def check_against_registry(submission: ReportSubmission, registry: Registry) -> RegisteredSubmission:
    """Raise ``RegistryMismatchError`` naming the field when town, grid and micro-grid don't fit together."""
    try:
        registry.town(submission.town_id)
    except UnknownEntity as error:
        raise RegistryMismatchError("town_id", str(error)) from None
    try:
        grid = registry.grid(submission.grid_id)
    except UnknownEntity as error:
        raise RegistryMismatchError("grid_id", str(error)) from None
    if grid.town_id != submission.town_id:
        raise RegistryMismatchError("grid_id", f"grid {grid.grid_id!r} is not in town {submission.town_id!r}")
    if submission.micro_grid_id is not None:
        try:
            micro = registry.micro_grid(submission.micro_grid_id)
        except UnknownEntity as error:
            raise RegistryMismatchError("micro_grid_id", str(error)) from None
        if micro.grid_id != grid.grid_id:
            raise RegistryMismatchError(
                "micro_grid_id", f"micro-grid {micro.micro_grid_id!r} is not in grid {grid.grid_id!r}"
            )
    if submission.service_item is not None:
        check_service_item(submission, registry)
    elif submission.service_details:
        raise RegistryMismatchError("service_details", "only with a service_item")
    return RegisteredSubmission(submission)


def check_service_item(submission: ReportSubmission, registry: Registry) -> None:
    """The item is in the town's catalogue, of the report's category (the category is never taken
    silently from the item: a report that says one thing and names another is refused), and the
    details answer its attributes: every required one, no unknown one, list values from the list."""
    assert submission.service_item is not None
    try:
        item = registry.service_item(submission.town_id, submission.service_item)
    except UnknownEntity as error:
        raise RegistryMismatchError("service_item", str(error)) from None
    if item.category != submission.category:
        raise RegistryMismatchError(
            "service_item", f"service item {item.code!r} is of category {item.category.value!r}, not of the report's"
        )
    attributes = {a.code: a for a in item.attributes}
    for code in submission.service_details:
        if code not in attributes:
            raise RegistryMismatchError(f"service_details.{code}", f"not an attribute of service item {item.code!r}")
    for attribute in item.attributes:
        value = submission.service_details.get(attribute.code)
        if value is None or not value.strip():
            if attribute.required:
                raise RegistryMismatchError(f"service_details.{attribute.code}", "required by the service item")
            continue
        if attribute.datatype == "number" and not _is_number(value):
            raise RegistryMismatchError(f"service_details.{attribute.code}", "must be a number")
        if attribute.datatype == "singlevaluelist" and value not in attribute.values:
            raise RegistryMismatchError(f"service_details.{attribute.code}", "not one of the listed values")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def submission_hash(submission: ReportSubmission) -> str:
    """sha256 of the canonical JSON of the submission (key order and whitespace don't matter)."""
    canonical = json.dumps(
        submission.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_event(submission: ReportSubmission, channel: Channel) -> MatterReported:
    """A new matter: fresh ``matter_id`` and ``message_id``; reported when it occurred, else now."""
    matter_id = uuid4()
    return MatterReported(
        matter_id=matter_id,
        town_id=submission.town_id,
        grid_id=submission.grid_id,
        correlation_id=str(matter_id),
        category=submission.category,
        report_id=submission.report_id,
        channel=channel,
        origin=submission.origin,
        severity=submission.severity,
        summary=submission.summary,
        micro_grid_id=submission.micro_grid_id,
        location=submission.location,
        reporter_id=submission.reporter_id,
        reporter_role=submission.reporter_role,
        contact=submission.contact,
        attachments=list(submission.attachments),
        reported_at=(submission.occurred_at or utc_now()).astimezone(UTC),
        service_item=submission.service_item,
        service_details=dict(submission.service_details),
    )


async def accept_report(deps: IntakeDeps, registered: RegisteredSubmission, *, channel: Channel) -> Accepted:
    """Turn a registered submission into exactly one published ``MatterReported`` (see module doc)."""
    submission, store = registered.submission, deps.store
    key = report_key(submission.town_id, submission.report_id)
    body_hash = submission_hash(submission)
    try:
        # Insert first (one round trip for a new report, the common case); the unique key catches
        # a retry or a race, and then the stored record decides.
        fresh = ReportRecord(key=key, body_hash=body_hash, event=build_event(submission, channel), status="pending")
        record = fresh if await store.insert_pending(fresh) else await store.get(key)
        if record is None:  # vanished between the insert race and the re-read
            raise IntakeUnavailableError("report record disappeared, retry", "store")
    except IntakeUnavailableError:
        raise
    except Exception as error:
        raise IntakeUnavailableError(f"store unavailable: {describe_error(error)}", "store") from error
    if record.body_hash != body_hash:
        raise ReportConflictError
    ids = {"matter_id": record.matter_id, "message_id": str(record.event.message_id)}
    if record.status == "published":
        log.debug("duplicate report answered from the store", extra=ids)
        return Accepted(record.matter_id, duplicate=True)
    try:
        await deps.publish(record.event)
    except Exception as error:
        log.warning("publishing MatterReported failed", extra={**ids, "error": describe_error(error)})
        raise IntakeUnavailableError(f"broker unavailable: {describe_error(error)}") from error
    try:
        await store.mark_published(key)
    except Exception as error:  # published but not marked: a retry republishes the same message_id
        raise IntakeUnavailableError(f"store unavailable: {describe_error(error)}", "store") from error
    log.debug("matter reported", extra=ids)
    return Accepted(record.matter_id, duplicate=False)


async def on_intake_report(deps: IntakeDeps, submission: ReportSubmission) -> Accepted:
    """A machine source's report from ``intake.reports`` (validated by ``report_decoder``).

    A registry miss or a reused ``report_id`` raise permanent errors: dead-lettered at once with
    the reason. ``IntakeUnavailableError`` is transient: the message is requeued.
    """
    metrics = deps.metrics
    try:
        registered = check_against_registry(submission, deps.registry)
        accepted = await accept_report(deps, registered, channel=Channel.AMQP)
    except RegistryMismatchError as miss:
        metrics.request(AMQP_ROUTE, "invalid")
        metrics.validation_failure(miss.field)
        raise
    except ReportConflictError:
        metrics.request(AMQP_ROUTE, "conflict")
        raise
    except IntakeUnavailableError:
        metrics.request(AMQP_ROUTE, "unavailable")
        raise
    metrics.request(AMQP_ROUTE, "duplicate" if accepted.duplicate else "accepted")
    return accepted


def report_decoder(metrics: IntakeMetrics) -> Callable[..., Awaitable[Any]]:
    """The ``intake.reports`` decoder: FastStream's JSON decoding, then the ``ReportSubmission``
    check, so a schema failure is counted as ``invalid`` before ``DeadLetterMiddleware``
    dead-letters it (malformed JSON fails earlier and is not counted: it never was a report)."""

    async def decode(message: StreamMessage[Any], original: Callable[[StreamMessage[Any]], Awaitable[Any]]) -> Any:
        body = await original(message)
        try:
            ReportSubmission.model_validate(body)
        except ValidationError as error:
            metrics.request(AMQP_ROUTE, "invalid")
            for item in error.errors(include_input=False, include_url=False):
                metrics.validation_failure(str(item["loc"][0]) if item["loc"] else "body")
            raise
        return body

    return decode


def timed_publisher(broker: RabbitBroker, confirm_seconds: Histogram, *, confirm_timeout: float) -> Publish:
    """``publish_event`` on ``broker``, observing the publish-to-confirm latency; a publish the broker
    does not confirm within ``confirm_timeout`` seconds (a blocked or vanished node) fails, and the client
    is answered 503 instead of waiting."""

    async def publish(event: MatterReported) -> None:
        started = time.perf_counter()
        await publish_event(broker, event, confirm_timeout=confirm_timeout)
        confirm_seconds.observe(time.perf_counter() - started)

    return publish
