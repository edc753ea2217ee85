"""The console's metrics (bounded labels: page, command, outcome; never a matter or department id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class ConsoleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pages = Counter(
            "gridwhistle_console_pages_total", "Pages and fragments served", ["page"], registry=registry
        )
        self.commands = Counter(
            "gridwhistle_console_commands_total", "Commands sent to dispatch", ["command", "outcome"], registry=registry
        )
        self.refusals = Counter(
            "gridwhistle_console_refusals_total",
            "Requests refused (401 sign-in, 403 not yours)",
            ["reason"],
            registry=registry,
        )
