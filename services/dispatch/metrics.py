"""Business metrics of dispatch (bounded labels: never matter or grid ids)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "gridwhistle_dispatch_commands_total",
            "Commands handled by dispatch, by command type and outcome",
            ["command", "outcome"],
            registry=registry,
        )
        self.escalations = Counter(
            "gridwhistle_dispatch_escalations_total",
            "Deadline escalations recorded, by level",
            ["level"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "gridwhistle_dispatch_outbox_pending",
            "Events committed to a case but not yet confirmed by the broker (this process)",
            registry=registry,
        )
        self.routed = Counter(
            "gridwhistle_dispatch_routed_total",
            "Dispatch rounds started, by tier and priority",
            ["tier", "priority"],
            registry=registry,
        )
