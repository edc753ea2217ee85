"""Open311 GeoReport v2 vocabulary: the town's service catalogue as services, their attributes,
form -> submission, and matters -> service requests. Pure functions; the routes live in ``open311``.

``services`` lists, grouped by category (``group``), the town's service items (``service_code`` =
the item's code, from the registry) and after them the category itself (``service_code`` = the
category, "other ... matters"), so a matter that fits no item can still be reported and clients
written against the seven category codes keep working. A request for an item is counted under
the item's category and carries the item on ``MatterReported.service_item``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from shared.domain import Category, MatterState, Severity

if TYPE_CHECKING:
    from services.intake.views import RequestView
    from shared.registry import Registry, ServiceItem

# category -> (service_name (also the Open311 group of its items), description, keywords)
SERVICES: Final[dict[Category, tuple[str, str, str]]] = {
    Category.PUBLIC_OPINION: (
        "Public opinion",
        "Opinions, suggestions and concerns of residents (社情民意)",
        "opinion,suggestion,concern,complaint",
    ),
    Category.DISPUTE: (
        "Dispute",
        "Neighbourhood, family, land or labour disputes to mediate (矛盾纠纷)",
        "dispute,conflict,mediation,neighbour,land",
    ),
    Category.SAFETY_HAZARD: (
        "Safety hazard",
        "Fire, gas, building, road, flood or work-safety hazards (安全隐患)",
        "hazard,fire,gas,flood,road,building,safety",
    ),
    Category.POLICY_PUBLICITY: (
        "Policy publicity",
        "Questions about policies and requests for explanation (政策宣传)",
        "policy,subsidy,insurance,law,information",
    ),
    Category.SERVICE_PROXY: (
        "Proxy service",
        "Errands run for residents: certificates, subsidies, social insurance (代办服务)",
        "proxy,errand,certificate,subsidy,pension,elderly",
    ),
    Category.LIVING_ENVIRONMENT: (
        "Living environment",
        "Rubbish, sewage, littering and village appearance (人居环境)",
        "rubbish,garbage,sewage,litter,environment,sanitation",
    ),
    Category.OTHER: ("Other", "Anything else the grid should know about (其他)", "other"),
}

CATEGORY_CODES: Final = frozenset(c.value for c in Category)

SEVERITY_NAMES: Final[dict[Severity, str]] = {
    Severity.MINOR: "Minor matter (micro-grid member)",
    Severity.MAJOR: "Major matter (grid member)",
    Severity.HARD: "Hard matter (grid leader)",
    Severity.URGENT: "Emergency (straight to town departments)",
}

STATUS_NOTES: Final[dict[str, str]] = {
    MatterState.REPORTED.value: "Received, waiting to be assigned.",
    MatterState.DISPATCHED.value: "Assigned, waiting to be accepted.",
    MatterState.ACCEPTED.value: "Accepted and being handled.",
    MatterState.RETURNED.value: "Under review by the town's grid supervisors.",
    MatterState.RESOLVED.value: "Resolved, waiting for feedback.",
    MatterState.CLOSED.value: "Closed.",
}

# Open311 form field -> ReportSubmission location (for error messages, in Open311's words)
FORM_FIELD_OF: Final[dict[str, str]] = {
    "town_id": "jurisdiction_id",
    "category": "service_code",
    "summary": "description",
    "location.lat": "lat",
    "location.long": "long",
    "location.address": "address_string",
    "location": "address_string",
    "attachments": "media_url",
    "contact.email": "email",
    "contact.phone": "phone",
    "contact.name": "first_name",
    "grid_id": "attribute[grid_id]",
    "micro_grid_id": "attribute[micro_grid_id]",
    "severity": "attribute[severity]",
    "report_id": "attribute[report_id]",
    "service_item": "service_code",
}


def form_field(field: str) -> str:
    """The Open311 form field of a ``ReportSubmission`` location (``service_details.x`` -> ``attribute[x]``)."""
    if field.startswith("service_details."):
        return f"attribute[{field.removeprefix('service_details.')}]"
    return FORM_FIELD_OF.get(field, field)


def _category_service(code: Category) -> dict[str, Any]:
    name, description, keywords = SERVICES[code]
    return {
        "service_code": code.value,
        "service_name": name if code is Category.OTHER else f"{name}: other matters",
        "description": description,
        "metadata": True,
        "type": "realtime",
        "keywords": keywords,
        "group": name,
    }


def _item_service(item: ServiceItem, registry: Registry) -> dict[str, Any]:
    department = registry.department(item.department)
    return {
        "service_code": item.code,
        "service_name": item.name,
        "description": f"{item.name_zh}. Handled by {department.name} ({department.name_zh}); accepted within "
        f"{item.accept_hours} h, resolved within {item.resolve_days} days.",
        "metadata": True,
        "type": "realtime",
        "keywords": f"{item.category.value},{item.code.replace('_', ',')}",
        "group": SERVICES[item.category][0],
    }


def service_list(registry: Registry, town_id: str | None) -> list[dict[str, Any]]:
    """The town's catalogue grouped by category (each group: its items, then the category itself);
    without a town (a county of several, no jurisdiction_id) the categories only."""
    items = registry.service_catalogue(town_id) if town_id is not None else ()
    services: list[dict[str, Any]] = []
    for category in SERVICES:
        services += [_item_service(i, registry) for i in items if i.category is category]
        services.append(_category_service(category))
    return services


def find_service_item(registry: Registry, town_id: str, code: str) -> ServiceItem | None:
    """The town's service item with this Open311 ``service_code`` (None: a category or unknown)."""
    try:
        return registry.service_item(town_id, code)
    except KeyError:
        return None


