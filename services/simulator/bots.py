"""Scripted department, grid-staff and supervisor bots for scenario replays.

Each bot plays its part as people would: it takes work from its queue (``dept.<id>``,
``grid.<town>``, ``supervision.<town>``) and answers with commands after a handling time
drawn by the plan. A matter's *fate* (from the scenario plan, found by its report id) decides
the path: straight through, returned until a supervisor reroutes it, whistled up from the
grid, or closed only after an unsatisfied first feedback. Because fates are planned, a full
replay lands on exact figures.

A supervised matter waits in supervision until every matter of its planned visit is there; the
grid's instructor then records the visit (``RecordSupervisionVisit``, following them all up)
and reroutes each. A micro-grid member whose matter the plan gives a squad asks for it
(``AssignSquad``) before accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import aio_pika
from aiormq.exceptions import ChannelInvalidStateError
from faststream import AckPolicy
from faststream.rabbit.annotations import RabbitMessage  # FastStream resolves it at runtime

from shared import topology
from shared.broker import publish_command, subscriber_channel
from shared.contracts import (
    AcceptMatter,
    AssignSquad,
    Command,
    MatterDispatched,
    RecordFeedback,
    RecordSupervisionVisit,
    RerouteMatter,
    ResolveMatter,
    ReturnMatter,
    WhistleMatter,
)
from shared.domain import Tier

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker

    from services.simulator.scenario import PlannedMatter
    from shared.registry import Registry

log = logging.getLogger("gridwhistle.simulator.bots")
SEND_ATTEMPTS = 60
"""A command is retried this many times (up to 2 s apart) while the broker is unreachable."""


def owner_of(routing_key: str) -> str:
    """``<town>.<tier>.<owner>.<priority>`` -> owner (a department id contains a dot itself)."""
    return routing_key.split(".", 2)[-1].rsplit(".", 1)[0]


FOREIGN_REQUEUE_PAUSE = 0.05
SQUAD_WAIT = 30.0
"""Seconds a micro-grid member waits to hear that the squad it asked for is assigned."""
"""Seconds before handing back another run's work item: a breath for other crews' consumers (the
queue's delivery limit, not this pause, is what ends the rounds of an item nobody owns)."""

SATISFIED = 5
UNSATISFIED = 2


@dataclass
class MatterMemory:
    """What the bots remember about one matter across its dispatch rounds."""

    first_lead: str | None = None
    supervised: bool = False
    whistled: bool = False
    squad_asked: bool = False
    squad_on_it: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when dispatch's ``SquadAssigned`` arrives: only then does the member go on (a command
    sent meanwhile could overtake the assignment, which a finished matter refuses)."""
    feedback_given: int = 0


@dataclass
class BotCrew:
    registry: Registry
    plan: dict[str, PlannedMatter]  # by report id
    broker: RabbitBroker
    speed: float = 1000.0
    memory: dict[str, MatterMemory] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    commands_sent: int = 0
    leave_unknown: bool = False  # people share the queues (make run): take no part in what the plan does not know
    foreign_items: int = 0  # work items the plan does not know: handed back, or left to people
    visits_sent: int = 0
    held: dict[int, dict[str, MatterDispatched]] = field(default_factory=dict)  # visit -> its matters in supervision
    visited: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.visit_sizes: dict[int, int] = {}
        for planned in self.plan.values():
            if planned.visit is not None:
                self.visit_sizes[planned.visit] = self.visit_sizes.get(planned.visit, 0) + 1

    # ----------------------------------------------------------------- wiring
    def subscribe(self, prefetch: int, towns: list[str]) -> None:
        """One subscriber per queue the crew works: departments, grid staff, supervisors."""
        queues = [topology.department_queue(d.department_id) for d in self.registry.all_departments()]
        queues += [topology.grid_queue(t) for t in towns] + [topology.supervision_queue(t) for t in towns]
        for spec in queues:
            self.broker.subscriber(
                spec.rabbit_queue(),
                topology.DISPATCH,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                channel=subscriber_channel(prefetch),
                title=f"bot:{spec.name}",
            )(self.on_work_item)

    async def on_work_item(self, body: dict[str, Any], message: RabbitMessage) -> None:
        if body.get("event_type") == "squad_assigned":
            memory = self.memory.get(str(body.get("matter_id")))
            if memory is not None:
                memory.squad_on_it.set()
            return
        if body.get("event_type") != "matter_dispatched":
            return  # escalation notices: the supervisor bot only acts on dispatched work
        owner = owner_of(message.raw_message.routing_key or "")
        if not self.take(MatterDispatched.model_validate(body), owner):
            self.foreign_items += 1
            if self.leave_unknown:
                # A person's matter (reported in the web console or through the API while the bots
                # run): the person works it in the console, from the read model, so this copy of
                # the notice is acknowledged and nothing is done with it. Handing it back would
                # only bounce it between the bots until the delivery limit dead-letters it.
                log.info("work item of a matter the plan does not know left to people", extra={"owner": owner})
                return
            # Another run's matter (another simulator, or one interrupted earlier): hand it back
            # for its own crew. The queue's delivery limit parks it in <queue>.dead after a few
            # rounds if nobody takes it, where it stays visible and replayable — never dropped.
            await asyncio.sleep(FOREIGN_REQUEUE_PAUSE)
            await message.nack(requeue=True)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Drop the answers still waiting for their handling time (on interrupt)."""
        for task in list(self.tasks):
            task.cancel()

    # ----------------------------------------------------------------- the script
    def take(self, item: MatterDispatched, owner: str) -> bool:
        """Start working ``item`` as its plan says; False when the plan does not know it."""
        planned = self.plan.get(item.report_id or "")
        if planned is None:
            return False
        memory = self.memory.setdefault(str(item.matter_id), MatterMemory())
        if memory.first_lead is None and item.tier == Tier.DEPARTMENT:
            memory.first_lead = item.lead
        self._spawn(self._act(item, planned, memory, owner))
        return True

    async def _act(self, item: MatterDispatched, planned: PlannedMatter, memory: MatterMemory, owner: str) -> None:
        if item.tier == Tier.SUPERVISION:
            await self._supervise(item, planned, memory)
            return
        is_lead = owner == item.lead
        # Grid staff cannot return a matter: what must reach a supervisor goes up to departments first.
        if is_lead and item.tier.is_grid_tier and planned.fate in ("whistled", "supervised") and not memory.whistled:
            memory.whistled = True
            await self._send(WhistleMatter, item, owner, reason="beyond the grid: departments needed")
            return
        if is_lead and planned.fate == "supervised" and not memory.supervised:
            await self._send(ReturnMatter, item, owner, reason="not within our remit, please reassign")
            return
        if is_lead and item.tier == Tier.MICRO_GRID and planned.squad_id and not memory.squad_asked:
            memory.squad_asked = True
            await self._send(AssignSquad, item, owner, squad_id=planned.squad_id)
            with contextlib.suppress(TimeoutError):  # refused: the rejection is counted, the member goes on
                await asyncio.wait_for(memory.squad_on_it.wait(), SQUAD_WAIT)
        part = item.matter.owner(owner)
        if part is None or part.state == "dispatched":  # a reopened matter is still its lead's
            await asyncio.sleep(planned.accept_after / self.speed)
            await self._send(AcceptMatter, item, owner)
        await asyncio.sleep(planned.resolve_after / self.speed)
        await self._send(ResolveMatter, item, owner, note="handled")
        if is_lead:
            memory.feedback_given += 1
            unhappy = planned.fate == "unsatisfied_once" and memory.feedback_given == 1
            await self._send(
                RecordFeedback, item, planned.reporter_id, satisfaction=UNSATISFIED if unhappy else SATISFIED
            )

    async def _supervise(self, item: MatterDispatched, planned: PlannedMatter, memory: MatterMemory) -> None:
        memory.supervised = True
        if planned.visit is None or planned.visit in self.visited:
            await self._reroute(item, memory)
            return
        waiting = self.held.setdefault(planned.visit, {})
        waiting[planned.report_id] = item
        if len(waiting) < self.visit_sizes[planned.visit]:
            return  # the instructor visits the grid once all of the visit's matters are with supervision
        self.visited.add(planned.visit)
        items = list(self.held.pop(planned.visit).values())
        await self._record_visit(planned, items)
        for held in items:
            await self._reroute(held, self.memory[str(held.matter_id)])

    async def _record_visit(self, planned: PlannedMatter, items: list[MatterDispatched]) -> None:
        assert planned.visit_id is not None
        first = items[0]
        visit = RecordSupervisionVisit(
            town_id=first.town_id,
            grid_id=first.grid_id,
            correlation_id=planned.visit_id,
            actor_id=self.registry.supervisors_of_grid(first.grid_id)[0].staff_id,
            visit_id=UUID(planned.visit_id),
            visited_at=datetime.now(UTC),
            matter_ids=[i.matter_id for i in items],
            note="followed up with the grid's staff",
        )
        await self._publish(visit)
        self.visits_sent += 1

    async def _reroute(self, item: MatterDispatched, memory: MatterMemory) -> None:
        supervisors = self.registry.supervisors_of_grid(item.grid_id)
        lead = memory.first_lead or self._fallback_department(item.town_id)
        await self._send(
            RerouteMatter,
            item,
            supervisors[0].staff_id,
            lead=lead,
            reason="instructor assigned the matter after follow-up",
        )

    def _fallback_department(self, town_id: str) -> str:
        return f"{town_id}.comprehensive_governance"

    # ----------------------------------------------------------------- plumbing
    async def _send(self, kind: type[Command], item: MatterDispatched, actor: str, **fields: Any) -> None:
        command = kind(
            matter_id=item.matter_id,
            town_id=item.town_id,
            grid_id=item.grid_id,
            correlation_id=item.correlation_id,
            actor_id=actor,
            round=item.round,
            **fields,
        )
        await self._publish(command)

    async def _publish(self, command: Command | RecordSupervisionVisit) -> None:
        for attempt in range(1, SEND_ATTEMPTS + 1):  # a department keeps trying while the broker is away
            try:
                await publish_command(self.broker, command)
                break
            except (ConnectionError, aio_pika.exceptions.AMQPError, ChannelInvalidStateError):
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(min(2.0, 0.1 * attempt))
        self.commands_sent += 1

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bot action failed", extra={"error": repr(task.exception())})
