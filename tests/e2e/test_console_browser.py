"""The console in a real headless Chromium over four service processes (stats, dispatch, intake,
console) in a private vhost and database: a department works a matter to resolved, in Chinese;
grid staff report a matter in the browser and whistle it up; a supervisor sees a returned matter
and reroutes it. Screenshots of each page go to the test's tmp directory."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By

from services.console.credentials import issue_credential, issue_grid_credential, issue_supervisor_credential
from services.intake.tokens import issue_token
from services.simulator.sandbox import ServiceSandbox
from shared.settings import GwSettings
from tests.e2e.browser import SWAPPED, Screenshots, chromium, wait_for

pytestmark = pytest.mark.e2e

SECRET = "console-e2e-secret-0123456789abcdef"
LEAD = "changjia.comprehensive_governance"  # urgent, no supporting department (routing.yaml, urgent-other)
OTHER = "changjia.civil_affairs"
GRID = "changjia-g003"
PHONE = "13912345678"
SECRET_KEY = SecretStr(SECRET)
# below the kernel's ephemeral range (32768-60999): a fixed port up there can be held, at that
# moment, by any outgoing connection's local end (CI met "address already in use" on 46120)
PORTS = {"stats": 26130, "dispatch": 26120, "intake": 26110, "console": 26140}
WORK_PORTS = {"stats": 26230, "dispatch": 26220, "intake": 26210, "console": 26240}


def _report(intake: str, *, category: str = "living_environment", summary: str = "村口垃圾堆放点起火后无人清理") -> str:
    token = issue_token(SECRET_KEY, town_id="changjia", grid_id=GRID)
    body = {
        "report_id": f"r-{uuid.uuid4().hex[:10]}",
        "town_id": "changjia",
        "grid_id": GRID,
        "micro_grid_id": f"{GRID}-m1",
        "category": category,
        "severity": "urgent",
        "summary": summary,
        "contact": {"name": "王某", "phone": PHONE},
    }
    response = httpx.post(f"{intake}/v1/reports", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["matter_id"])


def _sign_in(driver: object, console: str, department_id: str) -> None:
    _sign_in_with(driver, console, issue_credential(SECRET_KEY, department_id=department_id, town_id="changjia"))


def _sign_in_with(driver: object, console: str, credential: str) -> None:
    from selenium.webdriver import Chrome

    assert isinstance(driver, Chrome)
    driver.delete_all_cookies()
    driver.get(f"{console}/signin")
    driver.find_element(By.ID, "credential").send_keys(credential)
    driver.find_element(By.ID, "signin").click()
    # the next driver.get must not overtake the sign-in's own redirect (it would load as nobody)
    wait_for(
        driver,
        lambda d: d.get_cookie("gw_console") is not None and not d.current_url.endswith("/signin"),
        "the sign-in redirect",
    )


def test_department_works_a_reported_matter_to_resolved_and_another_department_is_refused(
    base_settings: GwSettings, tmp_path: Path
) -> None:
    env = {
        "GW_TOKEN_SECRET": SECRET,
        "GW_CONSOLE_REFRESH_SECONDS": "1",
        "GW_STATS_REFRESH_SECONDS": "1",
        "GW_CONSOLE_STATS_URL": f"http://127.0.0.1:{PORTS['stats']}",
    }
    services = ("stats", "dispatch", "intake", "console")
    with ServiceSandbox(base_settings, ports=dict(PORTS), label="console", services=services, extra_env=env) as box:
        console = box.url("console")
        shots = Screenshots(tmp_path)
        with chromium() as driver:
            _sign_in(driver, console, LEAD)
            wait_for(driver, lambda d: d.find_elements(By.ID, "open-count"), "the inbox")
            assert "部门报到台" in driver.page_source and "综治" in driver.page_source
            shots.take(driver, "inbox-empty")

            driver.get(f"{console}/overview")
            reported_before = int(driver.find_element(By.ID, "fig-reported").text)
            resolved_before = int(driver.find_element(By.ID, "fig-resolved").text)
            closed_before = int(driver.find_element(By.ID, "fig-closed").text)
            driver.get(f"{console}/inbox")

            matter_id = _report(box.url("intake"))
            row = f'tr[data-matter-id="{matter_id}"]'
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row), "the reported matter in the inbox")
            cells = driver.find_element(By.CSS_SELECTOR, row).text
            assert "主办" in cells and "签收时限" in cells and "剩余" in cells
            assert PHONE not in driver.page_source
            shots.take(driver, "inbox-with-matter")

            driver.find_element(By.CSS_SELECTOR, f"{row} a").click()
            wait_for(driver, lambda d: d.find_elements(By.ID, "accept"), "the matter page")
            shots.take(driver, "matter-dispatched")
            driver.find_element(By.ID, "accept").click()
            wait_for(driver, lambda d: "已签收" in d.find_element(By.ID, "matter-state").text, "accepted")
            driver.get(driver.current_url.split("?")[0])
            driver.find_element(By.ID, "note").send_keys("已组织清运 现场恢复整洁")
            driver.find_element(By.ID, "resolve").click()
            wait_for(driver, lambda d: "已办结" in d.find_element(By.ID, "matter-state").text, "resolved")
            timeline = driver.find_element(By.ID, "timeline").text
            assert "签收" in timeline and "办结" in timeline and "已组织清运" in timeline
            assert PHONE not in driver.page_source
            shots.take(driver, "matter-resolved")

            driver.get(f"{console}/inbox")
            wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, row), "the matter gone from the inbox")

            driver.get(f"{console}/overview")

            def figures_moved(d: object) -> bool:
                from selenium.webdriver import Chrome

                assert isinstance(d, Chrome)
                reported = int(d.find_element(By.ID, "fig-reported").text)
                resolved = int(d.find_element(By.ID, "fig-resolved").text)
                return reported == reported_before + 1 and resolved == resolved_before + 1

            wait_for(driver, figures_moved, "the town figures to count the matter reported and resolved")
            assert "办结率" in driver.page_source
            shots.take(driver, "overview")

            driver.get(f"{console}/overview?lang=en")
            assert "Closure rate" in driver.page_source
            shots.take(driver, "overview-english")
            driver.get(f"{console}/inbox?lang=zh")

            # the grid's follow-up visit (回访) closes it: worked to closed in the browser
            grid = issue_grid_credential(SECRET_KEY, grid_id=GRID, town_id="changjia", staff_id=f"{GRID}-leader")
            _sign_in_with(driver, console, grid)

            def follow_up_offered(d: Any) -> bool:
                d.get(f"{console}/matters/{matter_id}")  # the form is rendered with the page: load it again
                return bool(d.find_elements(By.ID, "satisfaction"))

            wait_for(driver, follow_up_offered, "the grid to be offered the follow-up of the resolved matter")
            _select(driver, "satisfaction", "5")
            driver.find_element(By.ID, "feedback").click()
            wait_for(driver, lambda d: "已回访办结" in _text(d, "matter-state"), "closed after the follow-up")
            assert "回访办结" in _text(driver, "timeline") and PHONE not in driver.page_source
            shots.take(driver, "matter-closed-after-follow-up")
            driver.get(f"{console}/overview")
            wait_for(driver, lambda d: int(_text(d, "fig-closed")) == closed_before + 1, "the closed figure")

            _sign_in(driver, console, OTHER)
            wait_for(driver, lambda d: d.find_elements(By.ID, "open-count"), "the other department's inbox")
            assert matter_id not in driver.page_source
            driver.get(f"{console}/matters/{matter_id}")
            refused = wait_for(driver, lambda d: d.find_elements(By.ID, "refused"), "the 403 page")
            assert "无权访问" in refused[0].text
            assert PHONE not in driver.page_source
            shots.take(driver, "other-department-refused")
        status = httpx.get(f"{console}/matters/{matter_id}", cookies={"gw_console": "forged"}, follow_redirects=False)
        assert status.status_code == 303 and status.headers["location"] == "/signin"
    assert len(shots.paths) == 8 and all(p.stat().st_size > 0 for p in shots.paths)


def _select(driver: object, element_id: str, value: str) -> None:
    from selenium.webdriver import Chrome
    from selenium.webdriver.support.ui import Select

    assert isinstance(driver, Chrome)
    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def _text(driver: object, element_id: str) -> str:
    """The element's text; read again when htmx swapped it while it was being read."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver import Chrome

    assert isinstance(driver, Chrome)
    for _attempt in range(5):
        try:
            return str(driver.find_element(By.ID, element_id).text)
        except StaleElementReferenceException:
            continue
        except WebDriverException as error:
            if SWAPPED not in str(error):
                raise
    return str(driver.find_element(By.ID, element_id).text)


