"""Open311 GeoReport v2 under ``/open311/v2/``: every endpoint in ``.xml`` (the spec's required
format, ``open311_xml``) and ``.json`` with the same content; another format is a 400.

``jurisdiction_id`` is the town. POST ``requests.json`` is form-encoded and needs an Open311
``api_key`` (a token of kind ``open311``, for a town or one grid); it is accepted only once the
broker confirmed ``MatterReported``. Statuses come from the stats read model (read-only).
Errors are a list of ``{code, description}`` (``<errors><error>`` in XML) with the same HTTP status.
``GET requests`` pages with ``page`` (from 1) and ``page_size``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.intake.api import BodyTooLargeError, read_body
from services.intake.deps import Deps, IntakeDeps
from services.intake.handlers import (
    IntakeUnavailableError,
    RegistryMismatchError,
    ReportConflictError,
    accept_report,
    check_against_registry,
)
from services.intake.open311_answers import FORMATS, Open311Error, check_format, paging, parse_date, render_answer
from services.intake.open311_catalogue import (
    CATEGORY_CODES,
    derived_report_id,
    find_service_item,
    form_field,
    form_to_submission,
    location_problem,
    service_definition,
    service_list,
    service_request,
)
from services.intake.open311_schemas import (
    ERRORS,
    FORM_BODY,
    UNAVAILABLE,
    XML_OK,
    Open311Created,
    Open311Service,
    Open311ServiceDefinition,
    Open311ServiceRequest,
)
from services.intake.tokens import TokenClaims, TokenError, verify_token
from services.intake.views import RequestFilter, RequestView
from shared.contracts import ReportSubmission
from shared.domain import Channel

PREFIX = "/open311/v2"
ROUTE_SERVICES = f"{PREFIX}/services.json"
ROUTE_SERVICE = f"{PREFIX}/services/{{service_code}}.json"
ROUTE_REQUESTS = f"{PREFIX}/requests.json"
ROUTE_REQUEST = f"{PREFIX}/requests/{{service_request_id}}.json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

router = APIRouter(prefix=PREFIX, tags=["open311"])


def _jurisdiction(deps: IntakeDeps, value: str | None, *, required: bool) -> str | None:
    if value:
        if not deps.registry.has_town(value):
            raise Open311Error(404, "not_found", "jurisdiction_id: unknown jurisdiction")
        return value
    if required:
        towns = deps.registry.town_ids
        if len(towns) == 1:
            return towns[0]
        raise Open311Error(400, "invalid", "jurisdiction_id: required")
    return None


def _answer(deps: IntakeDeps, route: str, fmt: str, kind: str, body: Any, outcome: str = "ok") -> Response:
    deps.metrics.request(route, outcome)
    return render_answer(fmt, kind, body)


def _failed(deps: IntakeDeps, route: str, error: Open311Error, fmt: str) -> Response:
    deps.metrics.request(route, error.outcome)
    if error.outcome == "invalid":
        for description in error.descriptions:
            deps.metrics.validation_failure(description.split(":", 1)[0])
    return error.response(fmt if fmt in FORMATS else "json")


@router.get("/services.{fmt}", response_model=list[Open311Service], responses={**ERRORS, **XML_OK})
async def get_services(deps: Deps, fmt: str, jurisdiction_id: str | None = None) -> Response:
    """The town's service catalogue, grouped by category (``group``): each group lists its service
    items, then the category itself for matters no item fits. Without ``jurisdiction_id`` the
    registry's only town (several towns: the categories only)."""
    try:
        check_format(fmt)
        town_id = _jurisdiction(deps, jurisdiction_id, required=False) or _only_town(deps)
    except Open311Error as error:
        return _failed(deps, ROUTE_SERVICES, error, fmt)
    return _answer(deps, ROUTE_SERVICES, fmt, "services", service_list(deps.registry, town_id))


