"""The console's command port: the department-side client's command path.

A ``DepartmentClient`` per department (publishing only: the console never consumes a work queue,
so it competes with no worker); the matter comes from the stats read model
(``services.department.reload``), so the command names the round dispatch is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.department.client import DepartmentClient
from services.department.reload import work_item_from_matter

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker

    from shared.contracts import Command

ACTIONS = ("accept", "return", "resolve")


class DepartmentCommands:
    def __init__(self, broker: RabbitBroker) -> None:
        self.broker = broker
        self._clients: dict[str, DepartmentClient] = {}

    def client(self, department_id: str) -> DepartmentClient:
        if department_id not in self._clients:
            self._clients[department_id] = DepartmentClient(self.broker, department_id)
        return self._clients[department_id]

    async def send(self, department_id: str, matter: dict[str, Any], action: str, text: str) -> Command:
        client = self.client(department_id)
        item = work_item_from_matter(matter, department_id)
        client.remember(item)
        if action == "accept":
            return await client.accept(item.matter_id)
        if action == "return":
            return await client.return_(item.matter_id, text)
        if action == "resolve":
            return await client.resolve(item.matter_id, text)
        raise ValueError(f"unknown action {action!r}")
