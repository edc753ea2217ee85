"""The owner side of dispatch: consume a work queue, keep the matters owned, send commands.

``DepartmentClient(broker, "changjia.civil_affairs")`` consumes ``dept.<department_id>``
(``MatterDispatched`` and ``MatterEscalated`` bodies published by dispatch on ``gw.dispatch``)
and keeps, in memory, the matters the department owns in their newest round. Its commands go
through ``shared.broker.publish_command`` with the right ``round`` and ``actor_id``.

The same client serves grid staff (``DepartmentClient.for_grid_staff``: ``grid.<town_id>``,
keeping the matters assigned to the given staff, acting as the assignee) and supervisors
(``DepartmentClient.for_supervisor``: ``supervision.<town_id>``, acting as the instructor).

Register it before ``broker.start()`` (``client.subscribe()``). The client owns nothing on the
broker: the services declare every queue at start, and a department user may only read its own
queue and publish commands (``gridwhistle users provision --department``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from faststream import AckPolicy

from shared import topology
from shared.broker import publish_command, subscriber_channel
from shared.contracts import (
    EVENT_ADAPTER,
    AcceptMatter,
    AnyEvent,
    Command,
    MatterDispatched,
    MatterEscalated,
    RecordFeedback,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)

if TYPE_CHECKING:
    from datetime import datetime

    from faststream.rabbit import RabbitBroker

    from shared.contracts import Event, MatterSnapshot

log = logging.getLogger("gridwhistle.department_client")

SEEN_LIMIT = 10_000

ItemState = Literal["dispatched", "accepted", "resolved", "returned", "whistled", "rerouted"]


@dataclass
class WorkItem:
    """One matter as its owner sees it (newest round only)."""

    matter_id: UUID
    town_id: str
    grid_id: str
    category: str
    severity: str
    round: int
    tier: str
    role: Literal["lead", "supporting"]
    actor_id: str
    priority: str
    accept_by: datetime
    resolve_by: datetime
    reason: str
    state: ItemState = "dispatched"
    escalation_level: int = 0
    lead: str = ""
    supporting: list[str] = field(default_factory=list)
    owner_id: str = ""  # this client's entry among the round's owners
    sequence: int = 0

    def follow(self, sequence: int, matter: MatterSnapshot) -> WorkItem:
        """Take the matter's state from dispatch's snapshot: this owner's part of the round."""
        self.sequence = sequence
        self.lead, self.supporting = matter.lead or "", list(matter.supporting)
        self.escalation_level = matter.escalation_level
        me = matter.owner(self.owner_id)
        if me is not None and me.state in ("dispatched", "accepted"):
            self.state = me.state
        return self


OnItem = Callable[[WorkItem, "Event"], Awaitable[None]]


