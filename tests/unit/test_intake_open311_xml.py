"""Open311 XML has the element structure of the GeoReport v2 specification's own examples."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from services.intake.open311_catalogue import service_definition, service_list
from services.intake.open311_discovery import discovery
from services.intake.open311_xml import render
from tests.factories import changjia_registry

pytestmark = pytest.mark.unit

# The shapes of the specification's examples (values shortened), one per answer kind.
SPEC_SERVICES = b"""<?xml version="1.0" encoding="utf-8"?>
<services><service><service_code>001</service_code><service_name>Cans left out 24x7</service_name>
<description>Garbage or recycling cans left out.</description><metadata>true</metadata><type>realtime</type>
<keywords>lorem, ipsum, dolor</keywords><group>sanitation</group></service></services>"""
SPEC_DEFINITION = b"""<?xml version="1.0" encoding="utf-8"?>
<service_definition><service_code>DMV66</service_code><attributes><attribute><variable>true</variable>
<code>WHISHETN</code><datatype>singlevaluelist</datatype><required>true</required>
<datatype_description></datatype_description><order>1</order><description>What is the make?</description>
<values><value><key>123</key><name>Ford</name></value><value><key>124</key><name>Chrysler</name></value></values>
</attribute></attributes></service_definition>"""
SPEC_CREATED = b"""<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>293944</service_request_id>
<service_notice>The City will inspect within 24 hours.</service_notice><account_id/></request></service_requests>"""
SPEC_REQUESTS = b"""<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>638344</service_request_id><status>closed</status>
<status_notes>Duplicate request.</status_notes><service_name>Sidewalk and Curb Issues</service_name>
<service_code>006</service_code><description></description><agency_responsible></agency_responsible>
<service_notice></service_notice><requested_datetime>2010-04-14T06:37:38-08:00</requested_datetime>
<updated_datetime>2010-04-14T06:37:38-08:00</updated_datetime><expected_datetime>2010-04-15T06:37:38-08:00</expected_datetime>
<address>8TH AVE and JUDAH ST</address><address_id>545483</address_id><zipcode>94122</zipcode>
<lat>37.762221815</lat><long>-122.4651145</long><media_url>http://city.gov/638344.jpg</media_url></request>
</service_requests>"""
SPEC_ERRORS = b"""<?xml version="1.0" encoding="utf-8"?>
<errors><error><code>403</code><description>Invalid api_key received</description></error></errors>"""
SPEC_DISCOVERY = b"""<?xml version="1.0" encoding="utf-8"?>
<discovery><changeset>2011-02-03 14:18</changeset><contact>You can email or call for assistance</contact>
<key_service>You can request a key here: http://api.city.gov/api_key/request</key_service><endpoints>
<endpoint><specification>http://wiki.open311.org/GeoReport_v2</specification><url>http://open311.sfgov.org/v2</url>
<changeset>2010-11-23 09:01</changeset><type>production</type><formats><format>text/xml</format>
<format>application/json</format></formats></endpoint></endpoints></discovery>"""


def names(document: bytes) -> set[str]:
    root = etree.fromstring(document)
    return {"/".join(a.tag for a in reversed(list(e.iterancestors()))) + "/" + e.tag for e in root.iter()}


REQUEST: dict[str, Any] = {
    "service_request_id": "9d3c",
    "status": "open",
    "status_notes": "Assigned, waiting to be accepted.",
    "service_name": "Dispute",
    "service_code": "dispute",
    "description": "Noise at night",
    "agency_responsible": "Changjia Village",
    "service_notice": "",
    "requested_datetime": "2026-12-01T08:00:00+00:00",
    "updated_datetime": "2026-12-01T08:05:00+00:00",
    "expected_datetime": None,
    "address": None,
    "lat": 37.7,
    "long": 117.3,
    "media_url": None,
}


@pytest.mark.parametrize(
    ("kind", "body", "spec"),
    [
        ("services", service_list(changjia_registry(), "changjia"), SPEC_SERVICES),
        (
            "service_definition",
            service_definition("dispute", [("g1", "一村 Village 1")], grid_required=True),
            SPEC_DEFINITION,
        ),
        ("requests", [{"service_request_id": "1", "service_notice": "Received", "account_id": None}], SPEC_CREATED),
        ("requests", [REQUEST], SPEC_REQUESTS),
        ("errors", [{"code": 403, "description": "api_key: not valid"}], SPEC_ERRORS),
        ("discovery", discovery("http://intake.test/"), SPEC_DISCOVERY),
    ],
)
def test_xml_uses_only_the_element_names_of_the_spec_example(kind: str, body: Any, spec: bytes) -> None:
    ours = render(kind, body)
    assert ours.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert names(ours) <= names(spec), names(ours) - names(spec)
    assert etree.fromstring(ours).tag == etree.fromstring(spec).tag


def test_xml_writes_booleans_and_nulls_as_the_spec_does() -> None:
    root = etree.fromstring(render("requests", [{"service_request_id": "1", "account_id": None, "lat": 1.5}]))
    request = root.find("request")
    assert request is not None
    assert request.findtext("account_id") == "" and request.findtext("lat") == "1.5"
    definition = etree.fromstring(render("service_definition", service_definition("other", [], grid_required=False)))
    assert definition.findtext("attributes/attribute/variable") == "true"
    assert definition.findtext("attributes/attribute/required") == "false"
