"""All service settings, one pydantic-settings tree (env prefix ``CLINIE_``). The library never reads these: the
services and the command line do, and pass explicit arguments to the library.

``ServiceSettings`` holds what both services share (the database); ``ExtractorSettings`` and ``ApiSettings`` add their
own. Secrets are ``SecretStr``: they print as ``**********``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinie.model.repository import DEFAULT_MODEL_NAME, default_repository

KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
_SSL_FILES = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
_TRITON_SSL_FILES = ("triton_ssl_ca_file", "triton_ssl_cert_file", "triton_ssl_key_file")
_FORBIDDEN_ALGORITHMS = {"none", "HS256", "HS384", "HS512"}


def default_bind_host() -> str:
    """``0.0.0.0`` inside a Kubernetes pod (probes and scrapes come from outside), else loopback."""
    return "0.0.0.0" if os.environ.get("KUBERNETES_SERVICE_HOST") else "127.0.0.1"


class ServiceSettings(BaseSettings):
    """Settings both services read."""

    model_config = SettingsConfigDict(env_prefix="CLINIE_", env_file=".env", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/clinie"),
        description="SQLAlchemy URL of the PostgreSQL database (may hold a password: kept secret).")

    @property
    def database_dsn(self) -> str:
        """The database URL in clear, for the engine; never log it."""
        return self.database_url.get_secret_value()


class ExtractorSettings(ServiceSettings):
    """Settings of ``services.extractor`` (and ``clinie demo``)."""

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    input_topic: str = "clinie.documentreference"
    dead_letter_topic: str = "clinie.documentreference.dlq"
    consumer_group: str = "clinie-extractor"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_security_protocol: KafkaProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS).")
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (needs a SASL_* protocol).")
    kafka_sasl_username: str | None = Field(default=None, description="User for PLAIN and SCRAM.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="Password for PLAIN and SCRAM.")
    kafka_sasl_oauth_token_file: Path | None = Field(
        default=None, description="OAUTHBEARER: file holding the access token, re-read at each (re)connect.")
    kafka_ssl_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the brokers' certificates (default: system CAs).")
    kafka_ssl_cert_file: Path | None = Field(default=None, description="PEM client certificate (mutual TLS).")
    kafka_ssl_key_file: Path | None = Field(default=None, description="PEM private key of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(default=None, description="Password of the encrypted key.")
    kafka_ssl_check_hostname: bool = Field(default=True, description="Check the broker host name in its certificate.")
    terminology_index: Path | None = Field(
        default=None, description="RxNorm / SNOMED CT index made by `clinie terminology build --rxnorm/--snomed` "
        "from your licensed release files (adds their codes; none by default).")
    dense_index: Path | None = Field(
        default=None, description="Dense ICD-10-CM index made by `clinie terminology build --dense` "
        "(terminology/icd10cm-dense-v1.npz): dense + lexical retrieval re-ranked with the sentence; off by default.")
    forms_index: Path | None = Field(
        default=None, description="Curated condition-form index made by `clinie terminology build --forms` "
        "(terminology/condition-forms-v1.npz); without it the index is built at start-up (~20 s on 2 CPU cores).")
    nearest_form: bool = Field(
        default=True, description="Code a condition mention no curated form matches exactly by its nearest curated "
        "form (MiniLM cosine >= 0.7); off: lexical retrieval over ICD-10-CM terms only.")
    # inference
    backend: Literal["triton", "torch"] = "triton"
    triton_url: str = Field(default="127.0.0.1:8000",
                            description="host:port of Triton's HTTP (default 8000) or gRPC (default 8001) endpoint.")
    triton_protocol: Literal["http", "grpc"] = Field(default="http", description="Transport to Triton: http or grpc.")
    triton_timeout_s: float = 60.0
    triton_ssl: bool = Field(default=False, description="TLS to Triton (https for http; a secure channel for grpc).")
    triton_ssl_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed Triton's certificate (default: system CAs).")
    triton_ssl_cert_file: Path | None = Field(default=None, description="PEM client certificate (mutual TLS).")
    triton_ssl_key_file: Path | None = Field(default=None, description="PEM private key of the client certificate.")
    model_name: str = DEFAULT_MODEL_NAME
    model_version: str = Field(default="", description="Pinned model version; empty = the highest one served.")
    model_repository: Path = Field(default_factory=default_repository)
    # input limits and retries
    max_note_chars: int = 200_000
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    # Triton answers its health check but a note's request fails or times out: after this many attempts the note
    # is dead-lettered (E010). Triton being down is retried without limit.
    max_inference_attempts: int = Field(default=3, ge=1)
    max_in_flight: int = Field(
        default=4, ge=1, le=256,
        description="Notes one extractor processes at once (inference and storage in a thread pool); offsets are "
                    "still committed in order, only after storage.")
    shutdown_timeout_s: float = Field(
        default=90.0, gt=0,
        description="On stop, how long to wait for the notes already in inference or storage before leaving them "
                    "uncommitted (they are redelivered).")
    # dead-letter topic: the producer takes messages up to this size (as large as any input the parser accepts);
    # when the broker still refuses one, a truncated copy (first dead_letter_truncate_bytes) is written instead,
    # with the original's size and sha256 in the headers
    kafka_max_request_bytes: int = 16 * 1024 * 1024
    dead_letter_truncate_bytes: int = 64 * 1024
    # observability
    metrics_host: str = Field(default_factory=lambda: default_bind_host(),
                              description="Bind address of /metrics, /healthz, /readyz: loopback unless in a pod.")
    metrics_port: int = 9464
    log_level: str = "INFO"
    # TEST ONLY (fault injection, benchmarks/faults): exit at once (os._exit) after the Nth note of this process
    # is committed in PostgreSQL, before its Kafka offset is committed. 0 (the default) = off. Never set in a deploy.
    fault_kill_after_commit: int = Field(
        default=0, ge=0, description="Test only: os._exit after the Nth stored note, before its offset commit; 0: off.",
    )

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper()
            if value.startswith("SCRAM"):
                value = value.replace("_", "-")
            return value or None
        return value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> ExtractorSettings:
        proto, mech = self.kafka_security_protocol, self.kafka_sasl_mechanism
        if proto.startswith("SASL_") and mech is None:
            raise ValueError(f"kafka_security_protocol {proto} needs kafka_sasl_mechanism "
                             "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)")
        if mech is not None and not proto.startswith("SASL_"):
            raise ValueError(f"kafka_sasl_mechanism {mech} needs kafka_security_protocol SASL_SSL (or SASL_PLAINTEXT), "
                             f"not {proto}")
        if mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_sasl_mechanism {mech} needs kafka_sasl_username and kafka_sasl_password")
        if mech == "OAUTHBEARER" and self.kafka_sasl_oauth_token_file is None:
            raise ValueError("kafka_sasl_mechanism OAUTHBEARER needs kafka_sasl_oauth_token_file")
        if mech == "OAUTHBEARER" and not Path(str(self.kafka_sasl_oauth_token_file)).is_file():
            raise ValueError(f"kafka_sasl_oauth_token_file: no such file: {self.kafka_sasl_oauth_token_file}")
        uses_tls = proto in ("SSL", "SASL_SSL")
        for name in _SSL_FILES:
            path = getattr(self, name)
            if path is None:
                continue
            if not uses_tls:
                raise ValueError(f"{name} is set but kafka_security_protocol is {proto}: use SSL or SASL_SSL")
            if not Path(path).is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if self.kafka_ssl_key_file is not None and self.kafka_ssl_cert_file is None:
            raise ValueError("kafka_ssl_key_file needs kafka_ssl_cert_file")
        return self

    @field_validator("triton_protocol", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_triton_tls(self) -> ExtractorSettings:
        for name in _TRITON_SSL_FILES:
            path = getattr(self, name)
            if path is None:
                continue
            if not self.triton_ssl:
                raise ValueError(f"{name} is set but triton_ssl is false: set CLINIE_TRITON_SSL=true")
            if not Path(path).is_file():
                raise ValueError(f"{name}: no such file: {path}")
        if (self.triton_ssl_key_file is None) != (self.triton_ssl_cert_file is None):
            raise ValueError("triton_ssl_cert_file and triton_ssl_key_file go together (mutual TLS)")
        return self

class ApiSettings(ServiceSettings):
    """Settings of ``services.fhir_api``.

    Every field can be set from the environment, e.g. ``CLINIE_DATABASE_URL``, ``CLINIE_JWT_PUBLIC_KEY_FILE``.
    Authentication is on by default; turning it off needs an explicit ``CLINIE_AUTH_ENABLED=false``.
    """

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
