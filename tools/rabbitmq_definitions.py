"""Generate RabbitMQ definitions (topology, users, policies) from ``shared.topology``.

    .venv/bin/python -m tools.rabbitmq_definitions          # rewrite the checked-in files
    .venv/bin/python -m tools.rabbitmq_definitions --check  # exit 1 if one differs

The broker then starts with every exchange, quorum queue (delivery limit, at-least-once
dead-lettering) and binding the services would declare themselves, so a department's queue
exists (and collects work) before its first consumer connects. Users carry no password hash:
passwords are set at deploy time (compose: the ``rabbitmq-init`` service; k8s: Secrets), never
committed. Written for the registry in ``GW_REGISTRY_PATH`` (default: Changjia); regenerate with
the county directory for a county deployment.

Users: one per service (``shared.topology.service_user``: ``gw-intake``, ``gw-dispatch``,
``gw-stats``) with exactly ``shared.topology.service_permissions``, the user each service's
``GW_AMQP_URL`` names; ``OPERATOR_USER`` (``gridwhistle``, tag ``administrator``) for the operator
alone (``GW_AMQP_MANAGEMENT_URL``, ``gridwhistle topology declare``, ``dlq``, ``users provision``):
no service connects as it; ``monitoring`` (no permission on any resource); compose also the bot's
department user.

The k8s definitions carry neither service nor department users: there the messaging-topology
operator owns one ``User``/``Permission`` per service and per department
(``tools/k8s_broker_users.py``), and a user in the definitions would be re-imported without a
password at every broker boot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.registry import load_registry
from shared.settings import GwSettings
from shared.topology import (
    DEAD,
    DELIVERY_LIMIT,
    QUEUE_OWNERS,
    Topology,
    department_permissions,
    department_user,
    service_permissions,
    service_user,
    topology_for,
)

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_TARGET = ROOT / "deploy" / "compose" / "rabbitmq" / "definitions.json"
K8S_TARGET = ROOT / "deploy" / "k8s" / "base" / "rabbitmq" / "definitions.json"
TARGETS = {COMPOSE_TARGET: True, K8S_TARGET: False}
"""Each target, and whether its definitions carry the client users (the services' and the bot's
department user); on k8s the messaging-topology operator owns those."""
VHOST = "/"
BOT_DEPARTMENT = "changjia.comprehensive_governance"
"""The department the compose/k8s department bot works for: the one department user defined here
(compose only). Real departments get theirs with ``gridwhistle users provision --department <id>``
(same permissions); on k8s every department has a ``User`` (``tools/k8s_broker_users.py``)."""
OPERATOR_USER = "gridwhistle"
"""The operator's (administrator) user: the management API and the topology. No service connects as it."""
SERVICES = tuple(QUEUE_OWNERS)
"""The services with a broker user of their own: intake, dispatch, stats."""


def definitions(topology: Topology, client_users: bool = True) -> dict[str, Any]:
    queues = []
    bindings = []
    for spec in topology.all_queues():
        arguments = {"x-queue-type": "quorum", **spec.arguments()}
        queues.append(
            {"name": spec.name, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": arguments}
        )
        bindings += [
            {
                "source": b.exchange.name,
                "vhost": VHOST,
                "destination": spec.name,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in spec.bindings
        ]
    exchanges: list[dict[str, Any]] = [
        {
            "name": e.name,
            "vhost": VHOST,
            "type": e.type.value,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for e in topology.exchanges
    ]
    # (name, tags, permissions on VHOST)
    users: list[tuple[str, list[str], dict[str, str]]] = [
        # the operator's, never a service's: it configures the gw topology and reads/writes anything
        (
            OPERATOR_USER,
            ["administrator"],
            {"configure": "^(gw|intake|dispatch|stats|dept|grid|supervision)\\.", "write": ".*", "read": ".*"},
        ),
        ("monitoring", ["monitoring"], {"configure": "^$", "write": "^$", "read": "^$"}),
    ]
    if client_users:
        # each service: its own queues and the exchanges it publishes to, nothing else
        users += [(service_user(s), [], service_permissions(s)) for s in SERVICES]
        # a department reads its own queue only, and sends commands (configures nothing)
        users.append((department_user(BOT_DEPARTMENT), [], department_permissions(BOT_DEPARTMENT)))
    return {
        "rabbit_version": "3.10.8",
        "vhosts": [{"name": VHOST}],
        "users": [
            {
                "name": name,
                "password_hash": "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": tags,
            }
            for name, tags, _ in users
        ],
        "permissions": [{"user": name, "vhost": VHOST, **permissions} for name, _, permissions in users],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
        "policies": [
            {
                # backstop for a queue declared without our arguments (x-args win where both exist)
                "vhost": VHOST,
                "name": "gw-work-queues",
                "pattern": "^(intake|dispatch|stats|dept|grid|supervision)\\.(?!.*\\.dead$)",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"delivery-limit": DELIVERY_LIMIT, "dead-letter-exchange": DEAD.name},
            },
            {
                # dead letters are kept for `gridwhistle dlq`, but not without bound
                "vhost": VHOST,
                "name": "gw-dead-letters",
                "pattern": "\\.dead$",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"max-length": 100000},
            },
        ],
    }


def render(client_users: bool = True) -> str:
    topology = topology_for(load_registry(GwSettings().registry_path))
    return json.dumps(definitions(topology, client_users), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="RabbitMQ definitions from shared.topology")
    parser.add_argument("--check", action="store_true", help="fail if a checked-in file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, client_users in TARGETS.items():
        text = render(client_users)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write(f"stale definitions (run python -m tools.rabbitmq_definitions): {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