@router.get("/services/{service_code}.{fmt}", response_model=Open311ServiceDefinition, responses={**ERRORS, **XML_OK})
async def get_service_definition(
    deps: Deps, service_code: str, fmt: str, jurisdiction_id: str | None = None, api_key: str | None = None
) -> Response:
    """A service's attributes: ``grid_id`` lists the jurisdiction's grids, and is not required
    when the (optional) ``api_key`` was issued for one grid."""
    try:
        check_format(fmt)
        town_id = _jurisdiction(deps, jurisdiction_id, required=True)
        assert town_id is not None
        item = find_service_item(deps.registry, town_id, service_code)
        if item is None and service_code not in CATEGORY_CODES:
            raise Open311Error(404, "not_found", "service_code: unknown service")
        claims = _api_key(deps, api_key) if api_key else None
    except Open311Error as error:
        return _failed(deps, ROUTE_SERVICE, error, fmt)
    grids = [(g.grid_id, f"{g.name_zh} {g.name}") for g in deps.registry.all_grids() if g.town_id == town_id]
    grid_known = claims is not None and claims.grid_id is not None
    body = service_definition(service_code, grids, grid_required=not grid_known, item=item)
    return _answer(deps, ROUTE_SERVICE, fmt, "service_definition", body)


@router.post(
    "/requests.{fmt}",
    response_model=list[Open311Created],
    responses={**ERRORS, **UNAVAILABLE, **XML_OK},
    openapi_extra=FORM_BODY,
)
async def post_service_request(request: Request, deps: Deps, fmt: str) -> Response:
    """Create a service request (form-encoded): the answer carries its ``service_request_id``."""
    try:
        check_format(fmt)
        pairs = await _read_form(request, deps)
        form = dict(pairs)
        claims = _api_key(deps, form.get("api_key", ""))
        town_id = _jurisdiction(deps, form.get("jurisdiction_id") or claims.town_id, required=True)
        assert town_id is not None
        if not form.get("service_code"):
            raise Open311Error(400, "invalid", "service_code: required")
        item = find_service_item(deps.registry, town_id, form["service_code"])
        if item is None and form["service_code"] not in CATEGORY_CODES:
            raise Open311Error(400, "invalid", "service_code: unknown service")
        if (problem := location_problem(form)) is not None:
            raise Open311Error(400, "invalid", problem)
        report_id = form.get("attribute[report_id]") or derived_report_id(pairs)
        raw = form_to_submission(form, town_id, claims.grid_id, report_id, item)
        if raw["grid_id"] is None:
            raise Open311Error(400, "invalid", "attribute[grid_id]: required")
        try:
            submission = ReportSubmission.model_validate(raw)
        except ValidationError as error:
            raise Open311Error(400, "invalid", *_descriptions(error)) from None
        try:
            registered = check_against_registry(submission, deps.registry)
        except RegistryMismatchError as miss:
            raise Open311Error(400, "invalid", f"{form_field(miss.field)}: {miss.reason}") from None
        if not claims.may_report_for(submission.town_id, submission.grid_id):
            raise Open311Error(403, "forbidden", "api_key: not valid for this grid")
        try:
            accepted = await accept_report(deps, registered, channel=Channel.OPEN311)
        except ReportConflictError:
            raise Open311Error(409, "conflict", "attribute[report_id]: already used for a different request") from None
        except IntakeUnavailableError:
            retry = {"Retry-After": str(deps.settings.retry_after_seconds)}
            raise Open311Error(503, "unavailable", "service unavailable, retry later", headers=retry) from None
    except Open311Error as error:
        return _failed(deps, ROUTE_REQUESTS, error, fmt)
    town_name = deps.registry.town(town_id).name
    body = [
        {
            "service_request_id": accepted.matter_id,
            "service_notice": f"Received by {town_name}; the grid will handle it.",
            "account_id": None,
        }
    ]
    return _answer(
        deps, ROUTE_REQUESTS, fmt, "requests", body, outcome="duplicate" if accepted.duplicate else "accepted"
    )


@router.get("/requests.{fmt}", response_model=list[Open311ServiceRequest], responses={**ERRORS, **XML_OK})
async def get_service_requests(
    *,
    deps: Deps,
    fmt: str,
    jurisdiction_id: str | None = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
) -> Response:
    """Service requests: by ids (other filters ignored, as the spec says) or by filters, newest
    first, one ``page`` (from 1) of ``page_size`` at a time (default and most: the max results)."""
    limit = deps.settings.open311_max_results
    try:
        check_format(fmt)
        town_id = _jurisdiction(deps, jurisdiction_id, required=False)
        number, size = paging(page, page_size, limit)
        if service_request_id:
            ids = [i.strip() for i in service_request_id.split(",") if i.strip()][:limit]
            views = await deps.views.by_ids(ids)
        else:
            wanted = _filter(deps, town_id, codes=service_code, start=start_date, end=end_date, status=status)
            views = (await deps.views.search(wanted, limit=number * size))[(number - 1) * size :]
    except Open311Error as error:
        return _failed(deps, ROUTE_REQUESTS, error, fmt)
    body = [service_request(v, deps.registry) for v in views if town_id is None or _town_of(v) == town_id]
    return _answer(deps, ROUTE_REQUESTS, fmt, "requests", body[:size])


