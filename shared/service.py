"""What every service process shares: its runtime (broker, database, registry, metrics),
a lifespan that connects, declares the topology and starts consuming, and the server.

A service package provides ``create_app(settings)``; ``shared.service`` gives it a
``ServiceRuntime`` built without I/O, started in the lifespan and stopped gracefully
(FastStream waits up to ``graceful_timeout`` for in-flight messages, then the database
client closes), and ``run_service``, the runner every service's ``serve`` command calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.asyncapi import asyncapi_router
from shared.broker import make_broker
from shared.http import HealthCheck, HttpMetricsMiddleware, ops_router
from shared.logging import configure_logging
from shared.mongo import MongoDoc, make_mongo_client
from shared.problems import install_problem_handlers
from shared.registry import Registry, load_registry
from shared.settings import GwSettings
from shared.topology import Topology, declare_topology, topology_for

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker
    from pymongo.asynchronous.database import AsyncDatabase
    from pymongo.asynchronous.mongo_client import AsyncMongoClient

log = logging.getLogger("gridwhistle.service")
S = TypeVar("S", bound=GwSettings)

STARTUP_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclass
class ServiceRuntime:
    """Everything a service's handlers need, created once per process."""

    service: str
    settings: GwSettings
    registry: Registry
    topology: Topology
    broker: RabbitBroker
    mongo: AsyncMongoClient[MongoDoc]
    metrics: CollectorRegistry
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    draining: bool = False  # shutting down: not ready any more

    @property
    def db(self) -> AsyncDatabase[MongoDoc]:
        return self.mongo[self.settings.mongo_db]

    async def broker_healthy(self) -> bool:
        return await self.broker.ping(timeout=2.0)

    async def mongo_healthy(self) -> bool:
        await self.db.command("ping")
        return True

    def health_checks(self) -> Mapping[str, HealthCheck]:
        return {"rabbitmq": self.broker_healthy, "mongodb": self.mongo_healthy}


def build_runtime(settings: GwSettings, service: str, *, registry: Registry | None = None) -> ServiceRuntime:
    """Build (not connect) the runtime; loading the registry validates it and fails fast."""
    registry = registry or load_registry(settings.registry_path)
    metrics = CollectorRegistry(auto_describe=True)
    return ServiceRuntime(
        service=service,
        settings=settings,
        registry=registry,
        topology=topology_for(registry, service),  # only what this service owns
        broker=make_broker(settings, service=service, metrics_registry=metrics),
        mongo=make_mongo_client(settings),
        metrics=metrics,
    )


async def connect_with_retry(what: str, connect: Callable[[], Awaitable[Any]]) -> None:
    """Keep trying a dependency at start-up, saying so, instead of crashing the process."""
    attempt = 0
    while True:
        try:
            await connect()
            return
        except Exception as error:
            delay = STARTUP_RETRY_SECONDS[min(attempt, len(STARTUP_RETRY_SECONDS) - 1)]
            attempt += 1
            log.warning(
                "dependency not ready, retrying",
                extra={"dependency": what, "attempt": attempt, "retry_in_s": delay, "error": type(error).__name__},
            )
            await asyncio.sleep(delay)


async def start_runtime(
    runtime: ServiceRuntime, *, on_started: Callable[[ServiceRuntime], Awaitable[None]] | None = None
) -> None:
    await connect_with_retry("mongodb", runtime.mongo_healthy)
    await connect_with_retry("rabbitmq", runtime.broker.connect)
    await declare_topology(runtime.broker, runtime.topology)
    if on_started is not None:
        await on_started(runtime)
    await runtime.broker.start()
    log.info("service started", extra={"service": runtime.service, "queues": len(runtime.topology.queues)})


async def stop_runtime(runtime: ServiceRuntime) -> None:
    """Background work and in-flight messages finish side by side (each bounded: the sweeper's
    pass by its own timeout, messages by the broker's share of ``shutdown_budget``), then the
    database client closes."""
    runtime.draining = True
    for task in runtime.background:
        task.cancel()
    await asyncio.gather(
        asyncio.gather(*runtime.background, return_exceptions=True),
        runtime.broker.stop(),  # waits for in-flight handlers
    )
    await runtime.mongo.close()
    log.info("service stopped", extra={"service": runtime.service})


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    on_started: Callable[[ServiceRuntime], Awaitable[None]] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan runs the runtime; ``/healthz``, ``/metrics`` and the AsyncAPI document included."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await start_runtime(runtime, on_started=on_started)
        try:
            yield
        finally:
            await stop_runtime(runtime)

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan)
    app.state.runtime = runtime
    app.add_middleware(HttpMetricsMiddleware, service=runtime.service, registry=runtime.metrics)
    install_problem_handlers(app)
    app.include_router(
        ops_router(runtime.service, runtime.metrics, runtime.health_checks, draining=lambda: runtime.draining)
    )
    app.include_router(asyncapi_router(runtime.broker, service=runtime.service))
    return app


def run_service(service: str, create_app: Callable[[S], FastAPI], settings: S, *, port: int) -> None:
    """The one way every service runs (``gridwhistle <service> serve --port N``): structured logs,
    ``create_app(settings)``, then the server on ``GW_HTTP_HOST:port`` until SIGINT/SIGTERM;
    in-flight work finishes before exit, within ``GW_GRACEFUL_TIMEOUT`` (``shutdown_budget``).
    """
    import uvicorn

    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=port,
        log_config=None,  # shared.logging already routes uvicorn's loggers
        timeout_graceful_shutdown=max(1, int(settings.shutdown_budget[0])),
        lifespan="on",
    )
    uvicorn.Server(config).run()
