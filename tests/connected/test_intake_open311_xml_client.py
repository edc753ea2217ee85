"""A client that knows only the GeoReport v2 spec and speaks only XML: discover, list, read a
definition, fill its required attributes from the definition alone, post, read the status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from lxml import etree
from pydantic import SecretStr

from services.intake.tokens import issue_token
from tests.connected.intake_harness import TEST_SECRET, intake_settings, running_intake

if TYPE_CHECKING:
    from shared.settings import GwSettings

pytestmark = [pytest.mark.connected, pytest.mark.usefixtures("mongo_ready")]


def xml(response: object) -> etree._Element:
    assert getattr(response, "status_code", None) == 200, getattr(response, "text", response)
    assert getattr(response, "headers", {})["content-type"].startswith("text/xml")
    return etree.fromstring(getattr(response, "content", b""))


async def test_spec_only_xml_client_lists_fills_posts_and_reads_the_status(settings: GwSettings) -> None:
    town_key = issue_token(SecretStr(TEST_SECRET), town_id="changjia", grid_id=None, kind="open311")
    async with running_intake(intake_settings(settings)) as intake:
        c = intake.client
        endpoint = xml(await c.get("/open311/discovery.xml")).find("endpoints/endpoint")
        assert endpoint is not None and "text/xml" in endpoint.xpath("formats/format/text()")
        base = str(endpoint.findtext("url")).removeprefix("http://intake.test")

        services = xml(await c.get(f"{base}/services.xml", params={"jurisdiction_id": "changjia"}))
        code = services.xpath("service[metadata='true']/service_code/text()")[0]
        definition = xml(await c.get(f"{base}/services/{code}.xml", params={"jurisdiction_id": "changjia"}))
        form = {
            "api_key": town_key,
            "jurisdiction_id": "changjia",
            "service_code": code,
            "lat": "37.7101",
            "long": "117.3802",
            "description": "A street lamp is out at the crossroads",
        }
        for attribute in definition.iterfind("attributes/attribute"):
            if attribute.findtext("required") != "true":
                continue
            assert attribute.findtext("datatype") == "singlevaluelist", "a required free-text attribute"
            form[f"attribute[{attribute.findtext('code')}]"] = attribute.xpath("values/value/key/text()")[0]
        assert any(k == "attribute[grid_id]" for k in form)

        created = xml(await c.post(f"{base}/requests.xml", data=form))
        request_id = created.findtext("request/service_request_id")
        assert request_id and created.findtext("request/service_notice")

        status = xml(await c.get(f"{base}/requests/{request_id}.xml", params={"jurisdiction_id": "changjia"}))
        assert status.tag == "service_requests"
        assert status.findtext("request/service_request_id") == request_id
        assert status.findtext("request/status") == "open"
        assert status.findtext("request/service_code") == code

        page = xml(await c.get(f"{base}/requests.xml", params={"page": "1", "page_size": "1"}))
        assert page.xpath("request/service_request_id/text()") == [request_id]
        assert xml(await c.get(f"{base}/requests.xml", params={"page": "2", "page_size": "1"})).findall("request") == []


async def test_grid_is_not_required_when_the_api_key_names_it_and_errors_are_xml(settings: GwSettings) -> None:
    grid_key = issue_token(SecretStr(TEST_SECRET), town_id="changjia", grid_id="changjia-g001", kind="open311")
    async with running_intake(intake_settings(settings)) as intake:
        c = intake.client
        url = "/open311/v2/services/dispute.xml"
        definition = xml(await c.get(url, params={"jurisdiction_id": "changjia", "api_key": grid_key}))
        assert definition.xpath("attributes/attribute[code='grid_id']/required/text()") == ["false"]
        keys = definition.xpath("attributes/attribute[code='grid_id']/values/value/key/text()")
        assert "changjia-g001" in keys and len(keys) == 62
        refused = await c.post("/open311/v2/requests.xml", data={"service_code": "dispute", "api_key": "nope"})
        assert refused.status_code == 401 and refused.headers["content-type"].startswith("text/xml")
        error = etree.fromstring(refused.content)
        assert error.tag == "errors" and error.findtext("error/code") == "401"
