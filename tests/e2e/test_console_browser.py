"""The console in a real headless Chromium over four service processes (stats, dispatch, intake,
console) in a private vhost and database: a department works a matter to resolved, in Chinese."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By

from services.console.credentials import issue_credential
from services.intake.tokens import issue_token
from services.simulator.sandbox import ServiceSandbox
from shared.settings import GwSettings
from tests.e2e.browser import Screenshots, chromium, wait_for

pytestmark = pytest.mark.e2e

SECRET = "console-e2e-secret-0123456789abcdef"
LEAD = "changjia.comprehensive_governance"  # urgent, no supporting department (routing.yaml, urgent-other)
OTHER = "changjia.civil_affairs"
GRID = "changjia-g003"
PHONE = "13912345678"
PORTS = {"stats": 46130, "dispatch": 46120, "intake": 46110, "console": 46140}


def _report(intake: str) -> str:
    token = issue_token(SecretStr(SECRET), town_id="changjia", grid_id=GRID)
    body = {
        "report_id": f"r-{uuid.uuid4().hex[:10]}",
        "town_id": "changjia",
        "grid_id": GRID,
        "micro_grid_id": f"{GRID}-m1",
        "category": "living_environment",
        "severity": "urgent",
        "summary": "村口垃圾堆放点起火后无人清理",
        "contact": {"name": "王某", "phone": PHONE},
    }
    response = httpx.post(f"{intake}/v1/reports", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 202, response.text
    return str(response.json()["matter_id"])


def _sign_in(driver: object, console: str, department_id: str) -> None:
    from selenium.webdriver import Chrome

    assert isinstance(driver, Chrome)
    credential = issue_credential(SecretStr(SECRET), department_id=department_id, town_id="changjia")
    driver.delete_all_cookies()
    driver.get(f"{console}/signin")
    driver.find_element(By.ID, "credential").send_keys(credential)
    driver.find_element(By.ID, "signin").click()


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
    assert len(shots.paths) == 7 and all(p.stat().st_size > 0 for p in shots.paths)
