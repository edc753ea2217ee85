"""The console's ports, built once in ``create_app``: where it reads (the stats API) and how it
sends commands (the department-side client over the broker), and where grid staff's reports go
(intake's HTTP API). It has no store: it writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydantic import SecretStr

    from services.console.metrics import ConsoleMetrics
    from shared.contracts import Command
    from shared.registry import Registry

Json = dict[str, Any]


class StatsReader(Protocol):
    """``services.console.stats_client.HttpStatsReader`` (a fake in unit tests). ``None``: unknown."""

    async def matter(self, matter_id: str) -> Json | None: ...

    async def open_matters(self, department_id: str, *, limit: int, after: str | None = None) -> Json: ...

    async def grid_open_matters(self, grid_id: str, *, limit: int, after: str | None = None) -> Json: ...

    async def town_open_matters(
        self, town_id: str, *, only: str | None, limit: int, after: str | None = None
    ) -> Json: ...

    async def town(self, town_id: str) -> Json: ...

    async def town_daily(self, town_id: str) -> Json: ...

    async def backlog(self, town_id: str) -> Json: ...


class CommandSender(Protocol):
    """``services.console.commands.DepartmentCommands``: one command for a department's matter."""

    async def send(self, department_id: str, matter: Json, action: str, text: str) -> Command: ...

    async def whistle(self, staff_id: str, matter: Json, reason: str) -> Command: ...

    async def feedback(self, staff_id: str, matter: Json, satisfaction: int) -> Command: ...

    async def reroute(
        self, supervisor_id: str, matter: Json, lead: str, supporting: list[str], reason: str
    ) -> Command: ...


class ReportSender(Protocol):
    """``services.console.intake_client.HttpIntakeReporter``: a grid's report to intake's HTTP API."""

    async def report(self, town_id: str, grid_id: str, body: Json) -> Json: ...


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    stats: StatsReader
    commands: CommandSender
    registry: Registry
    secrets: tuple[SecretStr, ...]
    """Accepted signing secrets of credentials: the current one first (``GW_TOKEN_SECRET``)."""
    metrics: ConsoleMetrics
    clock: Callable[[], datetime]
    reports: ReportSender
    zone: tzinfo = UTC
    """The time zone pages show times in (``GW_CONSOLE_TIMEZONE``, Asia/Shanghai)."""
    refresh_seconds: float = 3.0
    session_hours: int = 12
    page_size: int = 50
