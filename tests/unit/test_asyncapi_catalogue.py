"""The AsyncAPI documents FastStream generates from the code list every contract message in full."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from shared import topology
from shared.catalogue import COMMAND_MODELS, DISPATCH_EVENT_TYPES, EVENT_MODELS
from shared.contracts import COMMAND_TYPES, EVENT_TYPES, GRID_COMMAND_TYPES, GRID_EVENT_TYPES

pytestmark = pytest.mark.unit

SERVICES = ("intake", "dispatch", "stats", "department")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"


def generated(service: str) -> dict[str, Any]:
    module = importlib.import_module(f"services.{service}.asyncapi")
    document: dict[str, Any] = module.app.schema.to_specification().to_jsonable()
    return document


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {service: generated(service) for service in SERVICES}


def _refs_to_components(schema: Any) -> Any:
    """pydantic's ``#/$defs/X`` as FastStream writes it: ``#/components/schemas/X``."""
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    return json.loads(text)


def _payload_names(document: dict[str, Any], action: str) -> set[str]:
    """Schema names a document's ``action`` (send/receive) operations carry, unions unfolded."""
    schemas = document["components"]["schemas"]
    messages = document["components"]["messages"]
    found: set[str] = set()
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        for ref in operation["messages"]:
            channel = document["channels"][ref["$ref"].split("/")[2]]
            message_ref = channel["messages"][ref["$ref"].split("/")[-1]]["$ref"]
            payload = messages[message_ref.split("/")[-1]]["payload"]["$ref"].split("/")[-1]
            options = schemas[payload].get("oneOf", [{"$ref": f"#/components/schemas/{payload}"}])
            found |= {o["$ref"].split("/")[-1] for o in options}
    return found


def test_every_event_and_command_has_its_full_schema(documents: dict[str, dict[str, Any]]) -> None:
    assert len(EVENT_MODELS) == len(EVENT_TYPES) + len(GRID_EVENT_TYPES) == 14
    assert len(COMMAND_MODELS) == len(COMMAND_TYPES) + len(GRID_COMMAND_TYPES) == 8
    schemas: dict[str, Any] = {}
    for document in documents.values():
        schemas |= document["components"]["schemas"]
    for model in (*EVENT_MODELS.values(), *COMMAND_MODELS.values()):
        expected = _refs_to_components(model.model_json_schema(ref_template="#/$defs/{model}"))
        expected.pop("$defs", None)
        assert model.__name__ in schemas, f"{model.__name__} missing from every AsyncAPI document"
        got = schemas[model.__name__]
        assert got["properties"] == expected["properties"], model.__name__
        assert sorted(got.get("required", [])) == sorted(expected.get("required", [])), model.__name__
        assert got.get("description"), f"{model.__name__} has no description"


def test_who_sends_and_who_receives_each_message(documents: dict[str, dict[str, Any]]) -> None:
    event_names = {m.__name__ for m in EVENT_MODELS.values()}
    command_names = {m.__name__ for m in COMMAND_MODELS.values()}
    assert _payload_names(documents["intake"], "send") == {"MatterReported"}
    assert _payload_names(documents["intake"], "receive") == {"ReportSubmission"}
    assert _payload_names(documents["dispatch"], "send") == event_names
    assert {EVENT_MODELS[t].__name__ for t in DISPATCH_EVENT_TYPES} == event_names - {"MatterReported"}
    assert _payload_names(documents["dispatch"], "receive") == command_names | {"MatterReported"}
    assert _payload_names(documents["stats"], "receive") == event_names
    assert _payload_names(documents["department"], "send") == command_names
    assert "MatterDispatched" in _payload_names(documents["department"], "receive")


def test_send_channels_name_the_exchange_and_routing_key_of_the_topology(
    documents: dict[str, dict[str, Any]],
) -> None:
    expected_exchange = {"gw.events": topology.EVENTS, "gw.commands": topology.COMMANDS, "gw.dispatch": None}
    for document in documents.values():
        for operation in document["operations"].values():
            if operation["action"] != "send":
                continue
            channel = document["channels"][operation["channel"]["$ref"].split("/")[-1]]
            exchange = channel["bindings"]["amqp"]["exchange"]["name"]
            assert exchange in expected_exchange
            assert operation["bindings"]["amqp"]["deliveryMode"] == 2  # persistent
            address = channel["address"]
            if exchange == topology.EVENTS.name:
                assert address == topology.event_routing_key("*", "*", address.split(".")[-1])
            if exchange == topology.COMMANDS.name:
                assert address == topology.command_routing_key("*", address.split(".")[-1])


@pytest.mark.parametrize("service", SERVICES)
def test_checked_in_document_is_the_generated_one(service: str, documents: dict[str, dict[str, Any]]) -> None:
    """``make asyncapi`` writes docs/asyncapi/; a contract change without it fails here."""
    checked_in = json.loads((DOCS / f"{service}.json").read_text(encoding="utf-8"))
    current = documents[service]
    assert {k: v for k, v in checked_in.items() if k != "servers"} == {
        k: v for k, v in current.items() if k != "servers"
    }, "run `make asyncapi`"


@pytest.mark.parametrize("service", ["intake", "dispatch", "stats"])
async def test_each_service_serves_its_document(service: str, documents: dict[str, dict[str, Any]]) -> None:
    import httpx

    module = importlib.import_module(f"services.{service}.app")
    config = importlib.import_module(f"services.{service}.config")
    settings_cls = next(v for k, v in vars(config).items() if k.endswith("Settings") and k != "GwSettings")
    app = module.create_app(settings_cls())  # no lifespan: nothing connects
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        served = (await client.get("/asyncapi.json")).json()
        html = await client.get("/asyncapi")
    assert served["operations"].keys() == documents[service]["operations"].keys()
    assert html.status_code == 200 and "AsyncApiStandalone" in html.text