def _item_attributes(item: ServiceItem) -> list[dict[str, Any]]:
    return [
        {
            "variable": True,
            "code": attribute.code,
            "datatype": attribute.datatype,
            "required": attribute.required,
            "datatype_description": attribute.description,
            "order": order,
            "description": attribute.description,
            **({"values": [{"key": v, "name": v} for v in attribute.values]} if attribute.values else {}),
        }
        for order, attribute in enumerate(item.attributes, start=5)
    ]


def service_definition(
    code: str, grids: list[tuple[str, str]], *, grid_required: bool, item: ServiceItem | None = None
) -> dict[str, Any]:
    """``grids``: the jurisdiction's ``(grid_id, name)``; a client fills ``grid_id`` from them alone.
    Not required when the caller's api_key was issued for one grid (that grid is the default).
    A service item adds the attributes it asks for (``attribute[<code>]`` in a request)."""
    return {
        "service_code": code,
        "attributes": [
            {
                "variable": True,
                "code": "grid_id",
                "datatype": "singlevaluelist",
                "required": grid_required,
                "datatype_description": "The grid (village or community) where the matter is; "
                "optional with an api_key issued for one grid",
                "order": 1,
                "description": "Grid",
                "values": [{"key": key, "name": name} for key, name in grids],
            },
            {
                "variable": True,
                "code": "micro_grid_id",
                "datatype": "string",
                "required": False,
                "datatype_description": "Micro-grid id inside the grid, e.g. changjia-g017-m1",
                "order": 2,
                "description": "Micro-grid",
            },
            {
                "variable": True,
                "code": "severity",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "How big the matter is; minor when left out",
                "order": 3,
                "description": "Severity",
                "values": [{"key": s.value, "name": n} for s, n in SEVERITY_NAMES.items()],
            },
            {
                "variable": True,
                "code": "report_id",
                "datatype": "string",
                "required": False,
                "datatype_description": "Client idempotency key: a retry with the same key and content "
                "answers the same service_request_id",
                "order": 4,
                "description": "Report id",
            },
            *(_item_attributes(item) if item is not None else []),
        ],
    }


def derived_report_id(form: list[tuple[str, str]]) -> str:
    """Without ``attribute[report_id]``: the same content is the same report."""
    content = "\n".join(f"{k}={v}" for k, v in sorted(form) if k != "api_key")
    return "open311-" + hashlib.sha256(content.encode()).hexdigest()[:40]


