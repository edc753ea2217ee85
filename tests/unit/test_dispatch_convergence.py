"""Any order and any duplication of a legal message sequence ends in the clean sequence's state."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.dispatch.handlers import on_command, on_matter_reported
from shared.contracts import COMMAND_ADAPTER, MatterReported
from tests.fakes.dispatch import GRID, INSTRUCTOR, TOWN, make_deps, reported

pytestmark = pytest.mark.unit

LEADER = "changjia-g017-leader"
MEMBER = "changjia-g017-member1"
E, CE = "changjia.emergency_safety", "county.emergency"
CG, JM, P = "changjia.comprehensive_governance", "changjia.judicial_mediation", "changjia.petitions"
SC, CA = "changjia.service_center", "changjia.civil_affairs"

Message = MatterReported | Any
Scenario = Callable[[uuid.UUID], tuple[MatterReported, list[Any]]]


def c(m: uuid.UUID, kind: str, actor: str, round_: int, **fields: Any) -> Any:
    return COMMAND_ADAPTER.validate_python(
        {
            "command_type": kind,
            "matter_id": str(m),
            "town_id": TOWN,
            "grid_id": GRID,
            "actor_id": actor,
            "round": round_,
            **fields,
        }
    )


def co_dispatch_closes(m: uuid.UUID) -> tuple[MatterReported, list[Any]]:
    return reported("safety_hazard", "urgent", matter_id=m), [
        c(m, "accept_matter", E, 1),
        c(m, "accept_matter", CE, 1),
        c(m, "resolve_matter", CE, 1),
        c(m, "resolve_matter", E, 1),
        c(m, "record_feedback", MEMBER, 1, satisfaction=4),
    ]


def supporting_released(m: uuid.UUID) -> tuple[MatterReported, list[Any]]:
    return reported("safety_hazard", "urgent", matter_id=m), [
        c(m, "accept_matter", E, 1),
        c(m, "return_matter", CE, 1, reason="not county level"),
        c(m, "resolve_matter", E, 1),
        c(m, "record_feedback", MEMBER, 1, satisfaction=5),
    ]


def whistled_then_reopened(m: uuid.UUID) -> tuple[MatterReported, list[Any]]:
    return reported("dispute", "minor", matter_id=m), [
        c(m, "accept_matter", LEADER, 1),
        c(m, "whistle_matter", LEADER, 1, reason="beyond the grid"),
        c(m, "accept_matter", JM, 2),
        c(m, "accept_matter", CG, 2),
        c(m, "resolve_matter", CG, 2),
        c(m, "resolve_matter", JM, 2),
        c(m, "record_feedback", MEMBER, 2, satisfaction=1),
        c(m, "resolve_matter", JM, 3),
        c(m, "record_feedback", MEMBER, 3, satisfaction=5),
    ]


def returned_to_supervision_and_rerouted(m: uuid.UUID) -> tuple[MatterReported, list[Any]]:
    return reported("other", "urgent", matter_id=m), [
        c(m, "accept_matter", CG, 1),
        c(m, "return_matter", CG, 1, reason="not ours"),
        c(m, "reroute_matter", INSTRUCTOR, 2, lead=SC, supporting=[CA], reason="assigned"),
        c(m, "accept_matter", SC, 3),
        c(m, "accept_matter", CA, 3),
        c(m, "resolve_matter", CA, 3),
        c(m, "resolve_matter", SC, 3),
        c(m, "record_feedback", INSTRUCTOR, 3, satisfaction=3),
    ]


def whistled_returned_rerouted(m: uuid.UUID) -> tuple[MatterReported, list[Any]]:
    return reported("dispute", "hard", matter_id=m), [
        c(m, "whistle_matter", LEADER, 1, reason="needs the town"),
        c(m, "return_matter", JM, 2, reason="not a legal matter"),
        c(m, "accept_matter", P, 3),
        c(m, "return_matter", CG, 3, reason="petitions can do it"),
        c(m, "resolve_matter", P, 3),
        c(m, "record_feedback", MEMBER, 3, satisfaction=4),
    ]


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "co_dispatch_closes": (co_dispatch_closes, "closed"),
    "supporting_released": (supporting_released, "closed"),
    "whistled_then_reopened": (whistled_then_reopened, "closed"),
    "returned_to_supervision_and_rerouted": (returned_to_supervision_and_rerouted, "closed"),
    "whistled_returned_rerouted": (whistled_returned_rerouted, "closed"),
}


async def run(messages: list[Any]) -> dict[str, Any]:
    deps = make_deps()
    matter_id = str(messages[0].matter_id)
    for message in messages:
        if isinstance(message, MatterReported):
            await on_matter_reported(deps, message)
        else:
            await on_command(deps, message)
    case = await deps.store.snapshot(matter_id)
    assert case is not None
    return {
        "state": case.state,
        "round": case.round,
        "tier": case.tier,
        "lead": case.lead,
        "owners": sorted((o.owner_id, o.role, o.state) for o in case.owners),
        "satisfaction": case.satisfaction,
        "returned_by": case.returned_by,
        "supervised": case.supervised,
        "handled": sorted(case.applied),
        "pending": [p.message_id for p in case.pending],
    }


def shuffled_with_duplicates(messages: list[Any], rng: random.Random) -> list[Any]:
    out = list(messages) + [m for m in messages if rng.random() < 0.3]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_shuffled_and_duplicated_deliveries_converge_to_the_clean_final_state(name: str) -> None:
    scenario, expected_state = SCENARIOS[name]
    rng = random.Random(name)
    matter_id = uuid.UUID(int=rng.getrandbits(128))
    event, commands = scenario(matter_id)
    clean = await run([event, *commands])
    assert clean["state"] == expected_state and clean["pending"] == []
    assert len(clean["handled"]) == len(commands)
    for _ in range(25):
        assert await run(shuffled_with_duplicates([event, *commands], rng)) == clean
