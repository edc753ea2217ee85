"""The console's command port: the department-side client's command path.

A ``DepartmentClient`` per department, per grid staff member and per supervisor (publishing
only: the console never consumes a work queue, so it competes with no worker); the matter comes
from the stats read model (``services.department.reload``), so the command names the round
dispatch is on and the actor the signed-in person is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.department.client import DepartmentClient
from services.department.reload import work_item_from_matter

if TYPE_CHECKING:
    from uuid import UUID

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

    def _actor_client(self, key: str, make: Callable[[], DepartmentClient]) -> DepartmentClient:
        if key not in self._clients:
            self._clients[key] = make()
        return self._clients[key]

    def _as_grid_staff(self, staff_id: str, matter: dict[str, Any]) -> tuple[DepartmentClient, UUID]:
        """The staff member's client, knowing the matter as the read model has it (round, owners)."""
        town_id = str(matter["town_id"])
        client = self._actor_client(
            f"grid:{staff_id}",
            lambda: DepartmentClient.for_grid_staff(self.broker, town_id, {staff_id}, actor_id=staff_id),
        )
        item = work_item_from_matter(matter, str(matter.get("lead") or staff_id), actor_id=staff_id)
        client.remember(item)
        return client, item.matter_id

    async def whistle(self, staff_id: str, matter: dict[str, Any], reason: str) -> Command:
        """吹哨: grid staff send a grid-tier matter up to the town's departments."""
        client, matter_id = self._as_grid_staff(staff_id, matter)
        return await client.whistle(matter_id, reason)

    async def feedback(self, staff_id: str, matter: dict[str, Any], satisfaction: int) -> Command:
        """回访: grid staff record the reporter's satisfaction with a resolved matter (closes or reopens it)."""
        client, matter_id = self._as_grid_staff(staff_id, matter)
        return await client.feedback(matter_id, satisfaction)

    async def reroute(
        self, supervisor_id: str, matter: dict[str, Any], lead: str, supporting: list[str], reason: str
    ) -> Command:
        """督办改派: a supervisor names the new lead (and supporting) departments."""
        town_id = str(matter["town_id"])
        client = self._actor_client(
            f"supervisor:{supervisor_id}",
            lambda: DepartmentClient.for_supervisor(self.broker, town_id, supervisor_id),
        )
        item = work_item_from_matter(matter, town_id, actor_id=supervisor_id)
        client.remember(item)
        return await client.reroute(item.matter_id, lead, supporting, reason)

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
