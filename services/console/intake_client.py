"""The console's report port: grid staff's reports go to intake's HTTP API as the grid.

Intake authenticates a grid with a bearer token (``services.intake.tokens``, HS256 over
``GW_TOKEN_SECRET``, ``kind: grid``). The console holds that secret (it verifies console
credentials with it), so for each report it signs a grid token for the signed-in grid only,
valid for a few minutes: intake applies its own rules (the token covers that grid, the registry,
``report_id`` idempotency, 202 only after the broker confirmed). The console writes nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from services.intake.tokens import issue_token

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

Json = dict[str, Any]
TOKEN_LIFETIME = timedelta(minutes=5)


class IntakeUnavailableError(Exception):
    """Intake did not answer, or answered 5xx (the report may be retried: ``report_id`` dedupes)."""


@dataclass(frozen=True)
class ReportRefusedError(Exception):
    """Intake refused the report (4xx): its problem's ``errors`` (field, reason)."""

    status: int
    errors: list[tuple[str, str]] = field(default_factory=list)


class HttpIntakeReporter:
    def __init__(self, http: httpx.AsyncClient, secret: SecretStr) -> None:
        self.http = http
        self.secret = secret

    async def report(self, town_id: str, grid_id: str, body: Json) -> Json:
        """POST /v1/reports as the grid; the 202 answer (``matter_id``, ``duplicate``)."""
        import httpx

        token = issue_token(self.secret, town_id=town_id, grid_id=grid_id, valid_for=TOKEN_LIFETIME)
        try:
            response = await self.http.post("/v1/reports", json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            raise IntakeUnavailableError(type(error).__name__) from None
        if response.status_code >= 500:
            raise IntakeUnavailableError(f"HTTP {response.status_code}")
        if response.status_code != 202:
            problem: Json = response.json() if "json" in response.headers.get("content-type", "") else {}
            errors = [(str(e.get("field")), str(e.get("reason"))) for e in problem.get("errors") or []]
            raise ReportRefusedError(response.status_code, errors)
        answer: Json = response.json()
        return answer