def test_grid_staff_report_and_whistle_up_and_a_supervisor_reroutes_a_returned_matter(
    base_settings: GwSettings, tmp_path: Path
) -> None:
    env = {
        "GW_TOKEN_SECRET": SECRET,
        "GW_CONSOLE_REFRESH_SECONDS": "1",
        "GW_STATS_REFRESH_SECONDS": "1",
        "GW_CONSOLE_STATS_URL": f"http://127.0.0.1:{WORK_PORTS['stats']}",
        "GW_CONSOLE_INTAKE_URL": f"http://127.0.0.1:{WORK_PORTS['intake']}",
    }
    services = ("stats", "dispatch", "intake", "console")
    with ServiceSandbox(
        base_settings, ports=dict(WORK_PORTS), label="console-work", services=services, extra_env=env
    ) as box:
        console = box.url("console")
        shots = Screenshots(tmp_path)
        member = issue_grid_credential(SECRET_KEY, grid_id=GRID, town_id="changjia", staff_id=f"{GRID}-member1")
        leader = issue_grid_credential(SECRET_KEY, grid_id=GRID, town_id="changjia", staff_id=f"{GRID}-leader")
        with chromium() as driver:
            # grid staff (a member who is not the matter's assignee) report a minor dispute in the browser
            _sign_in_with(driver, console, member)
            wait_for(driver, lambda d: d.find_elements(By.ID, "report-form"), "the grid desk")
            assert "网格工作台" in driver.page_source and "北京时间" in driver.page_source
            _select(driver, "category", "dispute")
            _select(driver, "severity", "minor")
            _select(driver, "micro_grid_id", f"{GRID}-m1")
            driver.find_element(By.ID, "address").send_keys("三组东头水渠")
            driver.find_element(By.ID, "summary").send_keys("两户村民因灌溉水渠用水顺序发生争执")
            shots.take(driver, "grid-report-form")
            driver.find_element(By.ID, "report").click()
            wait_for(driver, lambda d: d.find_elements(By.ID, "reported"), "the report accepted by intake")
            matter_prefix = _text(driver, "reported").rsplit(":", 1)[1].strip()
            row = "tr.matter"
            wait_for(
                driver,
                lambda d: any(
                    matter_prefix in r.text and "微网格" in r.text for r in d.find_elements(By.CSS_SELECTOR, row)
                ),
                "the reported matter in the grid's list (on the micro-grid tier)",
            )
            listed = next(r for r in driver.find_elements(By.CSS_SELECTOR, row) if matter_prefix in r.text)
            matter_id = str(listed.get_attribute("data-matter-id"))
            assert "两户村民" in listed.text and f"{GRID}-m1-staff" in listed.text
            shots.take(driver, "grid-matter-listed")

            # the member is not the assignee: dispatch rejects the whistle and says why, to its sender
            driver.get(f"{console}/matters/{matter_id}")
            driver.find_element(By.ID, "whistle-reason").send_keys("需要司法所出面调解")
            driver.find_element(By.ID, "whistle").click()
            rejected = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".rejection"), "the rejection")
            assert "调度驳回" in rejected[0].text and "not an owner" in rejected[0].text
            shots.take(driver, "grid-whistle-rejected")

            # the grid leader acts for the assignee: the whistle takes the matter to the departments
            _sign_in_with(driver, console, leader)
            driver.get(f"{console}/matters/{matter_id}")
            driver.find_element(By.ID, "whistle-reason").send_keys("村内调解未果 需要司法所出面调解")
            driver.find_element(By.ID, "whistle").click()
            wait_for(driver, lambda d: "部门" in _text(d, "matter-tier"), "the matter on the department tier")
            assert "司法所" in _text(driver, "matter-tier")
            timeline = _text(driver, "timeline")
            assert "吹哨" in timeline and "村内调解未果" in timeline and "派单" in timeline
            shots.take(driver, "matter-whistled")
            driver.get(f"{console}/matters/{matter_id}")
            assert not driver.find_elements(By.ID, "whistle")  # nothing left to whistle
            driver.get(f"{console}/inbox")
            assert driver.find_elements(By.ID, "refused")  # the department inbox is not a grid's page
            driver.get(f"{console}/grid?lang=zh")

            # a department returns a matter nobody else can take: it goes to the town's supervisors
            returned_id = _report(box.url("intake"), category="other", summary="村道边废弃车辆长期占道")
            _sign_in(driver, console, LEAD)
            driver.get(f"{console}/matters/{returned_id}")
            wait_for(driver, lambda d: d.find_elements(By.ID, "return"), "the department's matter page")
            driver.find_element(By.ID, "reason").send_keys("不属于本部门职责")
            driver.find_element(By.ID, "return").click()
            wait_for(driver, lambda d: "已退单" in _text(d, "matter-state"), "the matter returned to supervision")

            _sign_in_with(
                driver,
                console,
                issue_supervisor_credential(SECRET_KEY, supervisor_id="changjia-instructor-01", town_id="changjia"),
            )
            wait_for(driver, lambda d: d.find_elements(By.ID, "tab-returned"), "the supervision desk")
            driver.get(f"{console}/supervision?only=returned")
            returned_row = f'tr[data-matter-id="{returned_id}"]'
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, returned_row), "the returned matter listed")
            assert (
                "退单待改派" in driver.page_source and "督办" in driver.find_element(By.CSS_SELECTOR, returned_row).text
            )
            assert PHONE not in driver.page_source
            shots.take(driver, "supervision-returned")
            driver.find_element(By.CSS_SELECTOR, f"{returned_row} a").click()
            wait_for(driver, lambda d: d.find_elements(By.ID, "reroute-form"), "the reroute form")
            _select(driver, "lead", "changjia.judicial_mediation")
            driver.find_element(By.ID, "reroute-reason").send_keys("涉及邻里纠纷 改由司法所主办")
            shots.take(driver, "matter-reroute-form")
            driver.find_element(By.ID, "reroute").click()
            wait_for(driver, lambda d: "待签收" in _text(d, "matter-state"), "the matter dispatched again")
            assert "司法所" in _text(driver, "matter-tier")
            assert "督办改派" in _text(driver, "timeline")
            shots.take(driver, "matter-rerouted")
            driver.get(f"{console}/supervision?only=returned")
            wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, returned_row), "gone from the returned")
            driver.get(f"{console}/grid")
            assert driver.find_elements(By.ID, "refused")  # a supervisor has no grid desk

            driver.get(f"{console}/overview")
            wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-daily rect.bar"), "the daily chart")
            assert "每日上报与办结" in driver.page_source
            shots.take(driver, "overview-charts")
    assert len(shots.paths) == 8 and all(p.stat().st_size > 0 for p in shots.paths)
