"""Read (``/{type}/{id}``, vread) and search (``GET /{type}``, ``POST /{type}/_search``)."""

from __future__ import annotations

import logging
from datetime import UTC
from email.utils import format_datetime
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from clinie.fhir.search import RESOURCE_TYPES
from services.fhir_api.auth import Authenticator
from services.fhir_api.bundle import resource_first, searchset
from services.fhir_api.deps import AuthenticatorDep, EngineDep, SettingsDep, authenticate, base_url, lenient
from services.fhir_api.errors import FhirError, FhirJSONResponse
from services.fhir_api.request import parse_search
from services.fhir_api.store import Row, execute_search, read_resource
from services.settings import ApiSettings

log = logging.getLogger("clinie.fhir_api")
router = APIRouter()


def _check_type(rtype: str) -> None:
    if rtype not in RESOURCE_TYPES:
        raise FhirError(404, f"resource type not supported (supported: {', '.join(RESOURCE_TYPES)})")


def _search(
    request: Request,
    settings: ApiSettings,
    db: Engine,
    authenticator: Authenticator,
    rtype: str,
    items: list[tuple[str, str]],
) -> Response:
    _check_type(rtype)
    access = authenticate(request, authenticator)
    grant = access.grant("search", rtype)
    req = parse_search(
        rtype,
        items,
        grant,
        default_count=settings.default_page_size,
        max_count=settings.max_page_size,
        max_length=settings.max_param_length,
        lenient=lenient(request),
    )
    with db.connect() as conn:
        result = execute_search(conn, req, access, settings.max_include_size)
    log.debug("search %s params=%s matches=%d", rtype, ",".join(req.used_params), len(result.matches))
    return FhirJSONResponse(searchset(base_url(request, settings), req, result))


@router.get("/{rtype}")
def search_get(
    rtype: str, request: Request, settings: SettingsDep, db: EngineDep, authenticator: AuthenticatorDep
) -> Response:
    return _search(request, settings, db, authenticator, rtype, list(request.query_params.multi_items()))


@router.post("/{rtype}/_search")
async def search_post(
    rtype: str, request: Request, settings: SettingsDep, db: EngineDep, authenticator: AuthenticatorDep
) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    items = list(request.query_params.multi_items())
    if body:
        if ctype != "application/x-www-form-urlencoded":
            raise FhirError(415, "POST _search takes application/x-www-form-urlencoded parameters")
        try:
            items += parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise FhirError(400, "the form body is not UTF-8") from exc
    return await run_in_threadpool(_search, request, settings, db, authenticator, rtype, items)


def _read(request: Request, db: Engine, authenticator: Authenticator, rtype: str, rid: str) -> Row:
    _check_type(rtype)
    access = authenticate(request, authenticator)
    grant = access.grant("read", rtype)
    if len(rid) > 128:
        raise FhirError(404, f"{rtype} not found")
    with db.connect() as conn:
        row = read_resource(conn, rtype, rid)
    if row is None:
        raise FhirError(404, f"{rtype} not found")
    if grant.patient_id is not None:
        owner = row.id if rtype == "Patient" else row.patient_id
        if owner != grant.patient_id:
            raise FhirError(403, "the resource belongs to another patient than the token's")
    return row


def _resource_response(row: Row) -> Response:
    headers = {}
    if row.version_id is not None:
        headers["ETag"] = f'W/"{row.version_id}"'
    if row.last_updated is not None:
        headers["Last-Modified"] = format_datetime(row.last_updated.astimezone(UTC), usegmt=True)
    return FhirJSONResponse(resource_first(row.resource), headers=headers)


@router.get("/{rtype}/{rid}")
def read_get(rtype: str, rid: str, request: Request, db: EngineDep, authenticator: AuthenticatorDep) -> Response:
    return _resource_response(_read(request, db, authenticator, rtype, rid))


@router.get("/{rtype}/{rid}/_history/{vid}")
def vread(
    rtype: str, rid: str, vid: str, request: Request, db: EngineDep, authenticator: AuthenticatorDep
) -> Response:
    row = _read(request, db, authenticator, rtype, rid)
    if str(row.version_id) != vid:
        raise FhirError(404, "only the current version of a resource is kept")
    return _resource_response(row)
