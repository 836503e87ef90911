"""The CapabilityStatement served at ``/metadata``, generated from the search registry."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from clinie import __version__
from clinie.fhir.search import RESOURCE_TYPES, SEARCH_PARAMETERS, SearchParameter
from services.fhir_api.request import INCLUDES, REVINCLUDES, sort_names

_RESULT_DOC = (
    "Result parameters on every search: _count (capped by the server's max page size), "
    "_sort (comma-separated, '-' = descending; sortable: {sorts}), _summary=count|data|false, "
    "_elements, _total=none|accurate, _include/_revinclude as listed. Comma = OR, repeated parameter = AND. "
    "Unknown parameters answer 400 unless 'Prefer: handling=lenient'. Paging is keyset-based (_cursor in links)."
)
_SMART_SCOPES = (
    "Bearer JWT (RS/ES/PS signatures) verified against the configured key. SMART-on-FHIR scopes, v1 and v2 "
    "syntax: system/<T|*>.read, user/<T|*>.read (all patients), patient/<T|*>.read (only the patient of the "
    "token's 'patient' claim; reading another patient's resource answers 403). v2: .r = read, .s = search, "
    ".rs = both."
)


def _modifiers(p: SearchParameter) -> str:
    mods = [":[type]" if m == "type" else f":{m}" for m in p.modifiers]
    return f" Modifiers: {', '.join(mods)}." if mods else ""


def capability_statement(base: str, auth_enabled: bool, date: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for rtype in RESOURCE_TYPES:
        params = SEARCH_PARAMETERS[rtype]
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": False,
            "conditionalRead": "not-supported",
            "searchParam": [
                {
                    "name": p.name,
                    "type": p.type,
                    **({"definition": p.definition} if p.definition else {}),
                    "documentation": p.documentation + _modifiers(p),
                }
                for p in params.values()
            ],
            "documentation": _RESULT_DOC.format(sorts=", ".join(sort_names(rtype))),
        }
        if INCLUDES[rtype]:
            entry["searchInclude"] = INCLUDES[rtype]
        if REVINCLUDES[rtype]:
            entry["searchRevInclude"] = REVINCLUDES[rtype]
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                    "documentation": "GET [base]/Patient/$export with Prefer: respond-async; _type, _since.",
                }
            ]
        resources.append(entry)

    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "Read-only FHIR R4 API over the resources clinie extracted from clinical notes. "
        "vread answers only the current version; no history, write or transaction interactions.",
        "resource": resources,
        "operation": [
            {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": "GET [base]/$export with Prefer: respond-async; _type, _since, "
                "_outputFormat=application/fhir+ndjson.",
            }
        ],
    }
    if auth_enabled:
        rest["security"] = {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "description": _SMART_SCOPES,
        }
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "clinie",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "clinie FHIR query API", "version": __version__},
        "implementation": {"description": "clinie FHIR R4 query API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
    return CapabilityStatement.model_validate(body).model_dump(mode="json", exclude_none=True)
