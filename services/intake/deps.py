"""What the HTTP routes need, built once in ``create_app`` and handed in as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from services.intake.config import IntakeSettings
    from services.intake.handlers import Publish
    from services.intake.metrics import IntakeMetrics
    from services.intake.store import ReportStore
    from services.intake.views import RequestViews
    from shared.registry import Registry


class BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IntakeContext:
    settings: IntakeSettings
    registry: Registry
    store: ReportStore
    views: RequestViews
    publish: Publish
    metrics: IntakeMetrics

    def status_url(self, matter_id: str) -> str:
        return f"{self.settings.stats_public_url.rstrip('/')}/v1/matters/{matter_id}"


def get_context(request: Request) -> IntakeContext:
    context: IntakeContext = request.app.state.intake
    return context


Ctx = Annotated[IntakeContext, Depends(get_context)]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with ``BodyTooLargeError`` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError
    return bytes(body)
