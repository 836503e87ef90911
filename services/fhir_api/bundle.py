"""Assembly of searchset Bundles (entries, paging links)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from services.fhir_api.errors import operation_outcome
from services.fhir_api.paging import encode_cursor
from services.fhir_api.request import SUBSETTED, SearchRequest, apply_elements
from services.fhir_api.store import SearchResult


def resource_first(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with ``resourceType`` as first key (JSONB does not keep key order)."""
    return {"resourceType": resource.get("resourceType"), **resource}


def now_instant() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _url(base: str, rtype: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{base}/{rtype}?{query}" if query else f"{base}/{rtype}"


def _summarize(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "text"}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def searchset(base: str, req: SearchRequest, result: SearchResult) -> dict[str, Any]:
    rtype = req.resource_type
    links = [{"relation": "self", "url": _url(base, rtype, req.link_params + _cursor_param(req))}]
    if req.summary != "count" and req.count > 0:
        links.append({"relation": "first", "url": _url(base, rtype, req.link_params)})
        if result.prev_keys is not None:
            token = encode_cursor("prev", req.sort_spec, result.prev_keys)
            links.append({"relation": "previous", "url": _url(base, rtype, [*req.link_params, ("_cursor", token)])})
        if result.next_keys is not None:
            token = encode_cursor("next", req.sort_spec, result.next_keys)
            links.append({"relation": "next", "url": _url(base, rtype, [*req.link_params, ("_cursor", token)])})

    entries: list[dict[str, Any]] = []
    for row in result.matches:
        resource = row.resource
        if req.elements is not None:
            resource = apply_elements(resource, req.elements)
        elif req.summary == "data":
            resource = _summarize(resource)
        entries.append(
            {
                "fullUrl": f"{base}/{row.resource_type}/{row.id}",
                "resource": resource_first(resource),
                "search": {"mode": "match"},
            }
        )
    for row in result.included:
        entries.append(
            {
                "fullUrl": f"{base}/{row.resource_type}/{row.id}",
                "resource": resource_first(row.resource),
                "search": {"mode": "include"},
            }
        )
    if result.includes_truncated:
        entries.append(
            {
                "resource": operation_outcome(
                    "_include/_revinclude results were truncated; use smaller pages (_count)",
                    code="too-costly",
                    severity="warning",
                ),
                "search": {"mode": "outcome"},
            }
        )

    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "meta": {"lastUpdated": now_instant()},
        "type": "searchset",
    }
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _cursor_param(req: SearchRequest) -> list[tuple[str, str]]:
    if req.cursor is None:
        return []
    return [("_cursor", encode_cursor(req.cursor.direction, req.sort_spec, req.cursor.values))]
