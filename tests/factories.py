"""Test data shared by the unit, in-memory and connected tiers: one way to build a report or a command."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.contracts import COMMAND_ADAPTER, MatterReported, MatterSnapshot
from shared.registry import Registry, load_registry
from shared.settings import PROJECT_ROOT

TOWN, GRID = "changjia", "changjia-g017"
CHANGJIA_YAML = PROJECT_ROOT / "deploy" / "config" / "registry" / "changjia.yaml"


def changjia_registry() -> Registry:
    """The shipped Changjia registry, read from its YAML as the services read it."""
    return load_registry(CHANGJIA_YAML)


def reported(
    category: str,
    severity: str,
    *,
    reported_at: datetime,
    grid_id: str = GRID,
    matter_id: uuid.UUID | None = None,
    micro_grid_id: str | None = None,
    channel: str = "app",
    service_item: str | None = None,
) -> MatterReported:
    """A MatterReported of the Changjia registry with a fresh matter and report id."""
    return MatterReported(
        matter_id=matter_id or uuid.uuid4(),
        town_id=TOWN,
        grid_id=grid_id,
        category=category,
        severity=severity,
        report_id=f"r-{uuid.uuid4().hex[:10]}",
        channel=channel,
        summary="test matter",
        micro_grid_id=micro_grid_id,
        reported_at=reported_at,
        service_item=service_item,
    )


def command(kind: str, matter_id: uuid.UUID, actor: str, round_: int, *, grid_id: str = GRID, **fields: Any) -> Any:
    """Any command by its ``command_type``, validated by the contract's adapter."""
    return COMMAND_ADAPTER.validate_python(
        {
            "command_type": kind,
            "matter_id": str(matter_id),
            "town_id": TOWN,
            "grid_id": grid_id,
            "actor_id": actor,
            "round": round_,
            **fields,
        }
    )


def snapshot(state: str = "dispatched", **fields: Any) -> MatterSnapshot:
    """A matter snapshot for events whose counting does not depend on it (round 1, minor)."""
    return MatterSnapshot.model_validate({"state": state, "round": 1, "severity": "minor", **fields})
