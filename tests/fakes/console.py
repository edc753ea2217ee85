"""Hand-written fakes at the console's ports: the stats API reader and the command sender."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.console.deps import ConsoleDeps
from services.console.metrics import ConsoleMetrics
from services.department.reload import work_item_from_matter
from shared.contracts import (
    AcceptMatter,
    Command,
    RecordFeedback,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)
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

    def _listed(self, key: str, value: str) -> list[dict[str, Any]]:
        return [m for m in self.matters.values() if m.get(key) == value and m.get("state") != "closed"]

    async def grid_open_matters(self, grid_id: str, *, limit: int, after: str | None = None) -> dict[str, Any]:
        rows = self._listed("grid_id", grid_id)
        return {"grid_id": grid_id, "open": len(rows), "matters": rows[:limit], "next": None}

    async def town_open_matters(
        self, town_id: str, *, only: str | None, limit: int, after: str | None = None
    ) -> dict[str, Any]:
        rows = [m for m in self._listed("town_id", town_id) if only is None or m.get(only)]
        return {"town_id": town_id, "open": len(rows), "matters": rows[:limit], "next": None}

    async def town_daily(self, town_id: str) -> dict[str, Any]:
        return {"town_id": town_id, "days": [{"day": "2026-03-01", "reported": 3, "closed": 1}]}

    async def town(self, town_id: str) -> dict[str, Any]:
        return {"town_id": town_id, "kpis": {}, "counts": {}, "by_category": {}}

    async def backlog(self, town_id: str) -> dict[str, Any]:
        return {"town_id": town_id, "departments": []}


class FakeReports:
    """Intake's HTTP API as the console sees it: the bodies posted, a 202 answer per report_id."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, dict[str, Any]]] = []

    async def report(self, town_id: str, grid_id: str, body: dict[str, Any]) -> dict[str, Any]:
        duplicate = any(b["report_id"] == body["report_id"] for _, _, b in self.posted)
        self.posted.append((town_id, grid_id, body))
        return {"matter_id": str(uuid.uuid5(uuid.NAMESPACE_URL, body["report_id"])), "duplicate": duplicate}


class FakeCommands:
    def __init__(self) -> None:
        self.sent: list[Command] = []

    def _fields(self, actor_id: str, matter: dict[str, Any]) -> dict[str, Any]:
        return {
            "matter_id": matter["matter_id"],
            "town_id": matter["town_id"],
            "grid_id": matter["grid_id"],
            "actor_id": actor_id,
            "round": matter["round"],
        }

    async def whistle(self, staff_id: str, matter: dict[str, Any], reason: str) -> Command:
        command = WhistleMatter(**self._fields(staff_id, matter), reason=reason)
        self.sent.append(command)
        return command

    async def feedback(self, staff_id: str, matter: dict[str, Any], satisfaction: int) -> Command:
        command = RecordFeedback(**self._fields(staff_id, matter), satisfaction=satisfaction)
        self.sent.append(command)
        return command

    async def reroute(
        self, supervisor_id: str, matter: dict[str, Any], lead: str, supporting: list[str], reason: str
    ) -> Command:
        command = RerouteMatter(**self._fields(supervisor_id, matter), lead=lead, supporting=supporting, reason=reason)
        self.sent.append(command)
        return command

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


def console_deps(stats: FakeStats, commands: FakeCommands, reports: FakeReports | None = None) -> ConsoleDeps:
    return ConsoleDeps(
        stats=stats,
        commands=commands,
        registry=changjia_registry(),
        secrets=(SECRET,),
        metrics=ConsoleMetrics(CollectorRegistry()),
        clock=lambda: NOW,
        reports=reports or FakeReports(),
    )
