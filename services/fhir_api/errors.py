"""FHIR errors: an exception carrying HTTP status + OperationOutcome issue, and the JSON response type."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_JSON = "application/fhir+json"

# HTTP status -> OperationOutcome.issue.code
_DEFAULT_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    500: "exception",
    503: "transient",
}


class FhirError(Exception):
    """An error answered as an OperationOutcome. ``diagnostics`` must never contain PHI or internals."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        severity: str = "error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or _DEFAULT_CODES.get(status, "processing")
        self.severity = severity
        self.headers = headers or {}


def operation_outcome(diagnostics: str, *, code: str = "processing", severity: str = "error") -> dict[str, Any]:
    """A validated R4B OperationOutcome as JSON-ready dict."""
    oo = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
        }
    )
    return oo.model_dump(mode="json", exclude_none=True)


class FhirJSONResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_response(err: FhirError) -> FhirJSONResponse:
    body = operation_outcome(err.diagnostics, code=err.code, severity=err.severity)
    return FhirJSONResponse(body, status_code=err.status, headers=err.headers)
