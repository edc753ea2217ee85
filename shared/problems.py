"""One error format for the native HTTP APIs: RFC 9457 problem details.

Every error of ``/v1/...`` (and of FastAPI's own validation and routing) is
``application/problem+json``: ``type`` (``urn:gridwhistle:problem:<kind>``), ``title``,
``status``, ``detail`` and ``errors``, a list of ``{field, reason}`` that names each problem
without echoing the input (it may be personal data). Open311 keeps its own error list where
its spec requires it (``services.intake.open311``).

Written here rather than taken from ``fastapi-problem``: that library maps exceptions to problems
well, but our problems are built by the routes themselves (the field list is the contract since
issue 1, and FastAPI's default validation body echoes ``input``), so what remained was a
40-line model, one response helper and two exception handlers.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fastapi import FastAPI, Request

PROBLEM_MEDIA_TYPE = "application/problem+json"
KINDS = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    503: "unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="Dotted name of the field at fault (`body` for the whole body)")
    reason: str = Field(description="What is wrong with it; never the value sent")


class Problem(BaseModel):
    """RFC 9457 problem details, with the fields at fault."""

    type: str = Field(description="`urn:gridwhistle:problem:<kind>`", examples=["urn:gridwhistle:problem:invalid"])
    title: str = Field(description="The HTTP status phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="The problems in one line")
    errors: list[FieldError] = Field(default_factory=list)


def problem(status: int, errors: Iterable[tuple[str, str]], *, kind: str | None = None) -> dict[str, Any]:
    found = [FieldError(field=f, reason=r) for f, r in errors]
    return Problem(
        type=f"urn:gridwhistle:problem:{kind or KINDS.get(status, 'error')}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail="; ".join(f"{e.field}: {e.reason}" for e in found) or HTTPStatus(status).phrase,
        errors=found,
    ).model_dump(mode="json")


def problem_response(
    status: int, errors: Iterable[tuple[str, str]], *, kind: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem(status, errors, kind=kind), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def problem_responses(*statuses: int, headers: dict[int, dict[str, Any]] | None = None) -> dict[int | str, Any]:
    """OpenAPI ``responses`` entries: each status answers a ``Problem`` as problem+json."""
    found: dict[int | str, Any] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if headers and status in headers:
            entry["headers"] = headers[status]
        found[status] = entry
    return found


class ProblemError(Exception):
    """Raise from a route: answered as a problem naming the fields."""

    def __init__(
        self, status: int, errors: Iterable[tuple[str, str]], *, headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.errors, self.headers = status, list(errors), headers
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.errors))


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
CHALLENGE = {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}}


def _location(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """FastAPI's validation errors and HTTP exceptions (404 of a route, 405, ...) as problems."""

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        items = [(_location(e.get("loc", ())), str(e.get("msg", "invalid"))) for e in error.errors()]
        return problem_response(422, items)

    async def on_http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        reason = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
        field = "path" if error.status_code in {404, 405} else "request"
        return problem_response(error.status_code, [(field, reason)], headers=dict(error.headers or {}) or None)

    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(error.status, error.errors, headers=error.headers)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def with_component_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add models the routes reference by ``$ref`` only (raw bodies, problems) to the OpenAPI components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        wanted: tuple[type[BaseModel], ...] = (Problem, *models)
        for model in wanted:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in found.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, found)
        schema["components"]["schemas"] = dict(sorted(components.items()))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
