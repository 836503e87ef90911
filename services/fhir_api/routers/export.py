"""FHIR Bulk Data export: kick-off (``/$export``, ``/Patient/$export``), status, delete and file download.

A job is bound to the access context that started it (client and patient compartment); every poll, delete and
download re-checks the caller's token against it (``ExportManager.get``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from clinie.fhir.search import RESOURCE_TYPES
from services.fhir_api.auth import Authenticator
from services.fhir_api.deps import AuthenticatorDep, ExportsDep, SettingsDep, authenticate, base_url, lenient
from services.fhir_api.errors import FhirError
from services.fhir_api.export import ExportJob, ExportManager, new_job_id
from services.fhir_api.params import check_value, parse_date
from services.settings import ApiSettings

router = APIRouter()

_NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
_EXPORT_PARAMS = {"_type", "_since", "_outputFormat"}
_EXPORT_UNSUPPORTED = {"_typeFilter", "_elements", "patient", "includeAssociatedData"}


def _request_url(request: Request, settings: ApiSettings) -> str:
    query = urlencode(list(request.query_params.multi_items()))
    path = request.url.path
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return f"{base_url(request, settings)}{path}" + (f"?{query}" if query else "")


def _kick_off(
    request: Request,
    settings: ApiSettings,
    authenticator: Authenticator,
    exports: ExportManager,
    patient_level: bool,
) -> Response:
    access = authenticate(request, authenticator)
    if "respond-async" not in request.headers.get("prefer", ""):
        raise FhirError(400, "bulk export needs the header 'Prefer: respond-async'")
    if access.auth_enabled and access.subject is None:
        raise FhirError(403, "bulk export needs a token with a 'sub' or 'client_id' claim")
    is_lenient = lenient(request)
    values: dict[str, str] = {}
    for key, raw in request.query_params.multi_items():
        check_value("export parameter", key, 256)
        check_value("export parameter", raw, settings.max_param_length)
        if key in _EXPORT_UNSUPPORTED:
            raise FhirError(400, f"export parameter '{key}' is not supported")
        if key not in _EXPORT_PARAMS:
            if is_lenient:
                continue
            raise FhirError(400, "unknown export parameter (supported: _type, _since, _outputFormat)")
        if key in values:
            raise FhirError(400, f"{key} may be given only once")
        values[key] = raw
    fmt = values.get("_outputFormat")
    if fmt is not None and fmt not in _NDJSON_FORMATS:
        raise FhirError(400, "_outputFormat must be application/fhir+ndjson")
    since = None
    if "_since" in values:
        rng = parse_date("_since", values["_since"])
        if rng.prefix != "eq":
            raise FhirError(400, "_since takes an instant without prefix")
        since = rng.low
    if "_type" in values:
        types = [t.strip() for t in values["_type"].split(",") if t.strip()]
        unknown = [t for t in types if t not in RESOURCE_TYPES]
        if unknown or not types:
            raise FhirError(400, f"_type: supported types are {', '.join(RESOURCE_TYPES)}")
        types = list(dict.fromkeys(types))
        for t in types:
            access.grant("search", t)
    else:
        types = [t for t in RESOURCE_TYPES if access.allows("search", t)]
        if not types:
            raise FhirError(403, "the access token allows no resource type")
    patients = {access.grant("search", t).patient_id for t in types}
    patient_id: str | None = None
    if patients != {None}:
        if not patient_level or len(patients) != 1:
            raise FhirError(403, "system-level export needs system/ or user/ scopes; use Patient/$export")
        patient_id = next(iter(patients))
    job = ExportJob(
        id=new_job_id(),
        owner=access.subject,
        request_url=_request_url(request, settings),
        types=types,
        since=since,
        patient_id=patient_id,
        patient_level=patient_level,
        requires_token=settings.auth_enabled,
    )
    exports.start(job)
    status_url = f"{base_url(request, settings)}/_bulk/status/{job.id}"
    return Response(status_code=202, headers={"Content-Location": status_url})


@router.get("/$export")
def system_export(
    request: Request, settings: SettingsDep, authenticator: AuthenticatorDep, exports: ExportsDep
) -> Response:
    return _kick_off(request, settings, authenticator, exports, patient_level=False)


@router.get("/Patient/$export")
def patient_export(
    request: Request, settings: SettingsDep, authenticator: AuthenticatorDep, exports: ExportsDep
) -> Response:
    return _kick_off(request, settings, authenticator, exports, patient_level=True)


@router.get("/_bulk/status/{job_id}")
def export_status(
    job_id: str, request: Request, settings: SettingsDep, authenticator: AuthenticatorDep, exports: ExportsDep
) -> Response:
    job = exports.get(job_id, authenticate(request, authenticator))
    if job.state == "running":
        return Response(status_code=202, headers={"X-Progress": job.progress, "Retry-After": "1"})
    if job.state == "error":
        raise FhirError(500, "the export failed")
    assert job.transaction_time is not None
    base = base_url(request, settings)
    manifest = {
        "transactionTime": job.transaction_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "request": job.request_url,
        "requiresAccessToken": job.requires_token,
        "output": [
            {"type": o["type"], "url": f"{base}/_bulk/files/{job.id}/{o['file']}", "count": o["count"]}
            for o in job.outputs
        ],
        "error": [],
    }
    expires = datetime.fromtimestamp(job.created + settings.export_retention_s, UTC)
    return JSONResponse(manifest, headers={"Expires": format_datetime(expires, usegmt=True)})


@router.delete("/_bulk/status/{job_id}")
def export_delete(job_id: str, request: Request, authenticator: AuthenticatorDep, exports: ExportsDep) -> Response:
    exports.delete(job_id, authenticate(request, authenticator))
    return Response(status_code=202)


@router.get("/_bulk/files/{job_id}/{name}")
def export_file(
    job_id: str, name: str, request: Request, authenticator: AuthenticatorDep, exports: ExportsDep
) -> Response:
    job = exports.get(job_id, authenticate(request, authenticator))
    if job.state != "done":
        raise FhirError(404, "the export is not complete")
    return FileResponse(exports.file_path(job, name), media_type="application/fhir+ndjson")
