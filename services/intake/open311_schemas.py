"""GeoReport v2 shapes as the OpenAPI document shows them (the routes build plain lists)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Open311Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311AttributeValue(BaseModel):
    key: str
    name: str


class Open311Attribute(BaseModel):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[Open311AttributeValue] | None = None


class Open311ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


class Open311ServiceRequest(BaseModel):
    service_request_id: str
    status: str = Field(description="`open` or `closed`")
    status_notes: str
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str
    service_notice: str
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class Open311Created(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None


class Open311Error(BaseModel):
    code: int
    description: str


XML = {"text/xml": {"schema": {"type": "string", "description": "The same content in the spec's XML"}}}
ERRORS: dict[int | str, Any] = {
    "4XX": {
        "description": "GeoReport v2 errors: a list of {code, description} (`<errors><error>` in XML)",
        "model": list[Open311Error],
        "content": XML,
    },
}
XML_OK: dict[int | str, Any] = {200: {"description": "`.json` or `.xml` (same content)", "content": XML}}


class Open311Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Open311Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]


UNAVAILABLE: dict[int | str, Any] = {
    503: {
        "description": "The broker did not take the request; retry later",
        "model": list[Open311Error],
        "content": XML,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}
FORM_FIELDS = [
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "description",
    "email",
    "first_name",
    "last_name",
    "phone",
    "media_url",
    "attribute[grid_id]",
    "attribute[micro_grid_id]",
    "attribute[severity]",
    "attribute[report_id]",
]
FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {name: {"type": "string"} for name in FORM_FIELDS},
                    "required": ["api_key", "service_code"],
                }
            }
        },
    }
}
