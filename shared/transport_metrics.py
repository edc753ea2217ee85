"""FastStream transport metrics with bounded ``handler``/``destination`` labels.

FastStream's ``RabbitPrometheusMiddleware`` labels every series with ``<exchange>.<routing key>``,
and our event keys carry the grid id (``changjia.changjia-g017.matter_reported``): at county scale
that is thousands of series per metric. Relabelling in Prometheus cannot fix it correctly (two
counters rewritten to one label set are duplicate samples, and Prometheus keeps one and drops the
other, so rates come out wrong), so the labels are bounded here, where the counter is incremented:

- ``gw.events``   ``<town>.<grid>.<event_type>``            -> ``gw.events.<town>.*.<event_type>``
- ``gw.dispatch`` ``<town>.<tier>.<owner>.<priority>``      -> ``gw.dispatch.<town>.<tier>.*.<priority>``
- ``gw.intake``   ``<town>.<source>``                       -> ``gw.intake.<town>.*``
- ``gw.commands`` and ``gw.dead`` keys are bounded already (town x command type, queue name);
- any other exchange (the default one, reply queues)        -> ``<exchange>.*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream.prometheus.middleware import PrometheusMiddleware
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider

from shared import topology

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from aio_pika import IncomingMessage
    from faststream.message.message import StreamMessage
    from faststream.prometheus import ConsumeAttrs
    from faststream.rabbit.response import RabbitPublishCommand
    from prometheus_client import CollectorRegistry

WILDCARD = "*"


def bounded_destination(exchange: str, routing_key: str) -> str:
    """``<exchange>.<routing key>`` with the per-grid / per-owner parts replaced by ``*``."""
    exchange = exchange or "default"
    parts = routing_key.split(".")
    if exchange == topology.EVENTS.name and len(parts) >= 3:
        key = f"{parts[0]}.{WILDCARD}.{'.'.join(parts[2:])}"
    elif exchange == topology.DISPATCH.name and len(parts) >= 4:
        key = f"{parts[0]}.{parts[1]}.{WILDCARD}.{parts[-1]}"
    elif exchange == topology.INTAKE.name and len(parts) >= 2:
        key = f"{parts[0]}.{WILDCARD}"
    elif exchange in (topology.COMMANDS.name, topology.DEAD.name):
        key = routing_key
    else:
        key = WILDCARD
    return f"{exchange}.{key}"


class BoundedRabbitMetricsSettingsProvider(RabbitMetricsSettingsProvider):
    """FastStream's Rabbit provider, with ``bounded_destination`` for both directions."""

    def get_consume_attrs_from_message(self, msg: StreamMessage[IncomingMessage]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        raw = msg.raw_message
        attrs["destination_name"] = bounded_destination(raw.exchange or "", raw.routing_key or "")
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: RabbitPublishCommand) -> str:
        return bounded_destination(cmd.exchange.name or "", cmd.destination)


class BoundedRabbitPrometheusMiddleware(PrometheusMiddleware[Any, Any]):
    """Drop-in for ``RabbitPrometheusMiddleware``: same ``faststream_*`` metrics, bounded labels."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        app_name: str,
        metrics_prefix: str = "faststream",
        received_messages_size_buckets: Sequence[float] | None = None,
        custom_labels: dict[str, str | Callable[[Any], str]] | None = None,
    ) -> None:
        super().__init__(
            settings_provider_factory=lambda _: BoundedRabbitMetricsSettingsProvider(),
            registry=registry,
            app_name=app_name,
            metrics_prefix=metrics_prefix,
            received_messages_size_buckets=received_messages_size_buckets,
            custom_labels=custom_labels,
        )
