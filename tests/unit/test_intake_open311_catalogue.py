"""Open311 vocabulary: services, form mapping, service request formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.open311_catalogue import (
    derived_report_id,
    form_to_submission,
    location_problem,
    service_definition,
    service_list,
    service_request,
)
from services.intake.views import RequestView
from shared.contracts import ReportSubmission
from shared.domain import Category
from shared.read_models import MatterView
from tests.factories import changjia_registry

pytestmark = pytest.mark.unit


def test_every_category_is_a_service_with_attributes() -> None:
    services = service_list(changjia_registry(), None)  # no town: the categories only
    assert [s["service_code"] for s in services] == [c.value for c in Category]
    assert all(s["metadata"] is True and s["type"] == "realtime" and s["group"] for s in services)
    grids = [("changjia-g001", "常家村 Changjia Village")]
    attributes = service_definition("dispute", grids, grid_required=True)["attributes"]
    assert [a["order"] for a in attributes] == sorted(a["order"] for a in attributes)
    assert all({"variable", "code", "datatype", "required", "description"} <= set(a) for a in attributes)
    grid = attributes[0]
    assert grid["code"] == "grid_id" and grid["datatype"] == "singlevaluelist" and grid["required"] is True
    assert grid["values"] == [{"key": "changjia-g001", "name": "常家村 Changjia Village"}]
    relaxed = service_definition("dispute", grids, grid_required=False)["attributes"][0]
    assert relaxed["required"] is False


def test_services_list_the_towns_catalogue_grouped_by_category() -> None:
    registry = changjia_registry()
    services = service_list(registry, "changjia")
    items = registry.service_catalogue("changjia")
    codes = [s["service_code"] for s in services]
    assert len(items) == 50 and len(services) == 50 + len(Category)
    assert set(codes) == {i.code for i in items} | {c.value for c in Category}
    groups = [s["group"] for s in services]
    assert groups == sorted(groups, key=groups.index)  # each category's services stand together
    assert len(set(groups)) == len(Category)
    allowance = services[codes.index("minimum_living_allowance")]
    assert allowance["group"] == services[codes.index("service_proxy")]["group"] == "Proxy service"
    assert "低保申请代办" in allowance["description"] and "Civil Affairs Office" in allowance["description"]


def test_a_service_items_definition_asks_for_its_attributes() -> None:
    item = changjia_registry().service_item("changjia", "disability_subsidy")
    attributes = service_definition(item.code, [], grid_required=False, item=item)["attributes"]
    grade = attributes[-1]
    assert (grade["code"], grade["datatype"], grade["required"]) == ("disability_grade", "singlevaluelist", True)
    assert [v["key"] for v in grade["values"]] == ["1", "2", "3", "4"]


def test_a_service_item_form_takes_the_items_category_and_answers() -> None:
    item = changjia_registry().service_item("changjia", "minimum_living_allowance")
    form = {
        "service_code": item.code,
        "address_string": "Village 3",
        "description": "Apply for the allowance",
        "attribute[household_size]": "4",
    }
    submission = ReportSubmission.model_validate(form_to_submission(form, "changjia", "changjia-g003", "o-1", item))
    assert (submission.category, submission.service_item) == (Category.SERVICE_PROXY, "minimum_living_allowance")
    assert submission.service_details == {"household_size": "4"}


def test_form_maps_onto_a_valid_submission_with_citizen_contact() -> None:
    form = {
        "service_code": "dispute",
        "lat": "37.7",
        "long": "117.3",
        "description": "Noise at night",
        "first_name": "Wang",
        "last_name": "Fang",
        "email": "w@example.org",
        "attribute[severity]": "hard",
        "attribute[micro_grid_id]": "changjia-g001-m1",
    }
    raw = form_to_submission(form, "changjia", "changjia-g001", "open311-x")
    submission = ReportSubmission.model_validate(raw)
    assert submission.severity == "hard" and submission.origin == "citizen_request"
    assert submission.location is not None and submission.location.lat == 37.7
    assert submission.contact is not None and submission.contact.name == "Wang Fang"
    assert submission.micro_grid_id == "changjia-g001-m1"


def test_location_is_required_as_lat_and_long_or_an_address() -> None:
    assert location_problem({"lat": "1", "long": "2"}) is None
    assert location_problem({"address_string": "Market street"}) is None
    assert location_problem({"lat": "1"}) is not None
    assert location_problem({}) is not None


def test_derived_report_id_depends_on_content_not_on_the_api_key() -> None:
    a = derived_report_id([("description", "x"), ("api_key", "k1")])
    assert a == derived_report_id([("api_key", "k2"), ("description", "x")])
    assert a != derived_report_id([("description", "y")])


def test_closed_matter_is_closed_with_the_lead_departments_name() -> None:
    registry = changjia_registry()
    view = MatterView.model_validate(
        {
            "_id": "m-1",
            "town_id": "changjia",
            "grid_id": "changjia-g001",
            "category": "dispute",
            "state": "closed",
            "lead": "changjia.judicial_mediation",
            "reported_at": datetime(2026, 3, 1, tzinfo=UTC),
        }
    )
    request = service_request(RequestView(view, None), registry)
    assert request["status"] == "closed"
    assert request["agency_responsible"] == "Judicial Office and Civil Mediation"
    assert request["requested_datetime"] == "2026-03-01T00:00:00+00:00"
    resolved = service_request(RequestView(view.model_copy(update={"state": "resolved"}), None), registry)
    assert resolved["status"] == "open"
