"""FastStream's transport metrics stay bounded at county scale.

Every grid of the generated county registry publishes and consumes every event type, dispatch
sends work to every department and grid staff member; the series that the metrics registry
then holds are counted with FastStream's stock provider and with shared.transport_metrics."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faststream.prometheus.container import MetricsContainer
from faststream.prometheus.manager import MetricsManager
from faststream.prometheus.types import ProcessingStatus, PublishingStatus
from faststream.rabbit.prometheus.provider import RabbitMetricsSettingsProvider
from prometheus_client import CollectorRegistry

from shared import topology
from shared.contracts import COMMAND_TYPES, EVENT_TYPES
from shared.domain import Priority, Tier
from shared.registry import load_registry
from shared.transport_metrics import BoundedRabbitMetricsSettingsProvider, bounded_destination

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COUNTY = ROOT / "deploy" / "config" / "registry" / "county"


def county_traffic() -> list[tuple[str, str]]:
    """(exchange, routing key) for every route a county deployment uses."""
    registry = load_registry(COUNTY)
    routes: list[tuple[str, str]] = []
    for town in registry.towns:
        for grid in town.grids:
            routes += [
                (topology.EVENTS.name, topology.event_routing_key(town.town_id, grid.grid_id, t)) for t in EVENT_TYPES
            ]
            staff = [grid.leader.staff_id, *(m.staff_id for m in grid.members)]
            routes += [
                (topology.DISPATCH.name, topology.dispatch_routing_key(town.town_id, tier, s, Priority.P2))
                for s in staff
                for tier in (Tier.GRID_MEMBER, Tier.GRID_LEADER)
            ]
        routes += [(topology.COMMANDS.name, topology.command_routing_key(town.town_id, c)) for c in COMMAND_TYPES]
    for department in registry.all_departments():
        town_id = department.department_id.split(".")[0]
        keys = [topology.dispatch_routing_key(town_id, Tier.DEPARTMENT, department.department_id, p) for p in Priority]
        routes += [(topology.DISPATCH.name, key) for key in keys]
    return routes


def series_count(provider: Any, routes: list[tuple[str, str]]) -> int:
    registry = CollectorRegistry()
    manager = MetricsManager(MetricsContainer(registry, custom_label_names=()), app_name="dispatch")
    for exchange, key in routes:
        consumed = SimpleNamespace(raw_message=SimpleNamespace(exchange=exchange, routing_key=key), body=b"{}")
        handler = provider.get_consume_attrs_from_message(consumed)["destination_name"]
        manager.add_received_message(broker="rabbitmq", handler=handler)
        manager.add_received_processed_message(broker="rabbitmq", handler=handler, status=ProcessingStatus.acked)
        manager.observe_received_processed_message_duration(duration=0.01, broker="rabbitmq", handler=handler)
        published = SimpleNamespace(exchange=SimpleNamespace(name=exchange), destination=key)
        destination = provider.get_publish_destination_name_from_cmd(published)
        manager.add_published_message(broker="rabbitmq", destination=destination, status=PublishingStatus.success)
        manager.observe_published_message_duration(duration=0.01, broker="rabbitmq", destination=destination)
    return sum(len(metric.samples) for metric in registry.collect())


def test_county_routes_keep_transport_series_bounded() -> None:
    routes = county_traffic()
    stock = series_count(RabbitMetricsSettingsProvider(), routes)
    bounded = series_count(BoundedRabbitMetricsSettingsProvider(), routes)
    print(f"\ncounty routes: {len(routes)}; faststream series per process: stock {stock}, bounded {bounded}")
    assert stock > 100_000  # what the DESIGN warned about
    assert bounded < 12_000  # towns x message types (14 events, 8 commands) x departments, not x grids
    assert bounded * 20 < stock


def test_bounded_destination_keeps_town_tier_and_type_but_not_grid_or_owner() -> None:
    assert bounded_destination("gw.events", "changjia.changjia-g017.matter_reported") == (
        "gw.events.changjia.*.matter_reported"
    )
    assert bounded_destination("gw.dispatch", "changjia.department.changjia.civil_affairs.p1") == (
        "gw.dispatch.changjia.department.*.p1"
    )
    assert bounded_destination("gw.dispatch", "changjia.grid_leader.changjia-g017-leader.p3") == (
        "gw.dispatch.changjia.grid_leader.*.p3"
    )
    assert bounded_destination("gw.commands", "changjia.accept_matter") == "gw.commands.changjia.accept_matter"
    assert bounded_destination("gw.dead", "dept.changjia.civil_affairs") == "gw.dead.dept.changjia.civil_affairs"
    assert bounded_destination("gw.intake", "changjia.sensor-0042") == "gw.intake.changjia.*"
    assert bounded_destination("", "amq.gen-Xyz") == "default.*"


def test_bounded_labels_survive_the_scrape_backstop() -> None:
    """The scrape configs drop any gw.events/dispatch/intake label without a `*`; bounded ones have one."""
    import re

    backstop = re.compile(r"gw\.(events|dispatch|intake)\.[^*]+")
    for exchange, key in county_traffic()[:500]:
        assert not backstop.fullmatch(bounded_destination(exchange, key))
        if exchange != topology.COMMANDS.name:
            assert backstop.fullmatch(f"{exchange}.{key}")
