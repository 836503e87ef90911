"""FastAPI dependencies of the routers: settings, engine, authenticator and export manager (``app.state``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from services.fhir_api.auth import Access, Authenticator
from services.fhir_api.export import ExportManager
from services.settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_exports(request: Request) -> ExportManager:
    exports: ExportManager = request.app.state.exports
    return exports


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ExportsDep = Annotated[ExportManager, Depends(get_exports)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


def authenticate(request: Request, authenticator: Authenticator) -> Access:
    """The caller's access. Called inside the handlers (not as a dependency), so that a 404 for an unsupported
    resource type or a 400 for a malformed request still comes before a 401, as before."""
    return authenticator.authenticate(request.headers.get("authorization"))


def base_url(request: Request, settings: ApiSettings) -> str:
    return settings.base_url or str(request.base_url).rstrip("/")


def lenient(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().replace(" ", "") == "handling=lenient" for p in prefer.split(","))
