"""Over the real broker and store: shuffled and duplicated deliveries end where the clean ones do."""

from __future__ import annotations

import asyncio
import operator
import random
import uuid
from functools import partial
from typing import Any

import pytest

from services.dispatch.case import Case
from services.dispatch.deps import DispatchDeps
from shared.broker import publish_command, publish_event
from shared.contracts import MatterReported
from shared.settings import GwSettings
from tests.connected.dispatch_harness import client_broker, eventually, running_dispatch
from tests.unit.test_dispatch_convergence import SCENARIOS

pytestmark = pytest.mark.connected


async def projection(deps: DispatchDeps, matter_id: uuid.UUID) -> dict[str, Any] | None:
    case = await deps.store.snapshot(str(matter_id))
    if case is None:
        return None
    return {
        "state": case.state,
        "round": case.round,
        "tier": case.tier,
        "lead": case.lead,
        "owners": sorted((o.owner_id, o.role, o.state) for o in case.owners),
        "satisfaction": case.satisfaction,
        "returned_by": case.returned_by,
        "handled": len(case.applied),
        "pending": len(case.pending),
    }


def has_applied(message_id: str, case: Case | None) -> bool:
    return case is not None and message_id in case.applied


async def send(broker: Any, message: Any) -> None:
    if isinstance(message, MatterReported):
        await publish_event(broker, message)
    else:
        await publish_command(broker, message)


async def test_duplicated_and_shuffled_commands_leave_the_clean_final_states(
    settings: GwSettings, mongo_ready: None
) -> None:
    rng = random.Random(7)
    async with running_dispatch(settings) as deps, client_broker(settings) as broker:
        clean: dict[str, dict[str, Any] | None] = {}
        for name, (scenario, _) in sorted(SCENARIOS.items()):
            event, commands = scenario(uuid.uuid4())
            await send(broker, event)
            for cmd in commands:  # one at a time: each is handled before the next is sent
                await send(broker, cmd)
                await eventually(
                    partial(deps.store.snapshot, str(event.matter_id)),
                    partial(has_applied, str(cmd.message_id)),
                    what=f"{name}: {cmd.command_type}",
                )
            final = await projection(deps, event.matter_id)
            assert final is not None and final["state"] == "closed"
            clean[name] = final

        shuffled: dict[str, uuid.UUID] = {}
        messages: list[Any] = []
        for name, (scenario, _) in sorted(SCENARIOS.items()):
            for _copy in range(3):
                event, commands = scenario(uuid.uuid4())
                shuffled[f"{name}#{_copy}"] = event.matter_id
                batch = [event, *commands]
                messages += batch + [m for m in batch if rng.random() < 0.3]
        rng.shuffle(messages)
        await asyncio.gather(*(send(broker, m) for m in messages))

        for key, matter_id in shuffled.items():
            name = key.split("#")[0]
            await eventually(
                partial(projection, deps, matter_id),
                partial(operator.eq, clean[name]),
                what=f"{key} to converge on {clean[name]}",
            )
