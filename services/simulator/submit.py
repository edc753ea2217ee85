"""Sends planned matters through intake's public interfaces, as real sources would:
grid staff apps (``POST /v1/reports`` with the grid's bearer token), Open311 clients
(form-encoded ``POST /open311/v2/requests.json`` with a town api_key) and machine sources
(``ReportSubmission`` on ``gw.intake``). A 503 is retried after its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aio_pika
import httpx
from aiormq.exceptions import ChannelInvalidStateError

from services.intake.tokens import TokenKind, issue_token
from shared import topology
from shared.broker import publish_confirmed
from shared.contracts import ReportSubmission
from shared.domain import Channel, ReporterRole

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.rabbit import RabbitBroker

    from services.simulator.scenario import PlannedMatter
    from shared.settings import GwSettings

log = logging.getLogger("gridwhistle.simulator.submit")

MAX_ATTEMPTS = 20


@dataclass
class SubmitStats:
    accepted: int = 0
    duplicates: int = 0
    retried: int = 0
    failed: int = 0
    matter_ids: dict[str, str] = field(default_factory=dict)  # report_id -> matter_id (HTTP channels)
    sent_at: dict[str, float] = field(default_factory=dict)  # matter_id -> monotonic time the request went out
    answer_seconds: list[float] = field(default_factory=list)  # HTTP 202 latencies (accepted reports)
    accepted_at: list[float] = field(default_factory=list)  # monotonic time of each acceptance (every channel)
    answered_at: list[float] = field(default_factory=list)  # monotonic time of each HTTP 202 (intake itself)
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP status of every attempt
    max_attempt_seconds: float = 0.0  # the slowest single attempt, answered or not (what a client waited)

    @property
    def server_errors(self) -> int:
        """Answers 5xx other than 503 (a 503 is the honest "retry later")."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


def summary_of(m: PlannedMatter) -> str:
    return f"Simulated {m.category.value.replace('_', ' ')} matter #{m.index} ({m.severity.value})"


def submission_of(m: PlannedMatter) -> ReportSubmission:
    return ReportSubmission(
        report_id=m.report_id,
        town_id=m.town_id,
        grid_id=m.grid_id,
        micro_grid_id=m.micro_grid_id,
        category=m.category,
        severity=m.severity,
        origin=m.origin,
        summary=summary_of(m),
        reporter_id=m.reporter_id,
        reporter_role=ReporterRole.SENSOR if m.channel == Channel.AMQP else ReporterRole.GRID_MEMBER,
        occurred_at=datetime.now(UTC),
        service_item=m.service_item,
        service_details=dict(m.service_details),
    )


class Submitter:
    def __init__(self, settings: GwSettings, intake_url: str, broker: RabbitBroker | None) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(base_url=intake_url, timeout=httpx.Timeout(30.0))
        self.broker = broker
        self._tokens: dict[tuple[str, str | None, TokenKind], str] = {}
        self._submissions: dict[str, ReportSubmission] = {}
        self.stats = SubmitStats()

    async def close(self) -> None:
        await self.http.aclose()

    def submission(self, m: PlannedMatter) -> ReportSubmission:
        """Built once per report: a retry sends the very same body (intake answers it as a duplicate)."""
        if m.report_id not in self._submissions:
            self._submissions[m.report_id] = submission_of(m)
        return self._submissions[m.report_id]

    def token(self, town_id: str, grid_id: str | None, kind: TokenKind) -> str:
        key = (town_id, grid_id, kind)
        if key not in self._tokens:
            self._tokens[key] = issue_token(self.settings.token_secret, town_id=town_id, grid_id=grid_id, kind=kind)
        return self._tokens[key]

    async def submit(self, m: PlannedMatter) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                done = await self._submit_once(m, started)
            except (httpx.TransportError, OSError, aio_pika.exceptions.AMQPError, ChannelInvalidStateError) as error:
                log.warning("intake unreachable, retrying", extra={"attempt": attempt, "error": type(error).__name__})
                done = False
            self.stats.max_attempt_seconds = max(self.stats.max_attempt_seconds, time.monotonic() - started)
            if done:
                return
            self.stats.retried += 1
            await asyncio.sleep(min(5.0, 0.2 * attempt))
        self.stats.failed += 1
        log.error("report not accepted after retries", extra={"report_id": m.report_id})

    async def _submit_once(self, m: PlannedMatter, started: float) -> bool:
        if m.channel == Channel.AMQP and self.broker is not None:
            body = self.submission(m).model_dump(mode="json", exclude_none=True)
            await publish_confirmed(
                self.broker,
                body,
                exchange=topology.INTAKE,
                routing_key=topology.intake_routing_key(m.town_id, "simulator"),
                message_id=m.report_id,
            )
            self.stats.accepted += 1
            self.stats.accepted_at.append(time.monotonic())
            return True
        if m.channel == Channel.OPEN311:
            response = await self.http.post(
                "/open311/v2/requests.json",
                data={
                    **{f"attribute[{code}]": value for code, value in m.service_details},
                    "jurisdiction_id": m.town_id,
                    "service_code": m.service_item or m.category.value,
                    "description": summary_of(m),
                    "address_string": f"micro-grid {m.micro_grid_id}",
                    "api_key": self.token(m.town_id, None, "open311"),
                    "attribute[grid_id]": m.grid_id,
                    "attribute[micro_grid_id]": m.micro_grid_id,
                    "attribute[severity]": m.severity.value,
                    "attribute[report_id]": m.report_id,
                },
            )
            return self._accept(m, response, started, lambda b: b[0]["service_request_id"])
        response = await self.http.post(
            "/v1/reports",
            json=self.submission(m).model_dump(mode="json", exclude_none=True),
            headers={"Authorization": f"Bearer {self.token(m.town_id, m.grid_id, 'grid')}"},
        )
        return self._accept(m, response, started, lambda b: b["matter_id"])

    def _accept(
        self, m: PlannedMatter, response: httpx.Response, started: float, matter_of: Callable[[Any], str]
    ) -> bool:
        self.stats.statuses[response.status_code] += 1
        if response.status_code in (200, 201, 202):
            body = response.json()
            matter_id = str(matter_of(body))
            self.stats.matter_ids[m.report_id] = matter_id
            self.stats.sent_at[matter_id] = started
            self.stats.answer_seconds.append(time.monotonic() - started)
            self.stats.answered_at.append(time.monotonic())
            if isinstance(body, dict) and body.get("duplicate"):
                self.stats.duplicates += 1
            self.stats.accepted += 1
            self.stats.accepted_at.append(time.monotonic())
            return True
        if response.status_code == 503 or response.status_code >= 500:
            return False
        self.stats.failed += 1  # a 4xx is a bug in the scenario or the registry: say so, don't retry
        log.error(
            "report refused",
            extra={"report_id": m.report_id, "status": response.status_code, "body": response.text[:300]},
        )
        return True
