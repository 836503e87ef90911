"""FastAPI application: read, search, bulk export, CapabilityStatement. Build it with ``create_app(settings)``.

The routes live in routers per area (``services.fhir_api.routers``); they get the settings, the engine, the
authenticator and the export manager through dependencies (``services.fhir_api.deps``) from ``app.state``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from clinie import __version__
from clinie.storage.db import make_engine as storage_engine
from services.fhir_api.auth import Authenticator
from services.fhir_api.errors import FHIR_JSON, FhirError, error_response
from services.fhir_api.export import ExportManager
from services.fhir_api.routers import export, operational, resources
from services.settings import ApiSettings

log = logging.getLogger("clinie.fhir_api")


def make_engine(settings: ApiSettings) -> Engine:
    """Pooled engine; sessions are read-only, bounded by a statement timeout, and without JIT (JIT compilation
    cost 20-30 ms on searches whose row estimate was pessimistic: more than the query itself)."""
    options = f"-c default_transaction_read_only=on -c statement_timeout={settings.statement_timeout_ms} -c jit=off"
    return storage_engine(
        settings.database_dsn,
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


def _add_error_handlers(app: FastAPI) -> None:
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


def create_app(settings: ApiSettings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. Nothing connects until the first request; ``engine`` may be shared (tests, benchmark)."""
    settings = settings or ApiSettings()
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
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = db
    app.state.authenticator = Authenticator(settings)
    app.state.exports = exports
    app.state.metrics = metrics

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

    _add_error_handlers(app)
    # fixed paths first: /{rtype} and /{rtype}/{rid} would match /metadata, /$export, /_bulk/...
    app.include_router(operational.router)
    if settings.metrics_enabled:
        app.include_router(operational.metrics_router)
    app.include_router(export.router)
    app.include_router(resources.router)
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
