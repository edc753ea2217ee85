"""GeoReport v2 in XML, the spec's required format: the same content as the JSON answers, with the
spec's element names (``services/service``, ``service_definition/attributes/attribute/values/value``,
``service_requests/request``, ``errors/error``, ``discovery/endpoints/endpoint/formats/format``).

Lists become a wrapper element holding one child per item; ``None`` is an empty element and
booleans are ``true``/``false``, as in the spec's examples. Built with lxml, never by string joins.
"""

from __future__ import annotations

from typing import Any, Final

from lxml import etree

XML_MEDIA_TYPE: Final = "text/xml; charset=utf-8"
ROOTS: Final[dict[str, tuple[str, str]]] = {
    # answer kind -> (root element, item element) for list answers
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}
CHILD: Final[dict[str, str]] = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: etree._Element, value: Any, name: str) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(etree.SubElement(element, key), inner, key)
    elif isinstance(value, list):
        for item in value:
            _fill(etree.SubElement(element, CHILD.get(name, "item")), item, CHILD.get(name, "item"))
    else:
        element.text = _text(value)


def render(kind: str, body: Any) -> bytes:
    """``body`` as the JSON route answers it -> the spec's XML document."""
    if isinstance(body, list):
        root_name, item_name = ROOTS[kind]
        root = etree.Element(root_name)
        for item in body:
            _fill(etree.SubElement(root, item_name), item, item_name)
    else:
        root = etree.Element(kind)
        _fill(root, body, kind)
    document: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return document
