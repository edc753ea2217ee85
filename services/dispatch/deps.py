"""The ports dispatch's handlers work with: one frozen dataclass, built in ``app.create_app``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from services.dispatch.case_state import Context
from shared import topology
from shared.broker import publish_confirmed, publish_event
from shared.contracts import SupervisionVisitRecorded

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from faststream.rabbit import RabbitBroker

    from services.dispatch.metrics import DispatchMetrics
    from services.dispatch.rules import RuleBook
    from services.dispatch.store import CaseRepository
    from shared.contracts import Event
    from shared.registry import Registry

    Publish = Callable[[Event | SupervisionVisitRecorded, Sequence[str]], Awaitable[None]]
    """Publish an event (confirmed) on ``gw.events`` and its body on ``gw.dispatch`` under each key."""


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DispatchDeps:
    store: CaseRepository
    publish: Publish
    rules: RuleBook
    registry: Registry
    metrics: DispatchMetrics
    clock: Callable[[], datetime] = system_clock
    park_timeout: timedelta = timedelta(minutes=15)
    outbox_grace: timedelta = timedelta(seconds=10)
    max_retries: int = 100
    prefetch: int = 32

    def context(self) -> Context:
        return Context(self.rules, self.registry, self.clock(), self.park_timeout)


def broker_publisher(broker: RabbitBroker) -> Publish:
    """The ``publish`` port on a real (or in-memory) broker."""

    async def publish(event: Event | SupervisionVisitRecorded, dispatch_keys: Sequence[str]) -> None:
        await publish_event(broker, event)
        for key in dispatch_keys:
            assert not isinstance(event, SupervisionVisitRecorded)  # a visit is no work item
            await publish_confirmed(
                broker,
                event.model_dump(mode="json"),
                exchange=topology.DISPATCH,
                routing_key=key,
                message_id=str(event.message_id),
                correlation_id=event.correlation_id or str(event.matter_id),
                message_type=event.event_type,
            )

    return publish
