"""The console's words: Simplified Chinese by default, English with ``?lang=en`` (kept in a cookie).

Domain words follow the source story: 网格 grid, 微网格 micro-grid, 吹哨 whistle, 报到 report for
duty, 签收 accept, 退单 return, 办结 resolve/close, 督办 supervise, 回访 follow-up visit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from shared.registry.models import SQUAD_KIND_NAMES_ZH

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT_LANG: Lang = "zh"

WORDS: dict[str, tuple[str, str]] = {
    "app": ("网格吹哨 · 部门报到", "Gridwhistle console"),
    "inbox": ("部门报到台", "Department inbox"),
    "overview": ("全镇概览", "Town overview"),
    "signin": ("登录", "Sign in"),
    "signout": ("退出", "Sign out"),
    "credential": ("登录凭证（由 gridwhistle console issue 签发）", "Credential (issued by gridwhistle console issue)"),
    "signed_in_as": ("当前登录", "Signed in as"),
    "bad_credential": ("凭证无效或已过期", "The credential is not valid or has expired"),
    "forbidden": ("无权访问", "Forbidden"),
    "forbidden_matter": ("该事项不在您的职责范围内，无权查看或处理。", "This matter is not yours to see."),
    "forbidden_page": ("该页面不属于您的角色，无权访问。", "This page is not for your role."),
    "forbidden_whistle": (
        "只能对本网格尚在网格层级办理的事项吹哨。",
        "Only a matter of your grid still on a grid tier can be whistled up.",
    ),
    "resolved_figure": ("部门已办结", "Resolved"),
    "forbidden_reroute": (
        "该事项已办结或尚未派单，不能改派。",
        "This matter is finished or not dispatched: no reroute.",
    ),
    "forbidden_act": ("该事项当前不在本部门待办中，不能处理。", "This matter is not open for your department."),
    "forbidden_town": ("只能查看本部门所在镇的概览。", "You may only see your own town's overview."),
    "back": ("返回首页", "Back to my page"),
    "invalid_form": ("未能提交", "Not sent"),
    "invalid_reason": ("请填写理由后再提交。", "Give a reason, then send again."),
    "invalid_satisfaction": ("群众满意度须为 1 至 5 分。", "Satisfaction is 1 to 5."),
    "invalid_department": ("只能改派给该事项所在镇的部门。", "Only departments of the matter's town."),
    "invalid_action": ("没有这项操作。", "No such action."),
    "back_to_matter": ("返回事项", "Back to the matter"),
    "grid_page": ("网格工作台", "Grid desk"),
    "supervision": ("督办台", "Supervision"),
    "report_matter": ("上报事项", "Report a matter"),
    "location": ("地点", "Location"),
    "choose": ("请选择", "choose"),
    "report": ("上报", "Report"),
    "reported_sent": ("已上报，等待调度派单", "Reported; waiting for dispatch"),
    "intake_down": (
        "受理服务暂不可用，请稍后重试（不会重复上报）",
        "Intake is unavailable; retry (it will not duplicate)",
    ),
    "report_refused": ("受理服务拒绝了该上报", "Intake refused the report"),
    "grid_matters": ("本网格事项", "The grid's matters"),
    "whistle": ("吹哨", "Whistle up"),
    "whistle_reason": ("吹哨理由（需部门协同的原因）", "Why departments are needed"),
    "reroute": ("督办改派", "Reroute"),
    "reroute_reason": ("改派理由", "Reason for the reroute"),
    "new_lead": ("主办部门", "Lead department"),
    "supporting_departments": ("协办部门", "Supporting departments"),
    "all_open": ("全部在办", "All open"),
    "overdue_tab": ("超时督办", "Overdue"),
    "returned_tab": ("退单待改派", "Returned"),
    "tier": ("层级", "Tier"),
    "owner": ("承办", "Owner"),
    "per_day": ("每日上报与办结（近14天）", "Reported and closed per day (14 days)"),
    "per_category": ("分类上报与办结", "Reported and closed per category"),
    "times_in": ("时间均为北京时间", "Times are local to the township"),
    "filter": ("筛选条件无效", "Unknown filter"),
    "reported_at": ("上报时间", "Reported at"),
    "next_page": ("下一页", "Next page"),
    "feedback_action": ("回访评价", "Record the follow-up visit"),
    "satisfaction": (
        "群众满意度（1–5，3分及以上办结，否则重办）",
        "Satisfaction (1-5; 3 or more closes, else reopened)",
    ),
    "forbidden_feedback": (
        "只能对本网格已办结待回访的事项评价。",
        "Only a resolved matter of your grid awaits a follow-up.",
    ),
    "first_page": ("回到第一页", "First page"),
    "open_matters": ("待办事项", "Open matters"),
    "none_open": ("暂无待办事项", "No open matters"),
    "matter": ("事项", "Matter"),
    "grid": ("网格", "Grid"),
    "micro_grid": ("微网格", "Micro-grid"),
    "category": ("类别", "Category"),
    "severity": ("等级", "Severity"),
    "summary": ("摘要", "Summary"),
    "state": ("状态", "State"),
    "role": ("角色", "Role"),
    "lead": ("主办", "lead"),
    "supporting": ("协办", "supporting"),
    "deadline": ("时限", "Deadline"),
    "accept_by": ("签收时限", "Accept by"),
    "resolve_by": ("办结时限", "Resolve by"),
    "escalation": ("督办等级", "Escalation"),
    "on_time": ("正常", "on time"),
    "overdue": ("超时督办", "overdue, level"),
    "left": ("剩余", "left"),
    "late_by": ("已超时", "late by"),
    "actions": ("操作", "Actions"),
    "accept": ("签收", "Accept"),
    "return": ("退单", "Return"),
    "resolve": ("办结", "Resolve"),
    "reason": ("退单理由", "Reason"),
    "note": ("办结说明", "Note"),
    "sent": ("已发送，等待调度确认", "Sent; waiting for dispatch"),
    "rejected": ("调度驳回", "Rejected by dispatch"),
    "timeline": ("处理过程", "Timeline"),
    "when": ("时间", "When"),
    "event": ("环节", "Step"),
    "by": ("经办", "By"),
    "detail": ("说明", "Detail"),
    "reported": ("上报", "Reported"),
    "closed": ("办结", "Closed"),
    "closure_rate": ("办结率", "Closure rate"),
    "supervised": ("督办", "Supervised"),
    "whistled": ("吹哨", "Whistled"),
    "feedback": ("回访", "Follow-up visits"),
    "backlog": ("各部门积压", "Backlog per department"),
    "department": ("部门", "Department"),
    "open": ("待办", "Open"),
    "unaccepted": ("未签收", "Unaccepted"),
    "by_category": ("分类统计", "By category"),
    "stats_down": ("统计服务暂不可用，稍后自动刷新", "The stats service is unavailable; retrying"),
    "live": ("实时刷新", "live"),
    "waiting_supporting": (
        "协办部门办结后主办方可办结, 尚待",
        "The lead resolves after its supporting departments; waiting for",
    ),
}

TERMS: dict[str, tuple[str, str]] = {
    # states
    "reported": ("已上报", "reported"),
    "dispatched": ("待签收", "dispatched"),
    "accepted": ("已签收", "accepted"),
    "returned": ("已退单", "returned"),
    "resolved": ("已办结", "resolved"),
    "closed": ("已回访办结", "closed"),
    # categories
    "public_opinion": ("社情民意", "public opinion"),
    "dispute": ("矛盾纠纷", "dispute"),
    "safety_hazard": ("安全隐患", "safety hazard"),
    "policy_publicity": ("政策宣传", "policy publicity"),
    "service_proxy": ("代办服务", "proxy service"),
    "living_environment": ("人居环境", "living environment"),
    "other": ("其他", "other"),
    # severities
    "minor": ("小事", "minor"),
    "major": ("大事", "major"),
    "hard": ("难事", "hard"),
    "urgent": ("急事", "urgent"),
    # tiers
    "micro_grid": ("微网格", "micro-grid"),
    "grid_member": ("网格员", "grid member"),
    "grid_leader": ("网格长", "grid leader"),
    "department": ("部门", "department"),
    "supervision": ("督办", "supervision"),
    # roles
    "lead": ("主办", "lead"),
    "supporting": ("协办", "supporting"),
    # events
    "matter_reported": ("网格上报", "reported"),
    "matter_dispatched": ("派单", "dispatched"),
    "matter_accepted": ("签收", "accepted"),
    "matter_returned": ("退单", "returned"),
    "matter_rerouted": ("督办改派", "rerouted"),
    "matter_whistled": ("吹哨", "whistled"),
    "matter_resolved": ("办结", "resolved"),
    "matter_closed": ("回访办结", "closed after follow-up"),
    "matter_reopened": ("回访不满意，重办", "reopened"),
    "matter_escalated": ("超时督办", "escalated"),
    "matter_command_rejected": ("调度驳回", "command rejected"),
    "matter_followed_up": ("督导走访跟进", "followed up on a visit"),
    "squad_assigned": ("派出志愿队", "squad assigned"),
}

TOLD_ZH: dict[str, dict[str, str]] = {
    "channel": {"app": "网格App", "open311": "Open311 接口", "amqp": "系统对接"},
    "reason": {  # why a dispatch round started
        "reported": "上报",
        "returned": "退单后改派",
        "whistled": "吹哨",
        "rerouted": "督办改派",
        "reopened": "回访不满意重办",
    },
    "outcome": {"rerouted": "改派下一部门", "supervision": "转督办", "released": "协办退出"},
    "deadline": {"accept": "签收", "resolve": "办结"},
    "command_type": {
        "accept_matter": "签收",
        "return_matter": "退单",
        "resolve_matter": "办结",
        "whistle_matter": "吹哨",
        "record_feedback": "回访",
        "reroute_matter": "督办改派",
        "assign_squad": "派志愿队",
    },
}
"""Chinese for the coded values of a timeline entry's ``data``."""