class DepartmentClient:
    def __init__(
        self,
        broker: RabbitBroker,
        department_id: str,
        *,
        queue: topology.QueueSpec | None = None,
        owners: set[str] | None = None,
        keep_all: bool = False,
        actor_id: str | None = None,
        prefetch: int = 16,
        on_item: OnItem | None = None,
    ) -> None:
        """``owners``: keep matters whose lead/supporting/assignee is one of these (default: the
        department; ``keep_all``: every matter on the queue). ``actor_id``: who the commands come
        from (default: the assignee on grid tiers, else the department)."""
        self.broker = broker
        self.department_id = department_id
        self.queue = queue or topology.department_queue(department_id)
        self.owners: set[str] | None = None if keep_all else (owners or {department_id})
        self.actor_id = actor_id
        self.prefetch = prefetch
        self.on_item = on_item
        self.items: dict[UUID, WorkItem] = {}
        self.escalations: deque[MatterEscalated] = deque(maxlen=SEEN_LIMIT)  # every notice received
        self._seen: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def for_grid_staff(
        cls, broker: RabbitBroker, town_id: str, staff_ids: set[str] | None = None, **kwargs: Any
    ) -> DepartmentClient:
        """Grid-tier work of a town, kept for ``staff_ids`` (None: everyone), acting as the assignee."""
        queue = topology.grid_queue(town_id)
        return cls(broker, town_id, queue=queue, owners=staff_ids, keep_all=staff_ids is None, **kwargs)

    @classmethod
    def for_supervisor(cls, broker: RabbitBroker, town_id: str, supervisor_id: str, **kwargs: Any) -> DepartmentClient:
        """Returned and overdue matters of a town, acting as the supervisor (reroute)."""
        queue = topology.supervision_queue(town_id)
        return cls(broker, town_id, queue=queue, keep_all=True, actor_id=supervisor_id, **kwargs)

    # ------------------------------------------------------------------ consuming
    def subscribe(self) -> None:
        """Consume the work queue as it is: the services declare and bind every queue, a department
        only reads its own (no configure rights: it cannot delete or rebind it). Bodies are typed
        with the event union (a malformed one is dead-lettered with the reason before the handler)."""

        async def on_work_item(event: AnyEvent) -> None:
            await self.handle_event(event)

        self.broker.subscriber(
            self.queue.rabbit_queue(declare=False),
            topology.existing(topology.DISPATCH),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            channel=subscriber_channel(self.prefetch),
            title=self.queue.name,
            description=f"Work items on {topology.DISPATCH.name}: {self.queue.purpose}",
        )(on_work_item)

    def _owns(self, event: MatterDispatched) -> bool:
        if self.owners is None:
            return True
        return bool({event.lead, event.assignee, *event.supporting} & self.owners)

    async def handle(self, body: dict[str, Any]) -> None:
        """One work item body (public so tests and other transports can feed it)."""
        await self.handle_event(EVENT_ADAPTER.validate_python(body))

    async def handle_event(self, event: Event) -> None:
        key = str(event.message_id)
        if key in self._seen:
            return
        self._seen[key] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        item = self._apply(event)
        if item is not None and self.on_item is not None:
            await self.on_item(item, event)

    def _apply(self, event: Event) -> WorkItem | None:
        """Keep what dispatch decided: every work-queue event carries the matter's snapshot, and
        the newest one (highest ``sequence``) is the item, for the owner this client acts as."""
        if isinstance(event, MatterEscalated):
            self.escalations.append(event)
        if not isinstance(event, MatterDispatched | MatterEscalated):
            return None
        current = self.items.get(event.matter_id)
        if current is not None and current.sequence >= event.sequence:
            return None  # older news, or a duplicate
        if isinstance(event, MatterDispatched):
            if not self._owns(event):
                return None
            is_lead = self.owners is None or event.lead in self.owners or event.assignee in self.owners
            mine = event.lead if is_lead else next(s for s in event.supporting if self.owners and s in self.owners)
            item = WorkItem(
                matter_id=event.matter_id,
                town_id=event.town_id,
                grid_id=event.grid_id,
                category=event.category,
                severity=event.severity,
                round=event.round,
                tier=event.tier,
                role="lead" if is_lead else "supporting",
                actor_id=self.actor_id or event.assignee or self.department_id,
                priority=event.priority,
                accept_by=event.accept_by,
                resolve_by=event.resolve_by,
                reason=event.reason,
                owner_id=mine,
            )
            self.items[event.matter_id] = item
        elif current is None or current.round != event.matter.round:
            return None  # an escalation of a round this client does not hold
        else:
            item = current
        return item.follow(event.sequence, event.matter)

    def remember(self, item: WorkItem) -> None:
        """Hold a matter learnt elsewhere (the stats read model, ``services.department.reload``)."""
        current = self.items.get(item.matter_id)
        if current is None or current.sequence <= item.sequence:
            self.items[item.matter_id] = item

    # ------------------------------------------------------------------ commands
    def _item(self, matter_id: UUID | str) -> WorkItem:
        return self.items[UUID(str(matter_id))]

    async def _send(self, command: Command) -> Command:
        await publish_command(self.broker, command, owner=False)
        log.debug("command sent", extra=command.log_fields())
        return command

    def _fields(self, item: WorkItem) -> dict[str, Any]:
        return {
            "matter_id": item.matter_id,
            "town_id": item.town_id,
            "grid_id": item.grid_id,
            "actor_id": item.actor_id,
            "round": item.round,
            "correlation_id": str(item.matter_id),
        }

    async def accept(self, matter_id: UUID | str) -> Command:
        item = self._item(matter_id)
        item.state = "accepted"
        return await self._send(AcceptMatter(**self._fields(item)))

    async def return_(self, matter_id: UUID | str, reason: str) -> Command:
        item = self._item(matter_id)
        item.state = "returned"
        return await self._send(ReturnMatter(**self._fields(item), reason=reason))

    async def resolve(self, matter_id: UUID | str, note: str = "") -> Command:
        item = self._item(matter_id)
        item.state = "resolved"
        return await self._send(ResolveMatter(**self._fields(item), note=note))

    async def whistle(self, matter_id: UUID | str, reason: str) -> Command:
        item = self._item(matter_id)
        item.state = "whistled"
        return await self._send(WhistleMatter(**self._fields(item), reason=reason))

    async def reroute(self, matter_id: UUID | str, lead: str, supporting: list[str], reason: str) -> Command:
        item = self._item(matter_id)
        item.state = "rerouted"
        return await self._send(RerouteMatter(**self._fields(item), lead=lead, supporting=supporting, reason=reason))

    async def feedback(self, matter_id: UUID | str, satisfaction: int, round_: int | None = None) -> Command:
        item = self._item(matter_id)
        fields = self._fields(item) | ({"round": round_} if round_ is not None else {})
        return await self._send(RecordFeedback(**fields, satisfaction=satisfaction))

    def open_items(self) -> list[WorkItem]:
        return sorted(
            (i for i in self.items.values() if i.state in ("dispatched", "accepted")),
            key=lambda i: (i.priority, i.resolve_by),
        )
