"""Parsing of a search request: parameters (via the registry), result parameters, includes, sort and paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, not_

from clinie.fhir.search import RESOURCE_TYPES, SEARCH_PARAMETERS, sort_parameters
from clinie.fhir.systems import OBSERVATION_VALUE_SYSTEM
from services.fhir_api.auth import Grant
from services.fhir_api.errors import FhirError
from services.fhir_api.paging import Cursor, SortKey, decode_cursor
from services.fhir_api.params import bad_request, check_value, or_values
from services.fhir_api.query import column, compartment_condition, condition, missing_condition, type_condition

SUBSETTED = {"system": OBSERVATION_VALUE_SYSTEM, "code": "SUBSETTED"}
RESULT_PARAMS = {
    "_count",
    "_sort",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_total",
    "_totalMethod",
    "_cursor",
    "_format",
    "_pretty",
}
_JSON_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_ELEMENT_NAME = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


# ------------------------------------------------------------------------------------------------ includes


@dataclass(frozen=True)
class IncludeSpec:
    """``source:param[:target]``; ``kind`` says how the related rows are found."""

    value: str
    kind: Literal["prov-target", "patient", "rev-prov-target", "rev-patient"]
    resource_type: str  # the type of the resources that get included
    target_type: str | None = None


INCLUDES: dict[str, list[str]] = {
    "Condition": ["Condition:patient", "Condition:subject"],
    "MedicationStatement": ["MedicationStatement:patient", "MedicationStatement:subject"],
    "AllergyIntolerance": ["AllergyIntolerance:patient"],
    "Provenance": ["Provenance:target"],
    "Patient": [],
}
REVINCLUDES: dict[str, list[str]] = {
    "Condition": ["Provenance:target"],
    "MedicationStatement": ["Provenance:target"],
    "AllergyIntolerance": ["Provenance:target"],
    "Provenance": [],
    "Patient": [
        "Condition:patient",
        "Condition:subject",
        "MedicationStatement:patient",
        "MedicationStatement:subject",
        "AllergyIntolerance:patient",
    ],
}


def parse_include(rtype: str, raw: str, reverse: bool) -> IncludeSpec:
    pname = "_revinclude" if reverse else "_include"
    parts = raw.split(":")
    allowed = (REVINCLUDES if reverse else INCLUDES)[rtype]
    base = ":".join(parts[:2])
    if len(parts) not in (2, 3) or base not in allowed:
        raise bad_request(f"{pname} value is not supported for {rtype} (supported: {', '.join(allowed) or 'none'})")
    target = parts[2] if len(parts) == 3 else None
    if base == "Provenance:target":
        if reverse:
            if target not in (None, rtype):
                raise bad_request(f"{pname} target type must be {rtype}")
            return IncludeSpec(raw, "rev-prov-target", "Provenance", rtype)
        if target is not None and target not in RESOURCE_TYPES:
            raise bad_request(f"{pname} target type is not supported")
        return IncludeSpec(raw, "prov-target", target or "*", target)
    if target not in (None, "Patient"):
        raise bad_request(f"{pname} target type must be Patient")
    if reverse:
        return IncludeSpec(raw, "rev-patient", parts[0], "Patient")
    return IncludeSpec(raw, "patient", "Patient", "Patient")


# ------------------------------------------------------------------------------------------------ request


@dataclass
class SearchRequest:
    resource_type: str
    where: list[ColumnElement[bool]]
    sort: list[SortKey]
    sort_spec: str
    count: int
    summary: Literal["count", "data"] | None = None
    elements: list[str] | None = None
    includes: list[IncludeSpec] = field(default_factory=list)
    revincludes: list[IncludeSpec] = field(default_factory=list)
    total: bool = True
    cursor: Cursor | None = None
    link_params: list[tuple[str, str]] = field(default_factory=list)
    used_params: list[str] = field(default_factory=list)  # parameter names (never values), for logs


def safe_name(name: str) -> str:
    """A parameter name fit to quote in an error message (never a value)."""
    ok = 0 < len(name) <= 64 and all(ch.isascii() and (ch.isalnum() or ch in "_-.") for ch in name)
    return name if ok else "(invalid name)"


def sort_names(rtype: str) -> list[str]:
    return [p.name for p in sort_parameters(rtype)]


def _parse_sort(rtype: str, raw: str) -> tuple[list[SortKey], str]:
    sortable = {p.name: p for p in sort_parameters(rtype)}
    keys: list[SortKey] = []
    seen: set[str] = set()
    for part in raw.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part[1:] if desc else part
        p = sortable.get(name)
        if p is None or p.sort_column is None:
            supported = ", ".join(sortable)
            raise bad_request(f"_sort by '{safe_name(name)}' is not supported for {rtype} (supported: {supported})")
        if name in seen:
            continue
        seen.add(name)
        keys.append(SortKey(name, column(p.sort_column), p.sort_kind, desc))
    return keys, ",".join(("-" if k.descending else "") + k.name for k in keys)


def _parse_elements(rtype: str, raw: str) -> list[str]:
    out: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if part.startswith(rtype + "."):
            part = part[len(rtype) + 1 :]
        part = part.removesuffix("[x]")
        if not part or not part[0].isalpha() or not set(part) <= _ELEMENT_NAME or len(part) > 64:
            raise bad_request("_elements must list element names, e.g. _elements=code,subject")
        out.append(part)
    return out


def parse_search(
    rtype: str,
    items: Sequence[tuple[str, str]],
    grant: Grant,
    *,
    default_count: int,
    max_count: int,
    max_length: int,
    lenient: bool,
) -> SearchRequest:
    """Validate the query items of a search and build its SQL conditions."""
    params = SEARCH_PARAMETERS[rtype]
    where: list[ColumnElement[bool]] = [type_condition(rtype), compartment_condition(rtype, grant)]
    result: dict[str, str] = {}
    includes: list[IncludeSpec] = []
    revincludes: list[IncludeSpec] = []
    link_params: list[tuple[str, str]] = []
    used: list[str] = []
    for key, raw in items:
        check_value(safe_name(key), key, 256)
        name, _, modifier_raw = key.partition(":")
        modifier = modifier_raw or None
        check_value(safe_name(name), raw, max_length)
        if name in RESULT_PARAMS:
            if modifier is not None:
                raise bad_request(f"modifiers are not supported on {name}")
            if name in ("_include", "_revinclude"):
                inc = parse_include(rtype, raw, name == "_revinclude")
                (revincludes if name == "_revinclude" else includes).append(inc)
            elif name in result:
                raise bad_request(f"{name} may be given only once")
            else:
                result[name] = raw
            if name != "_cursor":
                link_params.append((key, raw))
            continue
        param = params.get(name)
        if param is None:
            if lenient:
                continue
            raise bad_request(
                f"unknown search parameter '{safe_name(name)}' for {rtype} (supported: {', '.join(params)}); "
                "send 'Prefer: handling=lenient' to ignore unknown parameters"
            )
        link_params.append((key, raw))
        if raw == "":
            continue  # FHIR: empty parameters are ignored
        used.append(key)
        if modifier == "missing":
            if "missing" not in param.modifiers:
                raise bad_request(f"modifier ':missing' is not supported on parameter '{name}'")
            if raw not in ("true", "false"):
                raise bad_request(f"':missing' takes true or false (parameter '{name}')")
            missing = missing_condition(param)
            where.append(missing if raw == "true" else not_(missing))
            continue
        where.append(condition(param, modifier, or_values(name, raw)))
        if param.index == "targets":
            where[0] = type_condition(rtype, targets_filtered=True)

    if result.get("_pretty", "false") not in ("true", "false"):
        raise bad_request("_pretty must be true or false")
    fmt = result.get("_format")
    if fmt is not None and fmt not in _JSON_FORMATS:
        raise FhirError(406, "only JSON (application/fhir+json) is supported")

    count = default_count
    if "_count" in result:
        try:
            count = int(result["_count"])
        except ValueError as exc:
            raise bad_request("_count must be a non-negative integer") from exc
        if count < 0 or not result["_count"].isdigit():
            raise bad_request("_count must be a non-negative integer")
        count = min(count, max_count)

    summary: Literal["count", "data"] | None = None
    s = result.get("_summary")
    if s == "count":
        summary = "count"
    elif s == "data":
        summary = "data"
    elif s not in (None, "false"):
        raise bad_request("_summary supports count, data and false")

    total = True
    t = result.get("_total", result.get("_totalMethod"))
    if t is not None:
        if t not in ("none", "estimate", "accurate", "count"):
            raise bad_request("_total must be none, estimate or accurate")
        total = t != "none"

    keys, spec = _parse_sort(rtype, result["_sort"]) if "_sort" in result else ([], "")
    if not any(k.name == "_id" for k in keys):
        keys.append(SortKey("_id", column("id"), "str"))
        spec = ",".join(filter(None, [spec, "_id"]))

    elements = _parse_elements(rtype, result["_elements"]) if "_elements" in result else None
    cursor = decode_cursor(result["_cursor"], spec, keys) if "_cursor" in result else None
    if summary == "count" or count == 0:
        total = True
    return SearchRequest(
        resource_type=rtype,
        where=where,
        sort=keys,
        sort_spec=spec,
        count=count,
        summary=summary,
        elements=elements,
        includes=includes,
        revincludes=revincludes,
        total=total,
        cursor=cursor,
        link_params=link_params,
        used_params=used,
    )


# elements with cardinality 1..* that _elements always keeps (FHIR: servers SHOULD return mandatory elements)
MANDATORY_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Condition": ("subject",),
    "MedicationStatement": ("status", "medication", "subject"),
    "AllergyIntolerance": ("patient",),
    "Provenance": ("target", "recorded", "agent"),
    "Patient": (),
}


def apply_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """Keep resourceType, id, meta, mandatory and the listed elements (``onset`` matches ``onsetDateTime``)."""
    keep: dict[str, Any] = {}
    elements = [*elements, *MANDATORY_ELEMENTS.get(str(resource.get("resourceType")), ())]
    for k, v in resource.items():
        if k in ("resourceType", "id", "meta") or any(
            k == e or (k.startswith(e) and len(k) > len(e) and k[len(e)].isupper()) for e in elements
        ):
            keep[k] = v
    meta = dict(keep.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    keep["meta"] = meta
    return keep
