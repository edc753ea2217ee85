"""The GeoReport v2 service discovery document: ``/open311/discovery.xml`` and ``.json``.

It tells a generic Open311 client where the endpoint is, which specification and formats it
speaks, and how to get an api_key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.intake.deps import Deps
from services.intake.open311_answers import Open311Error, check_format, render_answer
from services.intake.open311_schemas import ERRORS, XML_OK, Open311Discovery

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-01T00:00:00Z"  # the last change of this endpoint's behaviour (the spec's field)
ROUTE_DISCOVERY = "/open311/discovery.{fmt}"

router = APIRouter(tags=["open311"])


def discovery(base_url: str) -> dict[str, Any]:
    return {
        "changeset": CHANGESET,
        "contact": "The township's grid governance office (网格化管理中心)",
        "key_service": "api_keys are issued by the township: `gridwhistle tokens issue --open311 --town <town_id>` "
        "or `--grid <grid_id>`",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base_url.rstrip('/')}/open311/v2",
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


@router.get(ROUTE_DISCOVERY, response_model=Open311Discovery, responses={**ERRORS, **XML_OK})
async def get_discovery(request: Request, deps: Deps, fmt: str) -> Response:
    """Where the GeoReport v2 endpoint is and what it speaks."""
    try:
        check_format(fmt)
    except Open311Error as error:
        deps.metrics.request(ROUTE_DISCOVERY, error.outcome)
        return error.response("json")
    deps.metrics.request(ROUTE_DISCOVERY, "ok")
    return render_answer(fmt, "discovery", discovery(str(request.base_url)))
