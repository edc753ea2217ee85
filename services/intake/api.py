"""``POST /v1/reports`` and ``POST /v1/reports:batch`` for grid staff apps (bearer token per grid).

Answers: 202 ``{matter_id, status_url}`` only once the broker confirmed ``MatterReported``;
otherwise an RFC 9457 problem (``shared.problems``: ``application/problem+json`` with
``errors: [{"field", "reason"}]``) with 400 (malformed JSON), 401 (token),
403 (grid not covered by the token), 409 (``report_id`` reused), 413 (body too large),
422 (validation, registry miss) or 503 + ``Retry-After`` (broker down; retry is safe).
Input values are never echoed: they may be personal data.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from services.intake.deps import Deps, IntakeDeps
from services.intake.handlers import (
    IntakeUnavailableError,
    RegistryMismatchError,
    ReportConflictError,
    accept_report,
    check_against_registry,
)
from services.intake.tokens import TokenClaims, TokenError, verify_token
from shared.contracts import ReportSubmission
from shared.domain import Channel
from shared.problems import CHALLENGE, RETRY_AFTER, problem, problem_response, problem_responses

if TYPE_CHECKING:
    from collections.abc import Iterable

ROUTE_REPORTS = "/v1/reports"
ROUTE_BATCH = "/v1/reports:batch"
BATCH_CONCURRENCY = 8

router = APIRouter(tags=["reports"])


class BodyTooLargeError(Exception):
    pass


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


@dataclass
class ApiError(Exception):
    status: int
    outcome: str
    errors: list[tuple[str, str]]
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return problem(self.status, self.errors, kind=self.outcome)

    def response(self) -> JSONResponse:
        return problem_response(self.status, self.errors, kind=self.outcome, headers=self.headers or None)


def field_errors(error: ValidationError, prefix: Iterable[str | int] = ()) -> list[tuple[str, str]]:
    """``(dotted field, reason)`` per problem; never the input value."""
    found = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in (*prefix, *item["loc"]))
        found.append((loc or "body", item["msg"]))
    return found


grid_token = HTTPBearer(
    scheme_name="gridToken",
    description="A grid bearer token (`gridwhistle tokens issue --grid <grid_id>`)",
    auto_error=False,  # a missing token is our own 401 problem, not FastAPI's 403
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(grid_token)]


class ReportAccepted(BaseModel):
    matter_id: str = Field(description="The matter's id (UUID): the same for a repeated report")
    status_url: str = Field(description="Where stats shows the matter's state and timeline")
    duplicate: bool = Field(description="True: answered from an earlier acceptance, nothing published now")


class ReportBatch(BaseModel):
    reports: list[ReportSubmission] = Field(min_length=1, description="Up to `GW_INTAKE_MAX_BATCH_ITEMS` reports")


class BatchItemResult(BaseModel):
    """One item's answer: 202 with the matter, or its problem (the fields of ``Problem``)."""

    index: int
    status: int
    matter_id: str | None = None
    status_url: str | None = None
    duplicate: bool | None = None
    type: str | None = None
    title: str | None = None
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


class BatchAnswer(BaseModel):
    results: list[BatchItemResult]


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The request body as OpenAPI shows it: routes read it raw (size limit first, no echo)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def authenticate(credentials: HTTPAuthorizationCredentials | None, deps: IntakeDeps) -> TokenClaims:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, "unauthorized", [("authorization", "a grid bearer token is required")], challenge)
    try:
        return verify_token(credentials.credentials.strip(), deps.settings.verification_secrets(), kind="grid")
    except TokenError:
        raise ApiError(401, "unauthorized", [("authorization", "token not valid")], challenge) from None


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "malformed", [("body", "not valid JSON")]) from None
    except RecursionError:  # thousands of nested arrays fit in the body limit
        raise ApiError(400, "malformed", [("body", "JSON nested too deeply")]) from None


UNAVAILABLE = {
    "broker": "the report could not be handed over to the message broker; retry later",
    "store": "the report could not be recorded (the store did not answer); retry later",
}


def unavailable(deps: IntakeDeps, dependency: str = "broker") -> ApiError:
    return ApiError(
        503,
        "unavailable",
        [(dependency, UNAVAILABLE.get(dependency, UNAVAILABLE["broker"]))],
        {"Retry-After": str(deps.settings.retry_after_seconds)},
    )


