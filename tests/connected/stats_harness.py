"""Stats in-process for connected tests: the app on the real broker and store, a poller, and
``Matter``, one matter's events as dispatch would publish them (each carrying its snapshot)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.stats.app import create_app
from services.stats.config import StatsSettings
from shared.broker import make_broker, publish_event
from shared.contracts import (
    AnyEvent,
    MatterAccepted,
    MatterDispatched,
    MatterEscalated,
    MatterOwner,
    MatterReported,
    MatterResolved,
    MatterSnapshot,
)
from shared.domain import Category, Channel, Priority, Severity, Tier
from shared.registry import Registry
from shared.settings import GwSettings
from tests.factories import changjia_registry
from tools.vhosts import declare_registry_topology

REGISTRY: Registry = changjia_registry()
DEADLINE = 20.0


@asynccontextmanager
async def running_stats(settings: GwSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    stats_settings = StatsSettings(**{**settings.model_dump(), "stats_refresh_seconds": 0.3})
    await declare_registry_topology(settings)  # the operator's step: every queue exists first
    app = create_app(stats_settings, registry=REGISTRY)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stats") as client:
            yield app, client


async def eventually(check: Callable[[], Awaitable[tuple[bool, Any]]], what: str, within: float = DEADLINE) -> Any:
    """Poll ``check`` (-> ``(done, observed)``) until done; fail after ``within`` seconds with the last observation."""
    deadline = asyncio.get_running_loop().time() + within
    observed: Any = None
    while asyncio.get_running_loop().time() < deadline:
        done, observed = await check()
        if done:
            return observed
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; last observed: {observed!r}")


class Matter:
    """One matter's events as dispatch would publish them: each carries the state it produced."""

    def __init__(self, grid: str = "changjia-g005") -> None:
        self.id, self.grid, self.seq = uuid.uuid4(), grid, 0
        self.t = datetime.now(UTC) - timedelta(hours=2)
        self.state, self.lead, self.level = "reported", "", 0
        self.owners: dict[str, tuple[str, str]] = {}  # department -> (role, state)
        self.dispatched_at: datetime | None = None

    def next(self, cls: type[Any], **fields: Any) -> AnyEvent:
        self.t += timedelta(minutes=3)
        if cls is MatterAccepted or cls is MatterResolved:
            done = "accepted" if cls is MatterAccepted else "resolved"
            self.owners[fields["by"]] = (fields["role"], done)
            self.state = done if fields["role"] == "lead" else self.state
        if cls is MatterEscalated:
            self.level = max(self.level, fields["level"])
        decided = {} if cls is MatterReported else {"matter": self.snapshot()}
        event: AnyEvent = cls(
            matter_id=self.id,
            town_id="changjia",
            grid_id=self.grid,
            category=Category.SERVICE_PROXY,
            occurred_at=self.t,
            sequence=self.seq,
            **decided,
            **fields,
        )
        self.seq += 1
        return event

    def snapshot(self) -> MatterSnapshot:
        owners = [
            MatterOwner(owner_id=d, role=role, state=state, escalation_level=self.level if role == "lead" else 0)
            for d, (role, state) in self.owners.items()
        ]
        return MatterSnapshot(
            state=self.state,
            round=1,
            severity=Severity.MAJOR,
            tier=Tier.DEPARTMENT,
            lead=self.lead,
            owners=owners,
            open_departments=sorted(o.owner_id for o in owners if o.state in ("dispatched", "accepted")),
            dispatched_at=self.dispatched_at,
            escalation_level=self.level,
        )

    def reported(self) -> AnyEvent:
        return self.next(
            MatterReported,
            report_id=f"r-{self.id}",
            channel=Channel.APP,
            severity=Severity.MAJOR,
            summary="help with a pension form",
        )

    def dispatched(self, lead: str, supporting: list[str] | None = None) -> AnyEvent:
        self.state, self.lead, self.dispatched_at = "dispatched", lead, self.t + timedelta(minutes=3)
        self.owners = {lead: ("lead", "dispatched"), **{d: ("supporting", "dispatched") for d in supporting or []}}
        return self.next(
            MatterDispatched,
            round=1,
            severity=Severity.MAJOR,
            tier=Tier.DEPARTMENT,
            lead=lead,
            supporting=supporting or [],
            priority=Priority.P2,
            rule_id="service-major",
            accept_by=self.t + timedelta(hours=4),
            resolve_by=self.t + timedelta(days=2),
        )


async def publish_events(settings: GwSettings, events: list[AnyEvent]) -> None:
    """Publish events on gw.events as dispatch and intake would (confirmed)."""
    publisher = make_broker(settings, service="test-publisher")
    await publisher.connect()
    try:
        for event in events:
            await publish_event(publisher, event)
    finally:
        await publisher.stop()
