"""The console's ports, built once in ``create_app``: where it reads (the stats API) and how it
sends commands (the department-side client over the broker). It has no store: it writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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

    async def town(self, town_id: str) -> Json: ...

    async def backlog(self, town_id: str) -> Json: ...


class CommandSender(Protocol):
    """``services.console.commands.DepartmentCommands``: one command for a department's matter."""

    async def send(self, department_id: str, matter: Json, action: str, text: str) -> Command: ...


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    stats: StatsReader
    commands: CommandSender
    registry: Registry
    secrets: tuple[SecretStr, ...]
    """Accepted signing secrets of credentials: the current one first (``GW_TOKEN_SECRET``)."""
    metrics: ConsoleMetrics
    clock: Callable[[], datetime]
    refresh_seconds: float = 3.0
    session_hours: int = 12
    page_size: int = 50
