"""Open311 GeoReport v2 under /open311/v2 against the real RabbitMQ and the local Mongo-wire store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from services.intake.tokens import issue_token
from shared.read_models import MATTERS
from tests.connected.intake_harness import (
    GRID_A,
    GRID_B,
    TEST_SECRET,
    EventObserver,
    body_of,
    intake_settings,
    running_intake,
)

if TYPE_CHECKING:
    from shared.settings import GwSettings

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]

REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "lat",
    "long",
    "media_url",
}


def api_key(grid_id: str | None = None) -> str:
    return issue_token(SecretStr(TEST_SECRET), town_id="changjia", grid_id=grid_id, kind="open311")


def form(**changes: str) -> dict[str, str]:
    fields = {
        "jurisdiction_id": "changjia",
        "service_code": "living_environment",
        "lat": "37.7101",
        "long": "117.3802",
        "address_string": "East gate of the market",
        "description": "Rubbish has not been collected for a week",
        "media_url": "https://files.example.org/rubbish.jpg",
        "first_name": "Wang",
        "last_name": "Fang",
        "phone": "13900000000",
        "attribute[grid_id]": GRID_A,
        "attribute[severity]": "major",
        "api_key": api_key(),
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v != ""}


async def test_open311_services_then_post_then_get_requests(settings: GwSettings) -> None:
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        c = intake.client
        services = (await c.get("/open311/v2/services.json", params={"jurisdiction_id": "changjia"})).json()
        assert len(services) == 50 + 7  # the town's 50 service items and the seven categories
        assert {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"} <= set(
            services[0]
        )
        assert all(s["type"] == "realtime" and s["metadata"] is True for s in services)
        definition = (await c.get("/open311/v2/services/living_environment.json")).json()
        assert definition["service_code"] == "living_environment"
        codes = {a["code"]: a for a in definition["attributes"]}
        assert codes["grid_id"]["required"] is True
        assert [v["key"] for v in codes["severity"]["values"]] == ["minor", "major", "hard", "urgent"]

        created = await c.post("/open311/v2/requests.json", data=form())
        assert created.status_code == 200, created.text
        [answer] = created.json()
        assert set(answer) == {"service_request_id", "service_notice", "account_id"}
        request_id = answer["service_request_id"]
        [message] = await events.take(1)
        assert message.routing_key == f"changjia.{GRID_A}.matter_reported"
        event = body_of(message)
        assert event["matter_id"] == request_id
        assert event["channel"] == "open311" and event["origin"] == "citizen_request"
        assert event["category"] == "living_environment" and event["severity"] == "major"
        assert event["contact"] == {"name": "Wang Fang", "phone": "13900000000", "email": None}
        assert event["location"] == {"lat": 37.7101, "long": 117.3802, "address": "East gate of the market"}

        again = await c.post("/open311/v2/requests.json", data=form(api_key=api_key()))
        assert again.json()[0]["service_request_id"] == request_id  # same content: same request
        assert await events.count_now() == 0

        [one] = (await c.get(f"/open311/v2/requests/{request_id}.json")).json()
        assert set(one) == REQUEST_FIELDS
        assert one["service_request_id"] == request_id
        assert one["status"] == "open"
        assert one["service_code"] == "living_environment" and one["service_name"] == "Living environment"
        assert one["address"] == "East gate of the market" and one["lat"] == 37.7101 and one["long"] == 117.3802
        assert one["media_url"] == "https://files.example.org/rubbish.jpg"
        assert datetime.fromisoformat(one["requested_datetime"]).tzinfo is not None
        assert "13900000000" not in str(one) and "Wang" not in str(one)  # no contact data

        listed = (await c.get("/open311/v2/requests.json", params={"service_request_id": request_id})).json()
        assert [r["service_request_id"] for r in listed] == [request_id]
        by_filter = await c.get(
            "/open311/v2/requests.json",
            params={"service_code": "living_environment", "status": "open", "jurisdiction_id": "changjia"},
        )
        assert [r["service_request_id"] for r in by_filter.json()] == [request_id]
        closed_only = (await c.get("/open311/v2/requests.json", params={"status": "closed"})).json()
        assert closed_only == []
        tomorrow, day_after = (datetime.now(UTC) + timedelta(days=d) for d in (1, 2))
        window = {"start_date": tomorrow.isoformat(), "end_date": day_after.isoformat()}
        assert (await c.get("/open311/v2/requests.json", params=window)).json() == []


async def test_open311_request_for_a_service_item_carries_the_item_and_its_answers(settings: GwSettings) -> None:
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        c = intake.client
        services = (await c.get("/open311/v2/services.json", params={"jurisdiction_id": "changjia"})).json()
        allowance = next(s for s in services if s["service_code"] == "minimum_living_allowance")
        assert allowance["group"] == "Proxy service" and "低保申请代办" in allowance["description"]
        definition = (await c.get("/open311/v2/services/minimum_living_allowance.json")).json()
        household = next(a for a in definition["attributes"] if a["code"] == "household_size")
        assert (household["datatype"], household["required"]) == ("number", True)

        item = {"service_code": "minimum_living_allowance", "attribute[severity]": "minor"}
        missing = await c.post("/open311/v2/requests.json", data=form(**item))
        assert missing.status_code == 400
        assert missing.json() == [
            {"code": 400, "description": "attribute[household_size]: required by the service item"}
        ]
        created = await c.post("/open311/v2/requests.json", data=form(**item, **{"attribute[household_size]": "4"}))
        assert created.status_code == 200, created.text
        request_id = created.json()[0]["service_request_id"]
        [message] = await events.take(1)
        event = body_of(message)
        assert (event["category"], event["service_item"]) == ("service_proxy", "minimum_living_allowance")
        assert event["service_details"] == {"household_size": "4"}
        [one] = (await c.get(f"/open311/v2/requests/{request_id}.json")).json()
        assert (one["service_code"], one["service_name"]) == ("minimum_living_allowance", allowance["service_name"])
        by_item = await c.get(
            "/open311/v2/requests.json",
            params={"service_code": "minimum_living_allowance", "jurisdiction_id": "changjia"},
        )
        assert [r["service_request_id"] for r in by_item.json()] == [request_id]


async def test_open311_errors_come_in_the_spec_shape(settings: GwSettings) -> None:
    async with EventObserver(settings.amqp_url) as events, running_intake(intake_settings(settings)) as intake:
        c = intake.client
        no_code = await c.post("/open311/v2/requests.json", data=form(service_code=""))
        assert no_code.status_code == 400
        assert no_code.json() == [{"code": 400, "description": "service_code: required"}]
        no_location = await c.post("/open311/v2/requests.json", data=form(lat="", long="", address_string=""))
        assert no_location.status_code == 400
        bad_lat = await c.post("/open311/v2/requests.json", data=form(lat="north"))
        assert bad_lat.status_code == 400 and bad_lat.json()[0]["description"].startswith("lat:")
        unknown_grid = await c.post("/open311/v2/requests.json", data=form(**{"attribute[grid_id]": "changjia-g999"}))
        assert unknown_grid.status_code == 400
        assert unknown_grid.json()[0]["description"].startswith("attribute[grid_id]:")
        no_key = await c.post("/open311/v2/requests.json", data=form(api_key=""))
        assert no_key.status_code == 401 and no_key.json()[0]["code"] == 401
        other_grid = await c.post("/open311/v2/requests.json", data=form(api_key=api_key(GRID_B)))
        assert other_grid.status_code == 403
        grid_token_as_key = issue_token(SecretStr(TEST_SECRET), town_id="changjia", grid_id=GRID_A)
        assert (await c.post("/open311/v2/requests.json", data=form(api_key=grid_token_as_key))).status_code == 401
        as_json = await c.post("/open311/v2/requests.json", json=form())
        assert as_json.status_code == 400
        unknown = await c.get("/open311/v2/requests/00000000-0000-4000-8000-000000000000.json")
        assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404
        assert (await c.get("/open311/v2/services/noise.json")).status_code == 404
        assert (await c.get("/open311/v2/services.yaml")).status_code == 400  # .json and .xml only
        assert (await c.get("/open311/v2/requests.json", params={"page": "0"})).status_code == 400
        assert (await c.get("/open311/v2/requests.json", params={"page_size": "100000"})).status_code == 400
        assert (await c.get("/open311/v2/services.json", params={"jurisdiction_id": "atlantis"})).status_code == 404
        assert (await c.get("/open311/v2/requests.json", params={"status": "pending"})).status_code == 400
        assert await events.count_now() == 0


async def test_open311_status_and_agency_come_from_the_stats_read_model(settings: GwSettings) -> None:
    async with running_intake(intake_settings(settings)) as intake:
        created = await intake.client.post("/open311/v2/requests.json", data=form())
        request_id = created.json()[0]["service_request_id"]
        now = datetime.now(UTC)
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url, tz_aware=True)
        try:  # what the stats service writes once the matter is closed
            await client[settings.mongo_db][MATTERS].insert_one(
                {
                    "_id": request_id,
                    "town_id": "changjia",
                    "grid_id": GRID_A,
                    "category": "living_environment",
                    "summary": "Rubbish has not been collected for a week",
                    "location": {"lat": 37.7101, "long": 117.3802, "address": "East gate of the market"},
                    "reported_at": now - timedelta(hours=5),
                    "state": "closed",
                    "lead": "changjia.environment",
                    "resolve_by": now + timedelta(days=2),
                    "timeline": [
                        {"sequence": 1, "event_type": "matter_closed", "occurred_at": now, "message_id": "m1"}
                    ],
                }
            )
        finally:
            await client.close()
        [one] = (await intake.client.get(f"/open311/v2/requests/{request_id}.json")).json()
        assert one["status"] == "closed"
        assert one["status_notes"] == "Closed."
        assert one["agency_responsible"] == "Living Environment and Ecology Office"
        assert one["expected_datetime"] is not None
        closed = (await intake.client.get("/open311/v2/requests.json", params={"status": "closed"})).json()
        assert [r["service_request_id"] for r in closed] == [request_id]
        assert (await intake.client.get("/open311/v2/requests.json", params={"status": "open"})).json() == []
