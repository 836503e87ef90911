"""``/healthz``, ``/metrics`` and ``/metadata`` (the CapabilityStatement)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.fhir_api.bundle import now_instant
from services.fhir_api.capability import capability_statement
from services.fhir_api.deps import EngineDep, SettingsDep, base_url
from services.fhir_api.errors import FhirJSONResponse

router = APIRouter()
metrics_router = APIRouter()


@router.get("/healthz", include_in_schema=False)
def healthz(db: EngineDep) -> Response:
    try:
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@metrics_router.get("/metrics", include_in_schema=False)
def prometheus(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/metadata")
def metadata(request: Request, settings: SettingsDep) -> Response:
    body = capability_statement(base_url(request, settings), settings.auth_enabled, now_instant())
    return FhirJSONResponse(body)