@router.get(
    "/requests/{service_request_id}.{fmt}", response_model=list[Open311ServiceRequest], responses={**ERRORS, **XML_OK}
)
async def get_service_request(
    deps: Deps, service_request_id: str, fmt: str, jurisdiction_id: str | None = None
) -> Response:
    """One service request, as a list of one (the spec's shape)."""
    try:
        check_format(fmt)
        town_id = _jurisdiction(deps, jurisdiction_id, required=False)
        views = await deps.views.by_ids([service_request_id])
        if not views or (town_id is not None and _town_of(views[0]) != town_id):
            raise Open311Error(404, "not_found", "service_request_id: not found")
    except Open311Error as error:
        return _failed(deps, ROUTE_REQUEST, error, fmt)
    return _answer(deps, ROUTE_REQUEST, fmt, "requests", [service_request(views[0], deps.registry)])


# ---------------------------------------------------------------- helpers


async def _read_form(request: Request, deps: IntakeDeps) -> list[tuple[str, str]]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_CONTENT_TYPE:
        raise Open311Error(400, "malformed", f"body: must be {FORM_CONTENT_TYPE}")
    try:
        body = await read_body(request, deps.settings.max_body_bytes)
    except BodyTooLargeError:
        raise Open311Error(413, "too_large", f"body: larger than {deps.settings.max_body_bytes} bytes") from None
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise Open311Error(400, "malformed", "body: not a valid form") from None


def _api_key(deps: IntakeDeps, api_key: str) -> TokenClaims:
    if not api_key:
        raise Open311Error(401, "unauthorized", "api_key: required")
    try:
        return verify_token(api_key, deps.settings.verification_secrets(), kind="open311")
    except TokenError:
        raise Open311Error(401, "unauthorized", "api_key: not valid") from None


def _descriptions(error: ValidationError) -> list[str]:
    found = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in item["loc"] if not isinstance(p, int))
        found.append(f"{form_field(loc)}: {item['msg']}")
    return found


def _filter(
    deps: IntakeDeps,
    town_id: str | None,
    *,
    codes: str | None,
    start: str | None,
    end: str | None,
    status: str | None,
) -> RequestFilter:
    start_date, end_date = start, end
    wanted_codes = [c.strip() for c in (codes or "").split(",") if c.strip()]
    items = {c for c in wanted_codes if c not in CATEGORY_CODES and _is_service_item(deps, town_id, c)}
    if unknown := [c for c in wanted_codes if c not in CATEGORY_CODES and c not in items]:
        raise Open311Error(400, "invalid", f"service_code: unknown service ({len(unknown)} of {len(wanted_codes)})")
    statuses = frozenset(s.strip() for s in (status or "open,closed").split(",") if s.strip())
    if not statuses or not statuses <= {"open", "closed"}:
        raise Open311Error(400, "invalid", "status: open or closed")
    until = parse_date("end_date", end_date) or datetime.now(UTC)
    since = parse_date("start_date", start_date) or until - timedelta(days=deps.settings.open311_window_days)
    if since > until:
        raise Open311Error(400, "invalid", "start_date: after end_date")
    return RequestFilter(
        town_id=town_id,
        categories=[c for c in wanted_codes if c in CATEGORY_CODES],
        start=since,
        end=until,
        statuses=statuses,
        service_items=sorted(items),
    )


def _is_service_item(deps: IntakeDeps, town_id: str | None, code: str) -> bool:
    towns = [town_id] if town_id is not None else list(deps.registry.town_ids)
    return any(find_service_item(deps.registry, t, code) is not None for t in towns)


def _only_town(deps: IntakeDeps) -> str | None:
    towns = deps.registry.town_ids
    return towns[0] if len(towns) == 1 else None


def _town_of(view: RequestView) -> str:
    return view.town_id
