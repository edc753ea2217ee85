"""The 说明 column of a matter's timeline: the entry's data in Chinese, dispatch's English line in English."""

from __future__ import annotations

from typing import Any

import pytest

from services.console.i18n import told

pytestmark = pytest.mark.unit

NAMES = {"changjia.judicial_mediation": "司法所", "changjia.comprehensive_governance": "综治中心"}


def _dept(department_id: str | None) -> str:
    return NAMES.get(department_id or "", department_id or "—")


def _entry(event_type: str, detail: str, **data: Any) -> dict[str, Any]:
    return {"event_type": event_type, "detail": detail, "data": data}


@pytest.mark.parametrize(
    ("entry", "chinese"),
    [
        (_entry("matter_reported", "app", channel="open311"), "渠道：Open311 接口"),
        (
            _entry(
                "matter_dispatched",
                "round 2 (whistled): department changjia.judicial_mediation",
                round=2,
                reason="whistled",
                tier="department",
                lead="changjia.judicial_mediation",
            ),
            "第2轮（吹哨）：部门 · 司法所",
        ),
        (
            _entry(
                "matter_dispatched", "…", round=1, reason="reported", tier="micro_grid", lead="changjia-g003-m1-staff"
            ),
            "第1轮（上报）：微网格 · changjia-g003-m1-staff",
        ),
        (_entry("matter_accepted", "supporting", role="supporting"), "协办"),
        (
            _entry(
                "matter_returned", "supervision: 不属于本部门职责", outcome="supervision", reason="不属于本部门职责"
            ),
            "转督办：不属于本部门职责",
        ),
        (
            _entry("matter_rerouted", "调解优先", reason="调解优先", lead="changjia.judicial_mediation"),
            "改由司法所主办：调解优先",
        ),
        (_entry("matter_closed", "satisfaction 4", satisfaction=4), "群众满意度 4 分"),
        (_entry("matter_escalated", "level 2, accept deadline", level=2, deadline="accept"), "签收超时，2级督办"),
        (
            _entry("squad_assigned", "…", squad_id="changjia-g003-s1", squad_kind="vanguard", volunteers=9),
            "党员先锋队 changjia-g003-s1，志愿者 9 人",
        ),
        (
            _entry("matter_command_rejected", "…", command_type="whistle_matter", reason="x is not an owner"),
            "吹哨被驳回：x is not an owner",
        ),
    ],
)
def test_an_entry_is_told_in_chinese_from_its_data(entry: dict[str, Any], chinese: str) -> None:
    assert told("zh", entry, _dept) == chinese


def test_english_pages_show_the_api_line_and_an_entry_without_data_falls_back_to_it() -> None:
    entry = _entry("matter_closed", "satisfaction 4", satisfaction=4)
    assert told("en", entry, _dept) == "satisfaction 4"
    assert told("zh", {"event_type": "matter_closed", "detail": "satisfaction 4"}, _dept) == "satisfaction 4"
    assert told("zh", {"event_type": "matter_resolved", "detail": None, "data": {}}, _dept) == ""
