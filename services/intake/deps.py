"""Intake's ports, built once in ``create_app`` and handed to every handler, route and subscriber."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.intake.config import IntakeSettings
    from services.intake.metrics import IntakeMetrics
    from services.intake.store import ReportRecord
    from services.intake.views import RequestFilter, RequestView
    from shared.contracts import MatterReported
    from shared.registry import Registry

Publish = Callable[["MatterReported"], Awaitable[None]]
"""Publish one ``MatterReported`` and return once the broker confirmed it."""


class ReportRepository(Protocol):
    """``services.intake.store.ReportStore`` as the accept flow uses it (a fake in unit tests)."""

    async def get(self, key: str) -> ReportRecord | None: ...
    async def insert_pending(self, record: ReportRecord) -> bool: ...
    async def mark_published(self, key: str) -> None: ...


class RequestLookup(Protocol):
    """``services.intake.views.RequestViews``: the read-only queries behind Open311's GET requests."""

    async def by_ids(self, matter_ids: Sequence[str]) -> list[RequestView]: ...
    async def search(self, wanted: RequestFilter, *, limit: int) -> list[RequestView]: ...


@dataclass(frozen=True, slots=True)
class IntakeDeps:
    settings: IntakeSettings
    registry: Registry
    store: ReportRepository
    views: RequestLookup
    publish: Publish
    metrics: IntakeMetrics

    @property
    def prefetch(self) -> int:
        return self.settings.prefetch

    def status_url(self, matter_id: str) -> str:
        return f"{self.settings.stats_public_url.rstrip('/')}/v1/matters/{matter_id}"


def get_deps(request: Request) -> IntakeDeps:
    deps: IntakeDeps = request.app.state.deps
    return deps


Deps = Annotated[IntakeDeps, Depends(get_deps)]
