"""Open311 answers in either format, their errors, and the query parameters shared by the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse, Response

from services.intake.open311_xml import XML_MEDIA_TYPE, render

FORMATS = frozenset({"json", "xml"})


class Open311Error(Exception):
    def __init__(self, status: int, outcome: str, *descriptions: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(descriptions)
        self.status, self.outcome, self.descriptions, self.headers = status, outcome, descriptions, headers

    def response(self, fmt: str = "json") -> Response:
        body = [{"code": self.status, "description": d} for d in self.descriptions]
        return render_answer(fmt, "errors", body, self.status, self.headers)


def render_answer(fmt: str, kind: str, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        return Response(render(kind, body), status_code=status, headers=headers, media_type=XML_MEDIA_TYPE)
    return JSONResponse(body, status_code=status, headers=headers)


def check_format(fmt: str) -> None:
    """``.json`` or ``.xml``; anything else is a 400."""
    if fmt not in FORMATS:
        raise Open311Error(400, "invalid", "format: not supported, use .xml or .json")


MAX_PAGED = 10_000  # page x page_size: deeper than this, narrow start_date/end_date instead


def paging(page: str | None, page_size: str | None, limit: int) -> tuple[int, int]:
    try:
        number = int(page) if page else 1
        size = int(page_size) if page_size else limit
    except ValueError:
        raise Open311Error(400, "invalid", "page: page and page_size are whole numbers") from None
    if number < 1 or not 1 <= size <= limit:
        raise Open311Error(400, "invalid", f"page: page from 1, page_size from 1 to {limit}")
    if number * size > MAX_PAGED:
        raise Open311Error(400, "invalid", "page: too deep, narrow start_date and end_date")
    return number, size


def parse_date(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, "invalid", f"{name}: not a W3C date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
