"""Least privilege for every broker role, on real AMQP connections: each service, the grid staff
app, the supervisors and a machine source can do exactly their job, and the broker refuses the
rest (consume a queue that is not theirs, publish where they do not publish, declare, delete or
purge a queue). The department role has its own file (test_department_permissions.py)."""

from __future__ import annotations

import pytest
from aiormq.exceptions import ChannelAccessRefused
from faststream.rabbit import RabbitExchange

from shared import topology
from shared.broker import make_broker
from shared.settings import GwSettings
from tests import factories
from tests.connected.broker_users import Attempt, attempt, provisioned_user

pytestmark = pytest.mark.connected

TOWN = "changjia"
CIVIL_QUEUE = topology.department_queue("changjia.civil_affairs").name
GRID_QUEUE = topology.grid_queue(TOWN).name
SUPERVISION_QUEUE = topology.supervision_queue(TOWN).name
EVENT_KEY = topology.event_routing_key(TOWN, "g01", "matter_reported")


def c(queue: str) -> Attempt:
    return Attempt("consume", queue)


def p(exchange: RabbitExchange, key: str = "changjia.test") -> Attempt:
    return Attempt("publish", exchange.name, key)


ROLES: dict[str, tuple[dict[str, str], list[Attempt], list[Attempt]]] = {
    # role: (permissions, what it must be able to do, what the broker must refuse)
    "intake": (
        topology.service_permissions("intake"),
        [c("intake.reports"), p(topology.EVENTS, EVENT_KEY), p(topology.DEAD, "intake.reports")],
        [
            c("stats.events"),
            c(CIVIL_QUEUE),
            p(topology.COMMANDS),
            p(topology.DISPATCH),
            Attempt("declare", "dept.changjia.mine"),
            Attempt("delete", "dispatch.events"),
            Attempt("purge", "stats.events"),
        ],
    ),
    "dispatch": (
        topology.service_permissions("dispatch"),
        [c("dispatch.events"), c("dispatch.commands"), p(topology.DISPATCH), p(topology.EVENTS, EVENT_KEY)],
        [
            c("stats.events"),
            c("intake.reports"),
            p(topology.COMMANDS),
            p(topology.INTAKE),
            Attempt("declare", "stats.mine"),
            Attempt("delete", "stats.events"),
            Attempt("purge", "intake.reports"),
        ],
    ),
    "stats": (
        topology.service_permissions("stats"),
        [c("stats.events"), p(topology.DEAD, "stats.events")],
        [
            c("dispatch.events"),
            c(CIVIL_QUEUE),
            p(topology.EVENTS, EVENT_KEY),
            p(topology.DISPATCH),
            Attempt("declare", "dept.changjia.mine"),
            Attempt("delete", "dispatch.commands"),
            Attempt("purge", "intake.reports"),
        ],
    ),
    "grid staff": (
        topology.grid_staff_permissions(TOWN),
        [c(GRID_QUEUE), p(topology.COMMANDS, "changjia.accept_matter")],
        [
            c(CIVIL_QUEUE),
            c(SUPERVISION_QUEUE),
            c(topology.grid_queue("town02").name),
            p(topology.EVENTS, EVENT_KEY),
            p(topology.DISPATCH),
            Attempt("declare", "grid.changjia.mine"),
            Attempt("delete", GRID_QUEUE),
            Attempt("purge", CIVIL_QUEUE),
        ],
    ),
    "supervisor": (
        topology.supervisor_permissions(TOWN),
        [c(SUPERVISION_QUEUE), p(topology.COMMANDS, "changjia.reroute_matter")],
        [
            c(GRID_QUEUE),
            c(CIVIL_QUEUE),
            p(topology.DISPATCH),
            p(topology.EVENTS, EVENT_KEY),
            Attempt("declare", "supervision.changjia.mine"),
            Attempt("delete", SUPERVISION_QUEUE),
            Attempt("purge", GRID_QUEUE),
        ],
    ),
    "machine source": (
        topology.source_permissions(),
        [p(topology.INTAKE, "changjia.sensors")],
        [
            c("intake.reports"),
            p(topology.EVENTS, EVENT_KEY),
            p(topology.COMMANDS),
            Attempt("declare", "intake.mine"),
            Attempt("purge", "intake.reports"),
        ],
    ),
}
CASES = [
    pytest.param(role, allowed, refused, id=role.replace(" ", "-")) for role, (_, allowed, refused) in ROLES.items()
]


@pytest.mark.parametrize(("role", "allowed", "refused"), CASES)
async def test_each_role_can_do_its_job_and_nothing_else(
    settings: GwSettings, role: str, allowed: list[Attempt], refused: list[Attempt]
) -> None:
    async with provisioned_user(settings, ROLES[role][0]) as url:
        for what in allowed:
            await attempt(url, what)  # raises if the broker refuses part of the role's job
        not_refused = []
        for what in refused:
            try:
                await attempt(url, what)
            except ChannelAccessRefused:
                continue
            not_refused.append(str(what))
        assert not_refused == [], f"{role} was allowed: {not_refused}"


@pytest.mark.parametrize("service", sorted(topology.QUEUE_OWNERS))
async def test_each_service_declares_its_own_topology_with_its_own_user(settings: GwSettings, service: str) -> None:
    async with provisioned_user(settings, topology.service_permissions(service)) as url:
        broker = make_broker(settings.model_copy(update={"amqp_url": url}), service=f"test-{service}")
        await broker.connect()
        try:
            own = topology.topology_for(factories.changjia_registry(), service)
            assert own.queues, f"{service} owns no queue"
            await topology.declare_topology(broker, own)  # what the service does at every start
        finally:
            await broker.stop()
