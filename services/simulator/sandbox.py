"""Three service processes in a private RabbitMQ vhost and database, on their own ports.

Used by ``make bench`` and the end-to-end tests, so neither disturbs (nor is disturbed by)
a running ``make run``. Everything it creates it removes: processes by PID, the vhost, the
database.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from types import TracebackType

from pymongo import MongoClient

from services.simulator.processes import ManagedProcess, service_argv
from services.simulator.replay import ReplayOptions
from shared import topology
from shared.settings import GwSettings
from tools.vhosts import (
    create_user,
    create_vhost,
    declare_registry_topology_blocking,
    delete_user,
    delete_vhost,
)

DEFAULT_PORTS = {"stats": 18030, "dispatch": 18020, "intake": 18010, "console": 18040}


@dataclass
class ServiceSandbox:
    base: GwSettings
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    label: str = "sandbox"
    extra_env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = ("stats", "dispatch", "intake")
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per service (default 1); replica i > 0 listens on the service's port + 100 * i."""
    least_privilege: bool = False
    """Each service connects as its own broker user with ``topology.service_permissions`` (as in
    production) instead of the vhost's admin."""
    users: list[str] = field(default_factory=list)
    vhost: str = ""
    db: str = ""
    processes: list[ManagedProcess] = field(default_factory=list)
    settings: GwSettings | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def replay_options(self, *, matters: int, rate: float, seed: int = 1, poll_every: float = 0.5) -> ReplayOptions:
        """A replay against this sandbox: bots at full speed, a fresh run id, until every matter is closed."""
        return ReplayOptions(
            speed=float("inf"),
            rate=rate,
            seed=seed,
            run_id=uuid.uuid4().hex[:6],
            limit=matters,
            until_drained=True,
            drain_timeout=900.0,
            intake_url=self.url("intake"),
            stats_url=self.url("stats"),
            concurrency=64,
            poll_every=poll_every,
        )

    def __enter__(self) -> ServiceSandbox:
        suffix = uuid.uuid4().hex[:8]
        self.vhost, self.db = f"gw-{self.label}-{suffix}", f"gw{self.label}_{suffix}"
        amqp_url = create_vhost(self.base, self.vhost)
        self.settings = self.base.model_copy(update={"amqp_url": amqp_url, "mongo_db": self.db})
        env = {
            "GW_AMQP_URL": amqp_url,
            "GW_MONGO_DB": self.db,
            "GW_STATS_PUBLIC_URL": self.url("stats"),
            **self.extra_env,
        }
        logs = self.base.state_dir / "logs" / self.label
        try:
            registry = self.extra_env.get("GW_REGISTRY_PATH")
            operator = self.settings.model_copy(update={"registry_path": registry}) if registry else self.settings
            declare_registry_topology_blocking(operator)  # the operator's step, before any service
            service_env = {name: self._service_env(name, suffix) for name in self.services}
            for name in self.services:
                for replica in range(self.replicas.get(name, 1)):
                    port = self.ports[name] + 100 * replica
                    label = name if replica == 0 else f"{name}-{replica + 1}"
                    proc = ManagedProcess(
                        label,
                        service_argv(name, port),
                        logs / f"{label}.log",
                        env={**env, **service_env[name]},
                        health_url=f"http://127.0.0.1:{port}/healthz",
                    )
                    proc.start()
                    self.processes.append(proc)
                    proc.wait_healthy()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _service_env(self, service: str, suffix: str) -> dict[str, str]:
        if not self.least_privilege or service not in topology.QUEUE_OWNERS:
            return {}
        user = f"{topology.service_user(service)}-{self.label}-{suffix}"
        self.users.append(user)
        url = create_user(self.base, self.vhost, user, secrets.token_urlsafe(18), topology.service_permissions(service))
        return {"GW_AMQP_URL": url}

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self.processes):
            proc.stop(grace=30)
        for user in self.users:
            delete_user(self.base, user)
        delete_vhost(self.base, self.vhost)
        client: MongoClient[dict[str, object]]
        with MongoClient(self.base.mongo_url, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(self.db)
