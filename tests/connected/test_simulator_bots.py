"""The simulator's bots on the real broker, beside a person: a work item of a matter their plan
does not know (a person reported it in the web console during ``make run``) is left to people —
acknowledged once, never bounced into the dead-letter queue — unless the bots are told to hand
such items back for another run's crew, when the delivery limit parks it in ``<queue>.dead``."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from services.simulator.bots import BotCrew
from shared import topology
from shared.broker import publish_event
from shared.settings import GwSettings
from tests.connected.dispatch_harness import client_broker, eventually, reported, running_dispatch

pytestmark = pytest.mark.connected

URGENT_OTHER_LEAD = "changjia.comprehensive_governance"  # routing.yaml, urgent-other: straight to it, alone


async def _ready(settings: GwSettings, queue: str) -> int:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


@pytest.mark.parametrize("leave_unknown", [True, False], ids=["left-to-people", "handed-back"])
async def test_a_persons_matter_is_left_to_people_or_handed_back_as_told(
    settings: GwSettings, mongo_ready: None, leave_unknown: bool
) -> None:
    work = topology.department_queue(URGENT_OTHER_LEAD)
    crews: list[BotCrew] = []
    async with running_dispatch(settings) as deps:

        def setup(broker: object) -> None:
            crew = BotCrew(deps.registry, {}, broker, leave_unknown=leave_unknown)  # type: ignore[arg-type]
            crew.subscribe(4, ["changjia"])
            crews.append(crew)

        async with client_broker(settings, setup) as broker:
            await publish_event(broker, reported("other", "urgent"))  # the person's report
            crew = crews[0]

            async def handled() -> int:
                return crew.foreign_items

            await eventually(handled, lambda n: n >= 1, what="the person's work item at the bots")
            if leave_unknown:
                await asyncio.sleep(1.0)  # would it come back? (a requeue is redelivered within ms)
                assert crew.foreign_items == 1
                assert await _ready(settings, work.name) == 0
                assert await _ready(settings, work.dead_letter_queue) == 0
            else:

                async def parked() -> int:
                    return await _ready(settings, work.dead_letter_queue)

                await eventually(parked, lambda n: n == 1, within=30.0, what=f"the item in {work.dead_letter_queue}")
                # the first delivery and DELIVERY_LIMIT redeliveries, then the quorum queue parks it
                assert crew.foreign_items == topology.DELIVERY_LIMIT + 1