def pick_lang(query: str | None, cookie: str | None) -> Lang:
    for candidate in (query, cookie):
        if candidate == "en":
            return "en"
        if candidate == "zh":
            return "zh"
    return DEFAULT_LANG


def translator(lang: Lang) -> Callable[[str], str]:
    index = LANGS.index(lang)

    def t(key: str) -> str:
        pair = WORDS.get(key) or TERMS.get(key)
        return pair[index] if pair else key

    return t


def term(lang: Lang, value: str | None) -> str:
    """A state, category, severity, role or event type in ``lang`` (the value itself if unknown)."""
    if value is None:
        return "—"
    pair = TERMS.get(value)
    return pair[LANGS.index(lang)] if pair else value


def countdown(lang: Lang, remaining: timedelta) -> str:
    """``剩余 3小时12分`` / ``已超时 5分`` — minutes are the finest grain a clerk needs."""
    minutes = int(abs(remaining.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if lang == "zh":
        text = (f"{days}天" if days else "") + (f"{hours}小时" if hours or days else "") + f"{mins}分"
        return f"剩余 {text}" if remaining.total_seconds() >= 0 else f"已超时 {text}"
    text = (f"{days}d " if days else "") + (f"{hours}h " if hours or days else "") + f"{mins}m"
    return f"{text} left" if remaining.total_seconds() >= 0 else f"late by {text}"


def told(lang: Lang, entry: dict[str, Any], dept: Callable[[str | None], str]) -> str:
    """The 说明 of a timeline entry: its ``data`` in Chinese (the API's English ``detail`` in
    English, and for an entry kept before stats recorded ``data``). People's own words (a reason,
    a note) and dispatch's reason for a rejection stay as written."""
    data: dict[str, Any] = entry.get("data") or {}
    if lang != "zh" or not data:
        return str(entry.get("detail") or "")

    def zh(kind: str) -> str:
        value = str(data.get(kind, ""))
        return TOLD_ZH[kind].get(value, value)

    match entry.get("event_type"):
        case "matter_reported":
            return f"渠道：{zh('channel')}"
        case "matter_dispatched":
            return f"第{data['round']}轮（{zh('reason')}）：{term(lang, data['tier'])} · {dept(data['lead'])}"
        case "matter_accepted":
            return term(lang, data["role"])
        case "matter_returned":
            return f"{zh('outcome')}：{data['reason']}"
        case "matter_rerouted":
            return f"改由{dept(data['lead'])}主办：{data['reason']}"
        case "matter_whistled":
            return str(data["reason"])
        case "matter_resolved":
            return str(data.get("note") or "")
        case "matter_closed" | "matter_reopened":
            return f"群众满意度 {data['satisfaction']} 分"
        case "matter_escalated":
            return f"{zh('deadline')}超时，{data['level']}级督办"
        case "matter_followed_up":
            return "网格指导员走访督导"
        case "squad_assigned":
            kind = SQUAD_KIND_NAMES_ZH.get(str(data["squad_kind"]), str(data["squad_kind"]))
            return f"{kind} {data['squad_id']}，志愿者 {data['volunteers']} 人"
        case "matter_command_rejected":
            return f"{zh('command_type')}被驳回：{data['reason']}"
    return str(entry.get("detail") or "")
