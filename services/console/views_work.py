"""Pages of grid staff (网格上报, 吹哨) and supervisors (督办: overdue and returned matters,
reroute). Parse, call ``services.console.work``, render; every refusal is a 403 page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import work
from services.console.handlers import require_role
from services.console.intake_client import IntakeUnavailableError, ReportRefusedError
from services.console.views import After, Deps, LangDep, Who, render, send_from_form
from shared.domain import Category, Severity

router = APIRouter(include_in_schema=False)


def _grid_context(deps: Deps, who: Who) -> dict[str, Any]:
    grid = deps.registry.grid(who.subject)
    return {
        "grid": grid,
        "categories": [c.value for c in Category],
        "severities": [s.value for s in Severity],
        "micro_grids": [m.micro_grid_id for m in grid.micro_grids],
    }


@router.get("/grid")
async def grid_page(request: Request, deps: Deps, who: Who, lang: LangDep, after: After = None) -> HTMLResponse:
    listing = await work.grid_matters(deps, who, lang, after)
    context = _grid_context(deps, who) | listing.context()
    return render(request, "grid.html", lang, who=who, form=work.ReportForm.blank(), **context)


@router.get("/grid/rows")
async def grid_rows(request: Request, deps: Deps, who: Who, lang: LangDep, after: After = None) -> HTMLResponse:
    listing = await work.grid_matters(deps, who, lang, after)
    return render(request, "_grid_rows.html", lang, who=who, **listing.context())


@router.post("/grid/report")
async def grid_report(
    request: Request,
    deps: Deps,
    who: Who,
    lang: LangDep,
    report_id: Annotated[str, Form()],
    category: Annotated[str, Form()] = "",
    severity: Annotated[str, Form()] = "",
    micro_grid_id: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
) -> Response:
    form = work.ReportForm(report_id, category, severity, micro_grid_id, summary, address)
    require_role(deps, who, "grid")
    errors = work.check_report(deps, who, form)
    status = 422
    if not errors:
        try:
            answer = await work.report(deps, who, form)
        except ReportRefusedError as refused:
            errors, status = [f"{name}: {reason}" for name, reason in refused.errors] or ["report_refused"], 422
            if refused.status == 409:  # this form was sent before with other contents: a new report
                report_id = work.ReportForm.blank().report_id
        except IntakeUnavailableError:
            errors, status = ["intake_down"], 503
        else:
            return RedirectResponse(f"/grid?reported={answer['matter_id']}", status_code=303)
    listing = await work.grid_matters(deps, who, lang)
    failed = work.ReportForm(report_id, category, severity, micro_grid_id, summary, address, errors)
    context = _grid_context(deps, who) | listing.context()
    return render(request, "grid.html", lang, status, who=who, form=failed, **context)


@router.post("/matters/{matter_id}/whistle")
async def whistle(
    request: Request, matter_id: str, deps: Deps, who: Who, lang: LangDep, text: Annotated[str, Form()] = ""
) -> Response:
    return await send_from_form(request, lang, who, work.whistle(deps, who, matter_id, text), matter_id, "whistle")


@router.post("/matters/{matter_id}/feedback")
async def feedback(
    request: Request,
    matter_id: str,
    deps: Deps,
    who: Who,
    lang: LangDep,
    satisfaction: Annotated[int, Form()] = 5,
) -> Response:
    return await send_from_form(
        request, lang, who, work.feedback(deps, who, matter_id, satisfaction), matter_id, "feedback_action"
    )


@router.get("/supervision")
async def supervision_page(
    request: Request, deps: Deps, who: Who, lang: LangDep, only: str | None = None, after: After = None
) -> HTMLResponse:
    return render(request, "supervision.html", lang, who=who, **await _supervision(deps, who, only, lang, after))


@router.get("/supervision/rows")
async def supervision_rows(
    request: Request, deps: Deps, who: Who, lang: LangDep, only: str | None = None, after: After = None
) -> HTMLResponse:
    context = await _supervision(deps, who, only, lang, after)
    return render(request, "_supervision_rows.html", lang, who=who, **context)


async def _supervision(deps: Deps, who: Who, only: str | None, lang: LangDep, after: str | None) -> dict[str, Any]:
    chosen = only if only in work.FILTERS else None  # an unknown tab is the full list
    listing, counts = await work.supervision_matters(deps, who, chosen, lang, after)
    return {**listing.context(), "counts": counts, "only": chosen}


@router.post("/matters/{matter_id}/reroute")
async def reroute(
    request: Request,
    matter_id: str,
    deps: Deps,
    who: Who,
    lang: LangDep,
    lead: Annotated[str, Form()] = "",
    supporting: Annotated[list[str] | None, Form()] = None,
    text: Annotated[str, Form()] = "",
) -> Response:
    return await send_from_form(
        request, lang, who, work.reroute(deps, who, matter_id, lead, supporting or [], text), matter_id, "reroute"
    )
