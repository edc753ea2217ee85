"""The console's access rules over the real stats read model (the console's ASGI app reading an
in-process stats on the real broker and store): a department sees only its own matters, a grid
only its grid, a supervisor only its town; every refusal is a 403 page; no citizen contact is
ever shown. And the terminal inbox's client reloads its open matters after a restart."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.console.app import create_app
from services.console.config import ConsoleSettings
from services.console.credentials import issue_credential, issue_grid_credential, issue_supervisor_credential
from services.console.stats_client import HttpStatsReader
from services.department.client import DepartmentClient
from services.department.reload import reload_open_matters
from services.dispatch.decide import DeadlinesDue
from shared.broker import make_broker
from shared.contracts import CitizenContact, MatterEscalated
from shared.settings import GwSettings
from tests.connected.stats_harness import REGISTRY, eventually, publish_events, running_stats
from tests.stories import Matter

pytestmark = pytest.mark.connected

SECRET = SecretStr("console-connected-secret-0123456789ab")
CG, CIVIL = "changjia.comprehensive_governance", "changjia.civil_affairs"
GRID, OTHER_GRID = "changjia-g017", "changjia-g005"
PHONE = "13800138000"


def _with_contact(m: Matter) -> Matter:
    m.events[0] = m.events[0].model_copy(update={"contact": CitizenContact(name="李某", phone=PHONE)})
    return m


def _stories() -> dict[str, Matter]:
    department = _with_contact(Matter("other", "urgent").report())  # comprehensive governance, grid 17
    grid_tier = _with_contact(Matter("dispute", "minor").report())  # the micro-grid member of grid 17
    elsewhere = Matter("dispute", "minor", grid_id=OTHER_GRID).report()
    return {"department": department, "grid_tier": grid_tier, "elsewhere": elsewhere}


@asynccontextmanager
async def console_over(
    settings: GwSettings, stats: httpx.AsyncClient
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    console_settings = ConsoleSettings(**{**settings.model_dump(), "token_secret": SECRET})
    app = create_app(console_settings, registry=REGISTRY)
    app.state.deps = dataclasses.replace(app.state.deps, stats=HttpStatsReader(stats))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://c") as client:
        yield app, client


async def _get(console: httpx.AsyncClient, credential: str, path: str) -> httpx.Response:
    response = await console.get(path, headers={"Cookie": f"gw_console={credential}"})
    assert PHONE not in response.text and "李某" not in response.text  # never a citizen contact
    return response


def _refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and 'id="refused"' in response.text and "无权访问" in response.text


async def test_each_role_sees_only_its_own_and_every_refusal_is_a_403_page(settings: GwSettings) -> None:
    stories = _stories()
    ids = {name: str(m.id) for name, m in stories.items()}
    department = issue_credential(SECRET, department_id=CG, town_id="changjia")
    other_department = issue_credential(SECRET, department_id=CIVIL, town_id="changjia")
    grid = issue_grid_credential(SECRET, grid_id=GRID, town_id="changjia", staff_id=f"{GRID}-leader")
    other_grid = issue_grid_credential(SECRET, grid_id=OTHER_GRID, town_id="changjia", staff_id=f"{OTHER_GRID}-leader")
    supervisor = issue_supervisor_credential(SECRET, supervisor_id="changjia-instructor-04", town_id="changjia")
    foreign_supervisor = issue_supervisor_credential(
        SECRET, supervisor_id="elsewhere-instructor-01", town_id="elsewhere"
    )
    async with running_stats(settings) as (_app, stats), console_over(settings, stats) as (app, console):
        await publish_events(settings, [e for m in stories.values() for e in m.events])

        async def settled() -> tuple[bool, Any]:
            body = (await stats.get("/v1/towns/changjia/open-matters")).json()
            rounds = [m["round"] for m in body.get("matters", [])]
            return len(rounds) == 3 and all(r == 1 for r in rounds), body

        await eventually(settled, "three dispatched matters in the town")

        inbox = await _get(console, department, "/inbox")
        assert inbox.status_code == 200 and ids["department"] in inbox.text and ids["grid_tier"] not in inbox.text
        assert (await _get(console, department, f"/matters/{ids['department']}")).status_code == 200
        for path in (f"/matters/{ids['grid_tier']}", "/grid", "/supervision", "/overview?town=elsewhere"):
            assert _refused(await _get(console, department, path)), path
        assert _refused(await _get(console, other_department, f"/matters/{ids['department']}"))
        assert ids["department"] not in (await _get(console, other_department, "/inbox")).text

        desk = await _get(console, grid, "/grid")
        assert desk.status_code == 200
        assert ids["department"] in desk.text and ids["grid_tier"] in desk.text and ids["elsewhere"] not in desk.text
        assert (await _get(console, grid, f"/matters/{ids['grid_tier']}")).status_code == 200
        for path in (f"/matters/{ids['elsewhere']}", "/inbox", "/supervision"):
            assert _refused(await _get(console, grid, path)), path
        assert _refused(await _get(console, other_grid, f"/matters/{ids['grid_tier']}"))
        whistle = await console.post(
            f"/matters/{ids['department']}/whistle",
            data={"text": "x"},
            headers={"Cookie": f"gw_console={grid}"},
        )
        assert _refused(whistle)  # with the departments already: nothing to whistle
        blank = await console.post(
            f"/matters/{ids['grid_tier']}/whistle", data={"text": "  "}, headers={"Cookie": f"gw_console={grid}"}
        )
        assert blank.status_code == 422 and 'id="invalid"' in blank.text and 'data-field="reason"' in blank.text
        assert "请填写理由" in blank.text and f'href="/matters/{ids["grid_tier"]}"' in blank.text

        watched = await _get(console, supervisor, "/supervision")
        assert watched.status_code == 200 and all(i in watched.text for i in ids.values())
        assert (await _get(console, supervisor, f"/matters/{ids['elsewhere']}")).status_code == 200
        for path in ("/inbox", "/grid"):
            assert _refused(await _get(console, supervisor, path)), path
        assert _refused(await _get(console, foreign_supervisor, f"/matters/{ids['department']}"))
        reroute = await console.post(
            f"/matters/{ids['department']}/reroute",
            data={"lead": "changjia.judicial_mediation", "text": "x"},
            headers={"Cookie": f"gw_console={foreign_supervisor}"},
        )
        assert _refused(reroute)

        app.state.deps = dataclasses.replace(app.state.deps, page_size=1)  # the pages page like the API
        seen: list[str] = []
        path = "/supervision"
        while path:
            page = await _get(console, supervisor, path)
            seen += [i for i in ids.values() if i in page.text]
            found = re.search(r'id="next-page" href="([^"]+)"', page.text)
            path = html.unescape(found.group(1)) if found else ""
        assert sorted(seen) == sorted(ids.values())  # one per page, each once

        unsigned = await console.get("/grid", follow_redirects=False)
        assert unsigned.status_code == 303 and unsigned.headers["location"] == "/signin"


async def test_department_client_reloads_its_open_matters_after_a_restart_and_follows_their_escalations(
    settings: GwSettings,
) -> None:
    matter = Matter("other", "urgent").report()
    matter.send(DeadlinesDue(matter.id), after_minutes=61)  # level 1 of the accept deadline
    escalated = [e for e in matter.events if isinstance(e, MatterEscalated)]
    before_escalation = [e for e in matter.events if not isinstance(e, MatterEscalated)]
    async with running_stats(settings) as (_app, stats):
        await publish_events(settings, before_escalation[:2])  # reported, dispatched

        async def listed() -> tuple[bool, Any]:
            body = (await stats.get(f"/v1/departments/{CG}/open-matters")).json()
            return len(body.get("matters", [])) == 1, body

        await eventually(listed, "the matter in the department's open matters")
        for _restart in range(2):  # a fresh process each time: nothing in memory
            client = DepartmentClient(make_broker(settings, service="dept"), CG)
            assert await reload_open_matters(client, stats) == 1
            (item,) = client.open_items()
            assert (str(item.matter_id), item.round, item.role, item.state) == (str(matter.id), 1, "lead", "dispatched")
            assert item.actor_id == CG and item.sequence >= 1
        followed = []

        async def on_item(item: Any, _event: Any) -> None:
            followed.append(item.escalation_level)

        client.on_item = on_item
        await client.handle_event(escalated[0])  # known from the read model: followed, not dropped
        assert followed == [escalated[0].level] and client.open_items()[0].escalation_level >= 1


async def test_the_action_forms_are_sent_again_only_once_the_matter_moved_and_only_to_who_may_act(
    settings: GwSettings,
) -> None:
    m = Matter("other", "urgent").report()  # comprehensive governance is the lead
    department = issue_credential(SECRET, department_id=CG, town_id="changjia")
    other_department = issue_credential(SECRET, department_id=CIVIL, town_id="changjia")
    actions = f"/matters/{m.id}/actions"
    async with running_stats(settings) as (_app, stats), console_over(settings, stats) as (_, console):
        await publish_events(settings, m.events)

        async def dispatched() -> tuple[bool, Any]:
            body = (await stats.get(f"/v1/matters/{m.id}")).json()
            return body.get("state") == "dispatched", body

        sequence = int((await eventually(dispatched, "the matter dispatched"))["sequence"])
        unchanged = await _get(console, department, f"{actions}?seen={sequence}")
        assert unchanged.status_code == 204 and unchanged.text == ""  # htmx keeps the forms and what is typed
        offered = await _get(console, department, f"{actions}?seen={sequence - 1}")
        assert offered.status_code == 200 and 'id="accept"' in offered.text and f"seen={sequence}" in offered.text
        assert _refused(await _get(console, other_department, f"{actions}?seen={sequence}"))

        published = len(m.events)
        m.command("accept_matter", CG)
        await publish_events(settings, m.events[published:])

        async def moved() -> tuple[bool, Any]:
            page = await _get(console, department, f"{actions}?seen={sequence}")
            return page.status_code == 200, page

        page = await eventually(moved, "the forms sent again after the accept")
        assert 'id="accept"' not in page.text and 'id="resolve"' in page.text
        assert f"seen={m.now.version}" in page.text
