"""The topology contract of DESIGN §4, as `gridwhistle topology show` prints it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from services.admin.cli import topology_app
from shared import topology
from shared.domain import Priority, Tier
from shared.registry import load_registry
from shared.settings import GwSettings

pytestmark = pytest.mark.unit


def _shown() -> dict[str, Any]:
    result = CliRunner().invoke(topology_app, ["show", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_topology_show_lists_every_exchange_of_the_design() -> None:
    shown = _shown()
    exchanges = {e["name"]: e["type"] for e in shown["exchanges"]}
    assert exchanges == {
        "gw.events": "topic",
        "gw.dispatch": "topic",
        "gw.commands": "topic",
        "gw.intake": "topic",
        "gw.dead": "direct",
    }


def test_topology_show_lists_department_grid_and_supervision_queues_with_bindings() -> None:
    registry = load_registry(GwSettings().registry_path)
    queues = {q["queue"]: q for q in _shown()["queues"]}
    for department in registry.all_departments():
        name = f"dept.{department.department_id}"
        assert queues[name]["bindings"] == [f"gw.dispatch <- *.department.{department.department_id}.*"]
        assert f"{name}.dead" in queues
    assert queues["grid.changjia"]["bindings"] == [
        "gw.dispatch <- changjia.micro_grid.#",
        "gw.dispatch <- changjia.grid_member.#",
        "gw.dispatch <- changjia.grid_leader.#",
    ]
    assert queues["supervision.changjia"]["bindings"] == ["gw.dispatch <- changjia.supervision.#"]
    assert queues["stats.events"]["bindings"] == ["gw.events <- #"]
    assert queues["dispatch.events"]["bindings"] == ["gw.events <- *.*.matter_reported"]
    assert queues["dispatch.commands"]["bindings"] == ["gw.commands <- #"]
    assert queues["intake.reports"]["bindings"] == ["gw.intake <- #"]


def test_every_work_queue_is_quorum_with_delivery_limit_and_dead_lettering() -> None:
    for row in _shown()["queues"]:
        assert row["type"] == "quorum"
        if row["queue"].endswith(".dead"):
            assert row["bindings"] == [f"gw.dead <- {row['queue'][: -len('.dead')]}"]
            continue
        assert row["arguments"] == {
            "x-delivery-limit": topology.DELIVERY_LIMIT,
            "x-dead-letter-exchange": "gw.dead",
            "x-dead-letter-routing-key": row["queue"],
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }


def test_routing_keys_follow_the_contract() -> None:
    assert topology.event_routing_key("changjia", "changjia-g017", "matter_reported") == (
        "changjia.changjia-g017.matter_reported"
    )
    assert (
        topology.dispatch_routing_key("changjia", Tier.DEPARTMENT, "changjia.civil_affairs", Priority.P2)
        == "changjia.department.changjia.civil_affairs.p2"
    )
    assert topology.command_routing_key("changjia", "accept_matter") == "changjia.accept_matter"
