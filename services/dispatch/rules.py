"""Routing rules (``deploy/config/routing.yaml``): category x severity x town/grid -> owners.

Rules are ordered; the first rule whose ``match`` fits wins. Each rule names a tier; on the
department tier a ``lead`` (``{town}.<slug>``, ``county.<slug>`` or a literal department id),
``supporting`` departments and ``alternates`` (leads tried, in order, after a return), plus a
priority and the ``accept_within`` / ``resolve_within`` durations. Validation at load time names
the file, the rule id and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from shared.domain import Category, Channel, Priority, Severity, Tier

if TYPE_CHECKING:
    from pathlib import Path

    from shared.registry import Registry, ServiceItem

Stage = Literal["reported", "whistled"]
STAGES: tuple[Stage, ...] = ("reported", "whistled")
TOWN_TEMPLATE = "{town}"
SERVICE_ITEM_LEAD = "{service_item}"
"""A lead that names the department of the matter's service item (and takes the item's deadlines)."""
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RulesError(ValueError):
    """The rules file is invalid; the message names the file, the rule and the field."""


def parse_duration(value: Any) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``3d``, ``1d12h`` -> timedelta."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration like '30m', '2h', '3d' or '1d12h'")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


@dataclass(frozen=True)
class MatterFacts:
    """What a rule matches on besides the stage: the matter's category, severity, place, and the
    service item and channel it came with."""

    category: str
    severity: str
    town_id: str
    grid_id: str
    service_item: str | None = None
    channel: str | None = None


class RuleMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Annotated[tuple[Category, ...] | None, BeforeValidator(_as_list)] = None
    severity: Annotated[tuple[Severity, ...] | None, BeforeValidator(_as_list)] = None
    towns: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ("*",)
    grids: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = ("*",)
    stage: Stage = "reported"
    service_item: Annotated[tuple[str, ...] | None, BeforeValidator(_as_list)] = None
    """Glob patterns of service item codes; set, the matter must name a fitting service item."""
    channel: Annotated[tuple[Channel, ...] | None, BeforeValidator(_as_list)] = None

    def fits(self, facts: MatterFacts, stage: str) -> bool:
        return not self.mismatch(facts, stage)

    def mismatch(self, facts: MatterFacts, stage: str) -> str:
        """Why this match does not fit (empty when it does)."""
        service_item = facts.service_item
        if self.service_item is not None:
            if service_item is None:
                return "no service item"
            if not any(fnmatchcase(service_item, p) for p in self.service_item):
                return f"service item {service_item} matches none of {', '.join(self.service_item)}"
        if self.channel is not None and facts.channel not in self.channel:
            return f"channel {facts.channel} not in {', '.join(self.channel)}"
        if self.stage != stage:
            return f"stage is {stage}, rule is for {self.stage}"
        if self.category is not None and facts.category not in self.category:
            return f"category {facts.category} not in {', '.join(self.category)}"
        if self.severity is not None and facts.severity not in self.severity:
            return f"severity {facts.severity} not in {', '.join(self.severity)}"
        if not any(fnmatchcase(facts.town_id, p) for p in self.towns):
            return f"town {facts.town_id} matches none of {', '.join(self.towns)}"
        if not any(fnmatchcase(facts.grid_id, p) for p in self.grids):
            return f"grid {facts.grid_id} matches none of {', '.join(self.grids)}"
        return ""

    def covers(self, other: RuleMatch) -> bool:
        """Provably matches everything ``other`` matches (conservative)."""

        def sets(mine: tuple[str, ...] | None, theirs: tuple[str, ...] | None) -> bool:
            return mine is None or (theirs is not None and set(theirs) <= set(mine))

        def globs(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
            return "*" in mine or all(t in mine or any(fnmatchcase(t, m) for m in mine) for t in theirs)

        def optional_globs(mine: tuple[str, ...] | None, theirs: tuple[str, ...] | None) -> bool:
            return mine is None or (theirs is not None and globs(mine, theirs))

        return (
            self.stage == other.stage
            and sets(self.category, other.category)
            and sets(self.severity, other.severity)
            and sets(self.channel, other.channel)
            and optional_globs(self.service_item, other.service_item)
            and globs(self.towns, other.towns)
            and globs(self.grids, other.grids)
        )

    @property
    def is_catch_all(self) -> bool:
        return (
            self.category is None
            and self.severity is None
            and self.service_item is None
            and self.channel is None
            and "*" in self.towns
            and "*" in self.grids
        )


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    match: RuleMatch = RuleMatch()
    tier: Tier
    lead: str | None = None
    supporting: tuple[str, ...] = ()
    alternates: tuple[str, ...] = ()
    priority: Priority = Priority.P3
    accept_within: Duration
    resolve_within: Duration
    description: str = ""

    @field_validator("tier")
    @classmethod
    def _no_supervision(cls, tier: Tier) -> Tier:
        if tier is Tier.SUPERVISION:
            raise ValueError("supervision is not a routing tier (returns and deadlines lead there)")
        return tier

    def departments_for(
        self, town_id: str, item_department: str | None = None
    ) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
        """(lead, supporting, alternates) with ``{town}`` expanded for ``town_id`` and
        ``{service_item}`` for the department of the matter's service item."""

        def expand(template: str) -> str:
            if template == SERVICE_ITEM_LEAD:
                return item_department or ""
            return template.replace(TOWN_TEMPLATE, town_id)

        lead = expand(self.lead) if self.lead else None
        return lead, tuple(expand(s) for s in self.supporting), tuple(expand(a) for a in self.alternates)


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    rules: tuple[Rule, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Route:
    """A rule applied to one matter: who gets it and by when."""

    rule_id: str
    tier: Tier
    lead: str | None  # department id on the department tier, None on grid tiers
    supporting: tuple[str, ...]
    priority: Priority
    accept_within: timedelta
    resolve_within: timedelta


@dataclass(frozen=True)
class Explanation:
    route: Route | None
    rule: Rule | None
    trace: tuple[tuple[str, str], ...]  # (rule id, why it did not match) before the winner


class RuleBook:
    """Validated rules with matching helpers (first match wins)."""

    def __init__(self, rules: tuple[Rule, ...], source: str = "<rules>", registry: Registry | None = None) -> None:
        self.rules = rules
        self.source = source
        self.registry = registry  # where ``{service_item}`` leads find the item's department

    def _item(self, facts: MatterFacts) -> ServiceItem | None:
        if facts.service_item is None or self.registry is None:
            return None
        try:
            return self.registry.service_item(facts.town_id, facts.service_item)
        except KeyError:  # intake refuses unknown items; a rule cannot name a department for one
            return None

    def _departments(self, rule: Rule, facts: MatterFacts) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
        item = self._item(facts)
        return rule.departments_for(facts.town_id, item.department if item else None)

    def _route(self, rule: Rule, facts: MatterFacts, lead: str | None = None) -> Route:
        item = self._item(facts)
        default_lead, supporting, _ = rule.departments_for(facts.town_id, item.department if item else None)
        lead = lead or default_lead or None
        by_item = item is not None and rule.lead == SERVICE_ITEM_LEAD
        return Route(
            rule_id=rule.id,
            tier=rule.tier,
            lead=lead,
            supporting=tuple(s for s in supporting if s != lead),
            priority=rule.priority,
            accept_within=timedelta(hours=item.accept_hours) if item and by_item else rule.accept_within,
            resolve_within=timedelta(days=item.resolve_days) if item and by_item else rule.resolve_within,
        )

    def explain(self, facts: MatterFacts, stage: Stage = "reported") -> Explanation:
        trace: list[tuple[str, str]] = []
        for rule in self.rules:
            why = rule.match.mismatch(facts, stage)
            if not why and rule.lead == SERVICE_ITEM_LEAD and self._item(facts) is None:
                why = f"service item {facts.service_item} is not in the catalogue of {facts.town_id}"
            if not why:
                return Explanation(self._route(rule, facts), rule, tuple(trace))
            trace.append((rule.id, why))
        return Explanation(None, None, tuple(trace))

    def route(self, facts: MatterFacts, stage: Stage = "reported") -> Route:
        found = self.explain(facts, stage).route
        if found is None:  # validation guarantees a catch-all per stage
            raise RulesError(
                f"{self.source}: no rule matches {facts.category}/{facts.severity} in {facts.grid_id} ({stage})"
            )
        return found

    def reroute(self, facts: MatterFacts, stage: Stage, exclude: set[str]) -> Route | None:
        """After a return: the next department-tier lead (rule leads, then their alternates) not excluded."""
        for rule in self.rules:
            if rule.tier is not Tier.DEPARTMENT or not rule.match.fits(facts, stage):
                continue
            lead, _, alternates = self._departments(rule, facts)
            for candidate in (lead, *alternates):
                if candidate and candidate not in exclude:
                    route = self._route(rule, facts, lead=candidate)
                    return replace(route, supporting=tuple(s for s in route.supporting if s not in exclude))
        return None

    def route_for_lead(self, facts: MatterFacts, stage: Stage, lead: str) -> Route:
        """A supervisor's reroute: deadlines of the first rule naming ``lead``, else of the matched rule."""
        for rule in self.rules:
            fits = rule.match.fits(facts, rule.match.stage)
            if rule.tier is Tier.DEPARTMENT and fits and self._departments(rule, facts)[0] == lead:
                return self._route(rule, facts)
        matched = self.route(facts, stage)
        if matched.tier is not Tier.DEPARTMENT:
            matched = self.route(facts, "whistled")
        return replace(matched, tier=Tier.DEPARTMENT, lead=lead, supporting=())


def _check(rules: tuple[Rule, ...], registry: Registry, source: str) -> None:
    problems: list[str] = []
    for index, rule in enumerate(rules):
        where = f"{source}: rule {rule.id!r} (rules[{index}])"
        towns = [t for t in registry.town_ids if any(fnmatchcase(t, p) for p in rule.match.towns)]
        if not towns:
            problems.append(f"{where}: match.towns: matches no town of the registry")
        if rule.tier is Tier.DEPARTMENT:
            if not rule.lead:
                problems.append(f"{where}: lead: required on the department tier")
            if SERVICE_ITEM_LEAD in (rule.lead, *rule.supporting, *rule.alternates) and rule.match.service_item is None:
                problems.append(f"{where}: lead: {SERVICE_ITEM_LEAD} needs a match on service_item")
            if SERVICE_ITEM_LEAD in (*rule.supporting, *rule.alternates):
                problems.append(f"{where}: supporting/alternates: {SERVICE_ITEM_LEAD} may only be the lead")
            for town_id in towns:
                lead, supporting, alternates = rule.departments_for(town_id)
                for field, ids in (("lead", (lead,)), ("supporting", supporting), ("alternates", alternates)):
                    for dept in ids:
                        if dept and not registry.has_department(dept):
                            problems.append(f"{where}: {field}: unknown department {dept!r} (town {town_id})")
        else:
            if rule.lead or rule.supporting or rule.alternates:
                problems.append(f"{where}: lead/supporting/alternates: only for the department tier")
            if rule.match.stage == "whistled":
                problems.append(f"{where}: tier: a whistled matter goes to departments, not {rule.tier.value}")
        if rule.id in {r.id for r in rules[:index]}:
            problems.append(f"{where}: id: duplicate rule id")
        for earlier in rules[:index]:
            if earlier.match.covers(rule.match):
                problems.append(f"{where}: match: unreachable, rule {earlier.id!r} before it matches all it matches")
                break
    for stage in STAGES:
        if not any(r.match.stage == stage and r.match.is_catch_all for r in rules):
            problems.append(f"{source}: no catch-all default rule for stage {stage!r} (a rule with only stage set)")
    if problems:
        raise RulesError("invalid routing rules:\n  " + "\n  ".join(problems))


def parse_rules(document: Any, registry: Registry, source: str = "<rules>") -> RuleBook:
    try:
        parsed = RulesFile.model_validate(document)
    except ValidationError as error:
        lines = []
        for item in error.errors(include_input=False, include_url=False):
            loc = list(item["loc"])
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(document, dict):
                raw = document.get("rules") or []
                rid = raw[loc[1]].get("id", "?") if loc[1] < len(raw) and isinstance(raw[loc[1]], dict) else "?"
                lines.append(f"{source}: rule {rid!r} (rules[{loc[1]}]): {'.'.join(map(str, loc[2:]))}: {item['msg']}")
            else:
                lines.append(f"{source}: {'.'.join(map(str, loc)) or '(file)'}: {item['msg']}")
        raise RulesError("invalid routing rules:\n  " + "\n  ".join(lines)) from None
    _check(parsed.rules, registry, source)
    return RuleBook(parsed.rules, source, registry)


def load_rules(path: Path, registry: Registry) -> RuleBook:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RulesError(f"{path}: cannot read rules: {error}") from None
    return parse_rules(document, registry, str(path))
