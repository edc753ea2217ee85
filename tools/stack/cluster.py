"""The local three-node RabbitMQ cluster as the chaos run and its tests use it.

Settings that point a client at every node, and the faults a node can suffer — SIGKILL of its
Erlang VM, SIGSTOP/SIGCONT, a disk alarm — always on processes this stack started (checked by
pid file, command line and environment, like ``stack down``).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from shared.management import connection_options
from shared.settings import PROJECT_ROOT, GwSettings
from tools.stack.components import RabbitMQ, StackContext, make_components
from tools.stack.core import stack_up
from tools.stack.model import CLUSTER, StackError, StackPaths, cluster_failover, cluster_nodes, format_address

if TYPE_CHECKING:
    from tools.stack.core import Say

DISK_ALARM_LIMIT = "10000GB"
"""A free-disk limit no machine here meets: the node raises its disk alarm at once."""
DISK_LIMIT = "50MB"
"""RabbitMQ's default free-disk limit, restored when the alarm is lifted."""


def cluster_settings(base: GwSettings) -> GwSettings:
    """``base`` pointed at the cluster: node 1's URL and management API, nodes 2 and 3 as failover."""
    first = cluster_nodes()[0]
    return base.model_copy(
        update={
            "amqp_url": f"amqp://guest:guest@{format_address(first.amqp_host, first.amqp_port)}/",
            "amqp_failover": cluster_failover(),
            "amqp_management_url": f"http://guest:guest@127.0.0.1:{first.management_port}",
        }
    )


def cluster_up(base: GwSettings, *, say: Say | None = None) -> None:
    """Start whatever of the three nodes is not running (node by node)."""
    stack_up(base, ["cluster"], say=say)


def node(base: GwSettings, name: str) -> RabbitMQ:
    """The stack component of one cluster node (``rabbitmq-1`` … ``rabbitmq-3``)."""
    if name not in CLUSTER:
        raise ValueError(f"{name!r} is not a cluster node ({', '.join(CLUSTER)})")
    comp = make_components(StackContext(base, StackPaths(base.state_dir, PROJECT_ROOT)))[name]
    assert isinstance(comp, RabbitMQ)
    return comp


def _beam(comp: RabbitMQ) -> int:
    pid = comp.beam_pid()
    if pid is None:
        raise StackError(comp.name, "not running (no Erlang VM of ours)")
    return pid


def kill_node(base: GwSettings, name: str) -> int:
    """SIGKILL the node's Erlang VM (what a crashed machine looks like); returns its pid."""
    pid = _beam(node(base, name))
    os.kill(pid, signal.SIGKILL)
    return pid


def pause_node(base: GwSettings, name: str) -> int:
    """SIGSTOP the node's Erlang VM: it holds its sockets but answers nothing."""
    pid = _beam(node(base, name))
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume_node(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


def restart_node(base: GwSettings, name: str, *, say: Say | None = None) -> None:
    """Start the node again (after a kill); it rejoins the cluster from its own data."""
    stack_up(base, [name], say=say)


def set_disk_alarm(base: GwSettings, name: str, *, on: bool) -> None:
    """Raise (or lift) a disk alarm on one node: the cluster blocks every publishing connection."""
    done = node(base, name).ctl("set_disk_free_limit", DISK_ALARM_LIMIT if on else DISK_LIMIT, timeout=30)
    if done.returncode != 0:
        raise StackError(name, f"set_disk_free_limit failed: {(done.stderr or done.stdout).strip()}")


def queue_leaders(settings: GwSettings, vhost: str, prefix: str = "") -> Counter[str]:
    """How many quorum queues (named ``prefix``…) each node leads in ``vhost``, by node component name."""
    by_nodename = {n.nodename: n.component for n in cluster_nodes()}
    with httpx.Client(**connection_options(settings)) as client:
        response = client.get(f"/api/queues/{quote(vhost, safe='')}", params={"columns": "name,leader,node"})
        response.raise_for_status()
    leaders: Counter[str] = Counter()
    for queue in response.json():
        if str(queue.get("name", "")).startswith(prefix):
            leader = queue.get("leader") or queue.get("node")
            leaders[by_nodename.get(str(leader), str(leader))] += 1
    return leaders
