"""The one broker factory, publishing helpers and the dead-letter middleware.

Policy, written once here for every service:
- publishing: persistent messages, publisher confirms, ``mandatory`` and an unroutable
  publish raised as ``UnroutableError`` (FastStream's default returns a non-ack instead);
- consuming: bounded prefetch (FastStream's default is unlimited) and ``NACK_ON_ERROR``
  stated on every subscriber; a failure the message can never recover from (validation,
  ``PermanentError``), or one that has used up its deliveries, is published to ``gw.dead``
  with the reason in its headers and then acked; anything else is requeued. The queue's
  own ``x-delivery-limit`` remains the backstop when a consumer dies mid-message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any, ClassVar

import aio_pika
from aio_pika import RobustConnection
from aio_pika.exceptions import DeliveryError
from faststream import BaseMiddleware
from faststream.exceptions import HandlerException
from faststream.rabbit import Channel, RabbitBroker
from pamqp.commands import Basic
from yarl import URL

from shared import topology
from shared.errors import ConfirmLostError, UnroutableError, describe_error, is_permanent
from shared.transport_metrics import BoundedRabbitPrometheusMiddleware

if TYPE_CHECKING:
    from types import TracebackType

    from prometheus_client import CollectorRegistry

    from shared.contracts import Command, Event, RecordSupervisionVisit, SupervisionVisitRecorded
    from shared.settings import GwSettings

log = logging.getLogger("gridwhistle.broker")

PUBLISH_TIMEOUT = 10.0
"""Seconds a publish waits for its confirm unless the caller says otherwise (``GW_PUBLISH_TIMEOUT``)."""


class ClusterConnection(RobustConnection):
    """aio-pika's robust connection over every node of a cluster: each (re)connect attempt goes to
    the next node of the list, starting at a random one so that clients spread over the nodes.

    aio-pika retries one URL for ever (its maintainers point to round-robin DNS, which a local
    cluster of three ports cannot use); this overrides the one private step that opens the
    transport (``RobustConnection.__connect_transport``, pinned by a unit test), so a lost node's
    clients move to the next node after ``reconnect_interval`` and the channels, queues and
    consumers are restored there by aio-pika as usual.
    """

    NODES: ClassVar[tuple[URL, ...]] = ()

    def __init__(self, url: URL, loop: Any = None, **kwargs: Any) -> None:
        super().__init__(url, loop=loop, **kwargs)
        self._attempt = random.randrange(len(self.NODES)) if self.NODES else 0

    def next_node(self) -> URL:
        """The node the next connection attempt goes to (and moves the turn on)."""
        node = self.NODES[self._attempt % len(self.NODES)]
        self._attempt += 1
        return node

    async def _RobustConnection__connect_transport(self) -> None:  # noqa: N802 - overrides aio-pika's private step
        if self.NODES:
            self.url = self.next_node()
            log.info("connecting to broker node", extra={"node": f"{self.url.host}:{self.url.port}"})
        await super()._RobustConnection__connect_transport()  # type: ignore[misc]


def cluster_connection(nodes: list[str]) -> type[ClusterConnection]:
    """A :class:`ClusterConnection` class for these node URLs (``GwSettings.amqp_nodes``)."""
    return type("ClusterConnection", (ClusterConnection,), {"NODES": tuple(URL(node) for node in nodes)})


def subscriber_channel(prefetch: int) -> Channel:
    """Channel for one subscriber: bounded prefetch, confirms, unroutable raises."""
    return Channel(prefetch_count=prefetch, publisher_confirms=True, on_return_raises=True)


def delivery_count(raw: aio_pika.IncomingMessage) -> int:
    value = (raw.headers or {}).get(topology.HEADER_DELIVERY_COUNT, 0)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


class DeadLetterMiddleware(BaseMiddleware):
    """Dead-letters, with the reason, what failed permanently or ran out of deliveries."""

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        if exc_val is None or isinstance(exc_val, HandlerException | BaseExceptionGroup):
            return False
        if not isinstance(exc_val, Exception):
            return False  # cancellation, shutdown: let the message be redelivered
        raw = self.msg
        if not isinstance(raw, aio_pika.IncomingMessage):
            return False
        attempts = delivery_count(raw) + 1
        permanent = is_permanent(exc_val)
        if not permanent and attempts < topology.DELIVERY_LIMIT:
            log.warning(
                "handler failed, message requeued",
                extra={"attempt": attempts, "error": describe_error(exc_val), "message_id": raw.message_id},
            )
            return False
        subscriber = self.context.get_local("handler_")
        queue_name = getattr(getattr(subscriber, "queue", None), "name", None)
        broker = self.context.get("broker")
        if not queue_name or broker is None:
            return False
        reason = (
            describe_error(exc_val) if permanent else f"gave up after {attempts} deliveries: {describe_error(exc_val)}"
        )
        headers: dict[str, Any] = dict(raw.headers or {})
        headers.update(
            {
                topology.HEADER_ERROR: reason,
                topology.HEADER_ERROR_TYPE: "permanent" if permanent else "retries_exhausted",
                topology.HEADER_SOURCE_QUEUE: queue_name,
                topology.HEADER_ORIGINAL_EXCHANGE: raw.exchange or "",
                topology.HEADER_ORIGINAL_ROUTING_KEY: raw.routing_key or "",
            }
        )
        try:
            await publish_confirmed(
                broker,
                raw.body,
                exchange=topology.DEAD,
                routing_key=queue_name,
                headers=headers,
                content_type=raw.content_type,
                message_id=raw.message_id,
                correlation_id=raw.correlation_id,
                message_type=raw.type,
            )
        except Exception as publish_error:  # keep the message: requeue instead
            log.error("dead-lettering failed, message requeued", extra={"error": describe_error(publish_error)})
            return False
        log.warning(
            "message dead-lettered",
            extra={"queue": queue_name, "reason": reason, "message_id": raw.message_id},
        )
        return True  # handled: the acknowledgement middleware acks it


def make_broker(
    settings: GwSettings,
    *,
    service: str,
    metrics_registry: CollectorRegistry | None = None,
    amqp_url: str | None = None,
) -> RabbitBroker:
    """The broker every Gridwhistle process uses (no connection until ``start()``)."""
    middlewares: list[Any] = [DeadLetterMiddleware]
    if metrics_registry is not None:
        middlewares.insert(0, BoundedRabbitPrometheusMiddleware(registry=metrics_registry, app_name=service))
    url = amqp_url or settings.amqp_url
    nodes = settings.model_copy(update={"amqp_url": url}).amqp_nodes
    broker = RabbitBroker(
        nodes[0],
        specification_url=str(URL(url).with_user(None)),
        default_channel=subscriber_channel(settings.prefetch),
        graceful_timeout=settings.shutdown_budget[1],
        app_id=f"gridwhistle-{service}",
        middlewares=middlewares,
        logger=logging.getLogger(f"gridwhistle.{service}.faststream"),
        log_level=logging.DEBUG,  # per-message "received/processed" lines stay out of INFO
        reconnect_interval=2.0,
    )
    # FastStream passes its connection arguments to aio-pika's ``connect_robust``; it has no
    # parameter for the connection class, so the one key is added here (tested in test_broker_policy).
    broker._connection_kwargs["connection_class"] = cluster_connection(nodes)
    return broker


async def publish_confirmed(
    broker: RabbitBroker,
    body: Any,
    *,
    exchange: Any,
    routing_key: str,
    message_id: str | None = None,
    correlation_id: str | None = None,
    message_type: str | None = None,
    headers: dict[str, Any] | None = None,
    content_type: str | None = "application/json",
    confirm_timeout: float = PUBLISH_TIMEOUT,
) -> None:
    """Publish persistently and return only once the broker confirmed it (within ``confirm_timeout`` s).

    Raises ``UnroutableError`` when no queue is bound for the routing key, ``DeliveryError`` (or a
    connection error) when the broker did not take it, ``TimeoutError`` when it did not confirm in time,
    ``ConfirmLostError`` when the connection closed while it waited for the confirm.
    """
    try:
        # FastStream's own ``timeout`` does not bound a publish on a connection the broker blocked
        # (a resource alarm): it waited for the alarm to clear. The outer bound makes it fail in time.
        async with asyncio.timeout(confirm_timeout):
            result = await broker.publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                persist=True,
                mandatory=True,
                message_id=message_id,
                correlation_id=correlation_id,
                message_type=message_type,
                headers=headers,
                content_type=content_type,
                timeout=confirm_timeout,
            )
    except DeliveryError as error:
        if error.message is not None:  # the broker returned the message: unroutable
            raise UnroutableError(f"no queue bound for {exchange_name(exchange)}/{routing_key}") from error
        raise
    except asyncio.CancelledError as error:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task is being cancelled (shutdown): not the broker's doing
        # aiormq fails a pending confirm with its reader's CancelledError when it drops a connection
        # (a node that stopped answering, "No frames were received"): a broker failure, which must
        # reach the caller as an Exception (intake answers 503), not pass as a cancellation (a 500)
        raise ConfirmLostError(
            f"connection closed before the publish to {exchange_name(exchange)} was confirmed"
        ) from error
    if result is not None and not isinstance(result, Basic.Ack):
        raise UnroutableError(f"publish to {exchange_name(exchange)}/{routing_key} not confirmed: {result!r}")


def exchange_name(exchange: Any) -> str:
    return str(getattr(exchange, "name", exchange))


def _correlation(message: Event | Command | SupervisionVisitRecorded | RecordSupervisionVisit) -> str:
    """The message's correlation id, else the matter's (or, for a visit, the visit's) id."""
    if message.correlation_id:
        return message.correlation_id
    subject = getattr(message, "matter_id", None) or getattr(message, "visit_id", None)
    return str(subject or message.message_id)


async def publish_event(
    broker: RabbitBroker, event: Event | SupervisionVisitRecorded, *, confirm_timeout: float = PUBLISH_TIMEOUT
) -> None:
    """Publish an event on ``gw.events`` with its contract routing key."""
    event_type = event.event_type
    await publish_confirmed(
        broker,
        event.model_dump(mode="json"),
        exchange=topology.EVENTS,
        routing_key=topology.event_routing_key(event.town_id, event.grid_id, event_type),
        message_id=str(event.message_id),
        correlation_id=_correlation(event),
        message_type=event_type,
        confirm_timeout=confirm_timeout,
    )


async def publish_command(
    broker: RabbitBroker, command: Command | RecordSupervisionVisit, *, owner: bool = True
) -> None:
    """Publish a command on ``gw.commands`` with its contract routing key (``owner=False``: as a
    client without configure rights, which does not declare the exchange)."""
    command_type = command.command_type
    await publish_confirmed(
        broker,
        command.model_dump(mode="json"),
        exchange=topology.COMMANDS if owner else topology.existing(topology.COMMANDS),
        routing_key=topology.command_routing_key(command.town_id, command_type),
        message_id=str(command.message_id),
        correlation_id=_correlation(command),
        message_type=command_type,
    )
