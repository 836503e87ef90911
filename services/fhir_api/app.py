"""FastAPI application: read, search, bulk export, CapabilityStatement. Build it with ``create_app(settings)``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinie.storage.db import make_engine as storage_engine
from services.fhir_api.auth import RESOURCE_TYPES, Access, Authenticator
from services.fhir_api.bundle import now_instant, resource_first, searchset
from services.fhir_api.capability import capability_statement
from services.fhir_api.errors import FHIR_JSON, FhirError, FhirJSONResponse, error_response
from services.fhir_api.export import ExportJob, ExportManager, new_job_id
from services.fhir_api.params import check_value, parse_date
from services.fhir_api.search import parse_search
from services.fhir_api.settings import ApiSettings
from services.fhir_api.store import Row, execute_search, read_resource

log = logging.getLogger("clinie.fhir_api")

_NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
_EXPORT_PARAMS = {"_type", "_since", "_outputFormat"}
_EXPORT_UNSUPPORTED = {"_typeFilter", "_elements", "patient", "includeAssociatedData"}


def make_engine(settings: ApiSettings) -> Engine:
    """Pooled engine; sessions are read-only, bounded by a statement timeout, and without JIT (JIT compilation
    cost 20-30 ms on searches whose row estimate was pessimistic: more than the query itself)."""
    options = f"-c default_transaction_read_only=on -c statement_timeout={settings.statement_timeout_ms} -c jit=off"
    return storage_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        connect_args={"options": options, "application_name": "clinie-fhir-api"},
    )


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "clinie_fhir_api_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "clinie_fhir_api_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def _lenient(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().replace(" ", "") == "handling=lenient" for p in prefer.split(","))


def create_app(settings: ApiSettings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. Nothing connects until the first request; ``engine`` may be shared (tests, benchmark)."""
    settings = settings or ApiSettings()
    authenticator = Authenticator(settings)
    db = engine or make_engine(settings)
    exports = ExportManager(db, settings.export_dir, settings.export_max_concurrent, settings.export_retention_s)
    metrics = _Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        exports.shutdown()
        if engine is None:
            db.dispose()

    app = FastAPI(
        title="clinie FHIR R4 query API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.exports = exports

    # -------------------------------------------------------------------------------------- plumbing

    def base_url(request: Request) -> str:
        return settings.base_url or str(request.base_url).rstrip("/")

    def authenticate(request: Request) -> Access:
        return authenticator.authenticate(request.headers.get("authorization"))

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(request.scope.get("route"), "path", "unmatched")
            if settings.metrics_enabled:
                metrics.requests.labels(request.method, route, str(status)).inc()
                metrics.latency.labels(request.method, route).observe(elapsed)
            # the route template only: never ids or query values (PHI)
            log.info("%s %s -> %d (%.1f ms)", request.method, route, status, elapsed * 1000)

    @app.exception_handler(FhirError)
    async def on_fhir_error(_: Request, exc: FhirError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            msg = "this interaction is not supported (the API is read-only)"
        elif exc.status_code == 404:
            msg = "not found"
        else:
            msg = "request not accepted"
        return error_response(FhirError(exc.status_code, msg, headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(FhirError(400, "malformed request"))

    @app.exception_handler(DataError)
    async def on_data_error(_: Request, exc: DataError) -> Response:
        log.warning("database rejected a parameter value: %s", type(exc.orig).__name__)
        return error_response(FhirError(400, "a parameter value is not valid"))

    @app.exception_handler(OperationalError)
    async def on_db_unavailable(_: Request, exc: OperationalError) -> Response:
        log.error("database error: %s", type(exc.orig).__name__)
        return error_response(FhirError(503, "the database is unavailable or the query took too long"))

    @app.exception_handler(SQLAlchemyError)
    async def on_db_error(_: Request, exc: SQLAlchemyError) -> Response:
        log.error("database error: %s", type(exc).__name__)
        return error_response(FhirError(500, "internal error"))

    @app.exception_handler(Exception)
    async def on_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled error: %s", type(exc).__name__)
        return error_response(FhirError(500, "internal error"))

    def check_type(rtype: str) -> None:
        if rtype not in RESOURCE_TYPES:
            raise FhirError(404, f"resource type not supported (supported: {', '.join(RESOURCE_TYPES)})")

    # -------------------------------------------------------------------------------------- operational

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        try:
            with db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    if settings.metrics_enabled:

        @app.get("/metrics", include_in_schema=False)
        def prometheus() -> Response:
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/metadata")
    def metadata(request: Request) -> Response:
        body = capability_statement(base_url(request), settings.auth_enabled, now_instant())
        return FhirJSONResponse(body)

    # -------------------------------------------------------------------------------------- bulk export

    def kick_off(request: Request, patient_level: bool) -> Response:
        access = authenticate(request)
        if "respond-async" not in request.headers.get("prefer", ""):
            raise FhirError(400, "bulk export needs the header 'Prefer: respond-async'")
        if access.auth_enabled and access.subject is None:
            raise FhirError(403, "bulk export needs a token with a 'sub' or 'client_id' claim")
        lenient = _lenient(request)
        items = list(request.query_params.multi_items())
        values: dict[str, str] = {}
        for key, raw in items:
            check_value("export parameter", key, 256)
            check_value("export parameter", raw, settings.max_param_length)
            if key in _EXPORT_UNSUPPORTED:
                raise FhirError(400, f"export parameter '{key}' is not supported")
            if key not in _EXPORT_PARAMS:
                if lenient:
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
            request_url=request_url(request),
            types=types,
            since=since,
            patient_id=patient_id,
            patient_level=patient_level,
            requires_token=settings.auth_enabled,
        )
        exports.start(job)
        status_url = f"{base_url(request)}/_bulk/status/{job.id}"
        return Response(status_code=202, headers={"Content-Location": status_url})

    def request_url(request: Request) -> str:
        query = urlencode(list(request.query_params.multi_items()))
        path = request.url.path
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return f"{base_url(request)}{path}" + (f"?{query}" if query else "")

    @app.get("/$export")
    def system_export(request: Request) -> Response:
        return kick_off(request, patient_level=False)

    @app.get("/Patient/$export")
    def patient_export(request: Request) -> Response:
        return kick_off(request, patient_level=True)

    @app.get("/_bulk/status/{job_id}")
    def export_status(job_id: str, request: Request) -> Response:
        access = authenticate(request)
        job = exports.get(job_id, access.subject)
        if job.state == "running":
            return Response(status_code=202, headers={"X-Progress": job.progress, "Retry-After": "1"})
        if job.state == "error":
            raise FhirError(500, "the export failed")
        assert job.transaction_time is not None
        base = base_url(request)
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
        return JSONResponse(
            manifest,
            headers={
                "Expires": format_datetime(
                    datetime.fromtimestamp(job.created + settings.export_retention_s, UTC), usegmt=True
                )
            },
        )

    @app.delete("/_bulk/status/{job_id}")
    def export_delete(job_id: str, request: Request) -> Response:
        access = authenticate(request)
        exports.delete(job_id, access.subject)
        return Response(status_code=202)

    @app.get("/_bulk/files/{job_id}/{name}")
    def export_file(job_id: str, name: str, request: Request) -> Response:
        access = authenticate(request)
        job = exports.get(job_id, access.subject)
        if job.state != "done":
            raise FhirError(404, "the export is not complete")
        path = exports.file_path(job, name)
        return FileResponse(path, media_type="application/fhir+ndjson")

    # -------------------------------------------------------------------------------------- search & read

    def do_search(request: Request, rtype: str, items: list[tuple[str, str]]) -> Response:
        check_type(rtype)
        access = authenticate(request)
        grant = access.grant("search", rtype)
        req = parse_search(
            rtype,
            items,
            grant,
            default_count=settings.default_page_size,
            max_count=settings.max_page_size,
            max_length=settings.max_param_length,
            lenient=_lenient(request),
        )
        with db.connect() as conn:
            result = execute_search(conn, req, access, settings.max_include_size)
        log.debug("search %s params=%s matches=%d", rtype, ",".join(req.used_params), len(result.matches))
        return FhirJSONResponse(searchset(base_url(request), req, result))

    @app.get("/{rtype}")
    def search_get(rtype: str, request: Request) -> Response:
        return do_search(request, rtype, list(request.query_params.multi_items()))

    @app.post("/{rtype}/_search")
    async def search_post(rtype: str, request: Request) -> Response:
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
        return await run_in_threadpool(do_search, request, rtype, items)

    def read(request: Request, rtype: str, rid: str) -> Row:
        check_type(rtype)
        access = authenticate(request)
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

    def resource_response(row: Row) -> Response:
        headers = {}
        if row.version_id is not None:
            headers["ETag"] = f'W/"{row.version_id}"'
        if row.last_updated is not None:
            headers["Last-Modified"] = format_datetime(row.last_updated.astimezone(UTC), usegmt=True)
        return FhirJSONResponse(resource_first(row.resource), headers=headers)

    @app.get("/{rtype}/{rid}")
    def read_get(rtype: str, rid: str, request: Request) -> Response:
        row = read(request, rtype, rid)
        return resource_response(row)

    @app.get("/{rtype}/{rid}/_history/{vid}")
    def vread(rtype: str, rid: str, vid: str, request: Request) -> Response:
        row = read(request, rtype, rid)
        if str(row.version_id) != vid:
            raise FhirError(404, "only the current version of a resource is kept")
        return resource_response(row)

    return app


def app_from_env() -> FastAPI:
    """ASGI factory for ``uvicorn --factory services.fhir_api.app:app_from_env`` (settings from CLINIE_*)."""
    return create_app(ApiSettings())


def run(settings: ApiSettings | None = None) -> None:
    """Serve the API with uvicorn on ``api_host:api_port``."""
    import uvicorn

    settings = settings or ApiSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, access_log=False)


__all__ = ["FHIR_JSON", "app_from_env", "create_app", "make_engine", "run"]
