"""Configuration of the FHIR query API (environment variables prefixed ``CLINIE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_FORBIDDEN_ALGORITHMS = {"none", "HS256", "HS384", "HS512"}


class ApiSettings(BaseSettings):
    """Settings of ``services.fhir_api``.

    Every field can be set from the environment, e.g. ``CLINIE_DATABASE_URL``, ``CLINIE_JWT_PUBLIC_KEY_FILE``.
    Authentication is on by default; turning it off needs an explicit ``CLINIE_AUTH_ENABLED=false``.
    """

    model_config = SettingsConfigDict(env_prefix="CLINIE_", extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/clinie"
    db_pool_size: int = Field(default=5, ge=1, le=100)
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Absolute base of the FHIR endpoint as clients see it (behind a proxy): used for fullUrl and paging links.
    # When empty, the base is taken from the request (scheme, Host header, root path).
    base_url: str | None = None

    auth_enabled: bool = True
    # One of: a PEM public key (text), a PEM file, a JWKS file, a JWKS URL.
    jwt_public_key: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"])
    jwt_leeway_s: int = Field(default=30, ge=0, le=600)

    default_page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    # Upper bound on resources added by _include/_revinclude to one page (a warning entry says when it was hit).
    max_include_size: int = Field(default=5_000, ge=1)
    # Longest accepted value of one search parameter (characters); longer values answer 400.
    max_param_length: int = Field(default=2_048, ge=16)

    export_dir: Path = Path("exports")
    export_max_concurrent: int = Field(default=2, ge=1)
    export_retention_s: int = Field(default=24 * 3600, ge=60)

    metrics_enabled: bool = True

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a in _FORBIDDEN_ALGORITHMS]
        if bad:
            raise ValueError(f"jwt_algorithms must be asymmetric (public-key) algorithms, not {bad}")
        if not value:
            raise ValueError("jwt_algorithms must not be empty")
        return value

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        if self.base_url is not None:
            self.base_url = self.base_url.rstrip("/") or None
        if self.auth_enabled:
            sources = [self.jwt_public_key, self.jwt_public_key_file, self.jwt_jwks_file, self.jwt_jwks_url]
            if sum(s is not None for s in sources) != 1:
                raise ValueError(
                    "auth_enabled needs exactly one of jwt_public_key, jwt_public_key_file, jwt_jwks_file, "
                    "jwt_jwks_url (set CLINIE_AUTH_ENABLED=false to run without authentication)"
                )
        return self
