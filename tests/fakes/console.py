"""Hand-written fakes at the console's ports: the stats API reader and the command sender."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.console.deps import ConsoleDeps
from services.console.metrics import ConsoleMetrics
from services.department.reload import work_item_from_matter
from shared.contracts import AcceptMatter, Command, ResolveMatter, ReturnMatter
from tests.factories import changjia_registry

SECRET = SecretStr("console-unit-secret-0123456789abcdef")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class FakeStats:
    def __init__(self, matters: dict[str, dict[str, Any]] | None = None) -> None:
        self.matters = matters or {}

    async def matter(self, matter_id: str) -> dict[str, Any] | None:
        return self.matters.get(matter_id)

    async def open_matters(self, department_id: str, *, limit: int, after: str | None = None) -> dict[str, Any]:
        rows = [m for m in self.matters.values() if department_id in m.get("open_departments", [])]
        return {"open": len(rows), "matters": rows[:limit], "next": None}

    async def town(self, town_id: str) -> dict[str, Any]:
        return {"town_id": town_id, "kpis": {}, "counts": {}, "by_category": {}}

    async def backlog(self, town_id: str) -> dict[str, Any]:
        return {"town_id": town_id, "departments": []}


class FakeCommands:
    def __init__(self) -> None:
        self.sent: list[Command] = []

    async def send(self, department_id: str, matter: dict[str, Any], action: str, text: str) -> Command:
        item = work_item_from_matter(matter, department_id)
        fields: dict[str, Any] = {
            "matter_id": item.matter_id,
            "town_id": item.town_id,
            "grid_id": item.grid_id,
            "actor_id": department_id,
            "round": item.round,
        }
        command: Command
        if action == "accept":
            command = AcceptMatter(**fields)
        elif action == "return":
            command = ReturnMatter(**fields, reason=text)
        else:
            command = ResolveMatter(**fields, note=text)
        self.sent.append(command)
        return command


def console_deps(stats: FakeStats, commands: FakeCommands) -> ConsoleDeps:
    return ConsoleDeps(
        stats=stats,
        commands=commands,
        registry=changjia_registry(),
        secrets=(SECRET,),
        metrics=ConsoleMetrics(CollectorRegistry()),
        clock=lambda: NOW,
    )