async def submit(raw: Any, claims: TokenClaims, deps: IntakeDeps, *, prefix: tuple[str | int, ...] = ()) -> Any:
    """Validate, authorize and accept one report; the 202 body, or ``ApiError``."""
    try:
        submission = ReportSubmission.model_validate(raw)
    except ValidationError as error:
        raise ApiError(422, "invalid", field_errors(error, prefix)) from None
    where = ".".join(str(p) for p in prefix)
    try:  # an unknown grid is a 422 naming it, before the token is compared with it
        registered = check_against_registry(submission, deps.registry)
    except RegistryMismatchError as miss:
        raise ApiError(422, "invalid", [(f"{where}.{miss.field}" if where else miss.field, miss.reason)]) from None
    if not claims.may_report_for(submission.town_id, submission.grid_id):
        name = "town_id" if submission.town_id != claims.town_id else "grid_id"
        name = f"{where}.{name}" if where else name
        raise ApiError(403, "forbidden", [(name, "the token does not cover this grid")])
    try:
        accepted = await accept_report(deps, registered, channel=Channel.APP)
    except ReportConflictError as conflict:
        name = f"{where}.{conflict.field}" if where else conflict.field
        raise ApiError(409, "conflict", [(name, conflict.reason)]) from None
    except IntakeUnavailableError as away:
        raise unavailable(deps, away.dependency) from None
    return {
        "matter_id": accepted.matter_id,
        "status_url": deps.status_url(accepted.matter_id),
        "duplicate": accepted.duplicate,
    }


def record_failure(deps: IntakeDeps, route: str, error: ApiError) -> None:
    deps.metrics.request(route, error.outcome)
    if error.outcome in {"invalid", "malformed", "too_large"}:
        for name, _ in error.errors:
            deps.metrics.validation_failure(name.split(".", 2)[-1] if name.startswith("reports.") else name)


@router.post(
    ROUTE_REPORTS,
    status_code=202,
    response_model=ReportAccepted,
    responses={
        202: {"description": "Accepted: the broker confirmed `MatterReported` (or the report was known)"},
        **problem_responses(400, 401, 403, 409, 413, 422, 503, headers={401: CHALLENGE, 503: RETRY_AFTER}),
    },
    openapi_extra=_json_body(ReportSubmission),
)
async def post_report(request: Request, deps: Deps, credentials: Credentials) -> JSONResponse:
    """Report one matter (JSON ``ReportSubmission``)."""
    try:
        claims = authenticate(credentials, deps)
        try:
            body = await read_body(request, deps.settings.max_body_bytes)
        except BodyTooLargeError:
            raise ApiError(413, "too_large", [("body", f"larger than {deps.settings.max_body_bytes} bytes")]) from None
        answer = await submit(decode_json(body), claims, deps)
    except ApiError as error:
        record_failure(deps, ROUTE_REPORTS, error)
        return error.response()
    deps.metrics.request(ROUTE_REPORTS, "duplicate" if answer["duplicate"] else "accepted")
    return JSONResponse(answer, status_code=202)


@router.post(
    ROUTE_BATCH,
    response_model=BatchAnswer,
    responses={
        200: {"description": "One result per item, in order, each with its own status (202 or a problem)"},
        **problem_responses(400, 401, 413, 422, headers={401: CHALLENGE}),
    },
    openapi_extra=_json_body(ReportBatch),
)
async def post_reports_batch(request: Request, deps: Deps, credentials: Credentials) -> JSONResponse:
    """Report up to ``max_batch_items`` matters: ``{"reports": [...]}`` -> one result per item, in order."""
    limit = deps.settings.max_batch_body_bytes
    try:
        claims = authenticate(credentials, deps)
        try:
            body = await read_body(request, limit)
        except BodyTooLargeError:
            raise ApiError(413, "too_large", [("body", f"larger than {limit} bytes")]) from None
        raw = decode_json(body)
        items = raw.get("reports") if isinstance(raw, dict) else None
        if not isinstance(items, list) or set(raw) != {"reports"}:
            raise ApiError(422, "invalid", [("reports", "expected an object with one key 'reports' (a list)")])
        if not 1 <= len(items) <= deps.settings.max_batch_items:
            reason = f"between 1 and {deps.settings.max_batch_items} reports per batch"
            raise ApiError(422, "invalid", [("reports", reason)])
    except ApiError as error:
        record_failure(deps, ROUTE_BATCH, error)
        return error.response()

    gate = asyncio.Semaphore(BATCH_CONCURRENCY)
    results: list[dict[str, Any]] = [{} for _ in items]

    async def one(index: int, item: Any) -> dict[str, Any]:
        try:
            answer = await submit(item, claims, deps, prefix=("reports", index))
        except ApiError as error:
            record_failure(deps, ROUTE_BATCH, error)
            return {"index": index, **error.body()}
        deps.metrics.request(ROUTE_BATCH, "duplicate" if answer["duplicate"] else "accepted")
        return {"index": index, "status": 202, **answer}

    async def in_order(indices: list[int]) -> None:
        # items sharing a report_id go one after the other: the second sees the first's record
        async with gate:
            for index in indices:
                results[index] = await one(index, items[index])

    await asyncio.gather(*(in_order(group) for group in _same_report_groups(items)))
    headers = {}
    if any(r["status"] == 503 for r in results):
        headers["Retry-After"] = str(deps.settings.retry_after_seconds)
    return JSONResponse({"results": results}, status_code=200, headers=headers or None)


def _same_report_groups(items: list[Any]) -> list[list[int]]:
    groups: dict[object, list[int]] = {}
    for index, item in enumerate(items):
        key = (item.get("town_id"), item.get("report_id")) if isinstance(item, dict) else index
        groups.setdefault(str(key) if isinstance(key, tuple) else key, []).append(index)
    return list(groups.values())