def form_to_submission(
    form: dict[str, str], town_id: str, default_grid: str | None, report_id: str, item: ServiceItem | None = None
) -> dict[str, Any]:
    """The ``ReportSubmission`` dict for an Open311 POST (validation happens on the model). For a
    service item the category is the item's and ``attribute[<code>]`` answer its attributes."""
    location: dict[str, Any] = {}
    if form.get("lat") or form.get("long"):
        location["lat"], location["long"] = form.get("lat") or None, form.get("long") or None
    if form.get("address_string"):
        location["address"] = form["address_string"]
    name = " ".join(p for p in (form.get("first_name"), form.get("last_name")) if p) or None
    contact = {"name": name, "email": form.get("email") or None, "phone": form.get("phone") or None}
    submission: dict[str, Any] = {
        "report_id": report_id,
        "town_id": town_id,
        "grid_id": form.get("attribute[grid_id]") or default_grid,
        "category": item.category.value if item is not None else form.get("service_code"),
        "severity": form.get("attribute[severity]") or Severity.MINOR.value,
        "origin": "citizen_request",
        "summary": form.get("description", ""),
        "location": location,
        "reporter_role": "citizen",
        "attachments": [form["media_url"]] if form.get("media_url") else [],
    }
    if form.get("attribute[micro_grid_id]"):
        submission["micro_grid_id"] = form["attribute[micro_grid_id]"]
    if item is not None:
        submission["service_item"] = item.code
        answers = {a.code: form.get(f"attribute[{a.code}]", "") for a in item.attributes}
        submission["service_details"] = {code: value for code, value in answers.items() if value}
    if any(contact.values()):
        submission["contact"] = contact
    return submission


def location_problem(form: dict[str, str]) -> str | None:
    """GeoReport v2: a location is required: lat and long, or address_string."""
    lat, long = form.get("lat"), form.get("long")
    if bool(lat) != bool(long):
        return "lat: lat and long go together"
    if not (lat and long) and not form.get("address_string"):
        return "lat: a location is required (lat and long, or address_string)"
    return None


def w3c(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _agency(registry: Registry, lead: str | None, grid_id: str) -> str:
    if lead is not None and registry.has_department(lead):
        return registry.department(lead).name
    if registry.has_grid(grid_id):
        return registry.grid(grid_id).name
    return grid_id


def service_request(view: RequestView, registry: Registry) -> dict[str, Any]:
    """One GeoReport v2 service request; contact data is never part of it."""
    if view.matter is not None:
        m = view.matter
        state, category, summary, item_code = m.state, m.category, m.summary, m.service_item
        location, attachments, lead = m.location or {}, [], m.lead
        matter_id, grid_id, reported_at = m.matter_id, m.grid_id, m.reported_at
        moments = [t.occurred_at for t in m.timeline] + [d for d in (m.reported_at,) if d]
        updated, expected = max(moments, default=None), m.resolve_by
    else:
        assert view.reported is not None
        e = view.reported
        state, category, summary, item_code = MatterState.REPORTED.value, e.category.value, e.summary, e.service_item
        location = e.location.model_dump() if e.location else {}
        attachments, lead = e.attachments, None
        matter_id, grid_id, reported_at = str(e.matter_id), e.grid_id, e.reported_at
        updated, expected = e.reported_at, None
    service = SERVICES.get(Category(category)) if category in CATEGORY_CODES else None
    service_name = service[0] if service else category
    town_id = view.town_id
    item = find_service_item(registry, town_id, item_code) if item_code and registry.has_town(town_id) else None
    if item is not None:
        service_name = item.name
    return {
        "service_request_id": matter_id,
        "status": "closed" if state == MatterState.CLOSED.value else "open",
        "status_notes": STATUS_NOTES.get(state, ""),
        "service_name": service_name,
        "service_code": item_code or category,
        "description": summary,
        "agency_responsible": _agency(registry, lead, grid_id),
        "service_notice": "",
        "requested_datetime": w3c(reported_at),
        "updated_datetime": w3c(updated),
        "expected_datetime": w3c(expected),
        "address": location.get("address"),
        "lat": location.get("lat"),
        "long": location.get("long"),
        "media_url": attachments[0] if attachments else None,
    }
