"""The console's pages (server-rendered, Jinja2; live parts are htmx fragments polled every few
seconds). Parse, call a handler, render: no rule lives here. Every refusal is a 403 page."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console import charts, handlers
from services.console.credentials import CredentialError, Principal, verify_credential
from services.console.deps import ConsoleDeps
from services.console.i18n import Lang, pick_lang, term, told, translator

SESSION_COOKIE = "gw_console"
LANG_COOKIE = "gw_lang"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignInRequiredError(Exception):
    """No valid credential in the session cookie."""


def _deps(request: Request) -> ConsoleDeps:
    deps: ConsoleDeps = request.app.state.deps
    return deps


def request_lang(request: Request) -> Lang:
    return pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def _principal(request: Request) -> Principal:
    credential = request.cookies.get(SESSION_COOKIE)
    if not credential:
        raise SignInRequiredError
    try:
        return verify_credential(credential, _deps(request).secrets)
    except CredentialError:
        raise SignInRequiredError from None


Deps = Annotated[ConsoleDeps, Depends(_deps)]
Who = Annotated[Principal, Depends(_principal)]
LangDep = Annotated[Lang, Depends(request_lang)]


def render(request: Request, template: str, lang: Lang, status_code: int = 200, **context: Any) -> HTMLResponse:
    deps = _deps(request)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": translator(lang),
            "term": lambda value: term(lang, value),
            "dept": lambda department_id: handlers.department_name(deps, department_id, lang),
            "told": lambda entry: told(lang, entry, lambda d: handlers.department_name(deps, d, lang)),
            "local": lambda moment: local_time(moment, deps.zone),
            "zone_name": str(deps.zone),
            "refresh": f"every {deps.refresh_seconds:g}s",
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    deps.metrics.pages.labels(template.removesuffix(".html")).inc()
    return response


def local_time(moment: str | datetime | None, zone: tzinfo) -> str:
    """An instant as the township reads it: ``2026-03-01 16:05`` in ``GW_CONSOLE_TIMEZONE``."""
    if not moment:
        return "—"
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.replace(tzinfo=value.tzinfo or UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


HOME = {"department": "/inbox", "grid": "/grid", "supervisor": "/supervision"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    """Each role's own page: the department inbox, the grid's page, the supervision page."""
    return RedirectResponse(HOME[_principal(request).role], status_code=303)


@router.get("/signin")
async def signin_page(request: Request, lang: LangDep) -> HTMLResponse:
    return render(request, "signin.html", lang, who=None, error=None)


@router.post("/signin")
async def signin(request: Request, lang: LangDep, credential: Annotated[str, Form()]) -> Response:
    deps = _deps(request)
    try:
        verify_credential(credential, deps.secrets)
    except CredentialError:
        deps.metrics.refusals.labels("signin").inc()
        return render(request, "signin.html", lang, status_code=401, who=None, error="bad_credential")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        credential.strip(),
        max_age=int(timedelta(hours=deps.session_hours).total_seconds()),
        httponly=True,
        samesite="lax",  # a cross-site form post carries no session: no command by a foreign page
    )
    return response


@router.post("/signout")
async def signout() -> RedirectResponse:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


After = Annotated[str | None, Query(description="the next page's cursor")]


@router.get("/inbox")
async def inbox_page(request: Request, deps: Deps, who: Who, lang: LangDep, after: After = None) -> HTMLResponse:
    listing = await handlers.inbox(deps, who, lang, after)
    return render(request, "inbox.html", lang, who=who, **listing.context())


@router.get("/inbox/rows")
async def inbox_rows(request: Request, deps: Deps, who: Who, lang: LangDep, after: After = None) -> HTMLResponse:
    listing = await handlers.inbox(deps, who, lang, after)
    return render(request, "_inbox_rows.html", lang, who=who, **listing.context())


@router.get("/matters/{matter_id}")
async def matter_page(request: Request, matter_id: str, deps: Deps, who: Who, lang: LangDep) -> HTMLResponse:
    matter = await handlers.matter_for(deps, who, matter_id)
    return render(request, "matter.html", lang, **_matter_context(deps, who, matter, lang))


@router.get("/matters/{matter_id}/live")
async def matter_live(request: Request, matter_id: str, deps: Deps, who: Who, lang: LangDep) -> HTMLResponse:
    matter = await handlers.matter_for(deps, who, matter_id)
    return render(request, "_matter_live.html", lang, **_matter_context(deps, who, matter, lang))


@router.get("/matters/{matter_id}/actions")
async def matter_actions(
    request: Request, matter_id: str, deps: Deps, who: Who, lang: LangDep, seen: int | None = None
) -> Response:
    """The action forms, when the matter changed since the page showed them (sequence ``seen``);
    204 (htmx keeps what is there, typed text included) while it has not."""
    matter = await handlers.matter_for(deps, who, matter_id)
    if seen is not None and matter.get("sequence") == seen:
        return Response(status_code=204)
    return render(request, "_matter_actions.html", lang, **_matter_context(deps, who, matter, lang))


def _matter_context(deps: ConsoleDeps, who: Principal, matter: dict[str, Any], lang: Lang) -> dict[str, Any]:
    mine = (
        next((b for b in matter.get("backlog") or [] if b.get("department_id") == who.subject), None)
        if who.role == "department"
        else None
    )
    row = handlers.inbox_row({**matter, **(mine or {})}, lang, deps.clock()) if mine else None
    return {
        "who": who,
        "matter": matter,
        "mine": mine,
        "row": row,
        "may_act": who.may_act_on(matter),
        "may_follow_up": who.may_follow_up(matter),
        "rejections": handlers.rejections_for(matter, who),
        "town_departments": [d.department_id for d in deps.registry.departments_of_town(matter["town_id"])]
        if who.role == "supervisor"
        else [],
        "waiting_for": [d for d in matter.get("open_departments") or [] if d != who.subject]
        if mine and mine.get("role") == "lead"
        else [],
    }


@router.post("/matters/{matter_id}/{action}")
async def matter_action(
    request: Request,
    matter_id: str,
    action: str,
    deps: Deps,
    who: Who,
    lang: LangDep,
    text: Annotated[str, Form()] = "",
) -> Response:
    return await send_from_form(request, lang, who, handlers.act(deps, who, matter_id, action, text), matter_id, action)


async def send_from_form(
    request: Request, lang: Lang, who: Principal, sending: Awaitable[object], matter_id: str, sent: str
) -> Response:
    """Awaits a command sent from one of the matter page's forms, then back to the matter page
    saying what was sent; a form the console will not send is a 422 page naming what to mend."""
    try:
        await sending
    except handlers.InvalidActionError as error:
        context = {"who": who, "field": error.field, "matter_id": matter_id}
        return render(request, "invalid.html", lang, status_code=422, **context)
    return RedirectResponse(f"/matters/{matter_id}?sent={sent}", status_code=303)


@router.get("/overview")
async def overview_page(request: Request, deps: Deps, who: Who, lang: LangDep, town: str | None = None) -> HTMLResponse:
    overview = await handlers.town_overview(deps, who, town)
    towns = handlers.towns_visible(deps, who)
    return render(request, "overview.html", lang, who=who, towns=towns, **_overview_context(overview, lang))


@router.get("/overview/live")
async def overview_live(request: Request, deps: Deps, who: Who, lang: LangDep, town: str | None = None) -> HTMLResponse:
    overview = await handlers.town_overview(deps, who, town)
    return render(request, "_figures.html", lang, who=who, **_overview_context(overview, lang))


def _overview_context(overview: handlers.TownOverview, lang: Lang) -> dict[str, Any]:
    return {
        "town_id": overview.town_id,
        "figures": overview.figures,
        "backlog": overview.backlog,
        "daily_chart": charts.daily_chart(overview.daily["days"], lang),
        "category_chart": charts.category_chart(overview.figures.get("by_category") or {}, lang),
    }
