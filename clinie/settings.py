"""Service settings (pydantic-settings, env prefix ``CLINIE_``). The library never reads these: services do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinie.model.repository import DEFAULT_MODEL_NAME, default_repository


def default_bind_host() -> str:
    """``0.0.0.0`` inside a Kubernetes pod (probes and scrapes come from outside), else loopback."""
    return "0.0.0.0" if os.environ.get("KUBERNETES_SERVICE_HOST") else "127.0.0.1"


class ExtractorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINIE_", env_file=".env", extra="ignore")

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    input_topic: str = "clinie.documentreference"
    dead_letter_topic: str = "clinie.documentreference.dlq"
    consumer_group: str = "clinie-extractor"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    # inference
    backend: Literal["triton", "torch"] = "triton"
    triton_url: str = "127.0.0.1:8000"
    triton_timeout_s: float = 60.0
    model_name: str = DEFAULT_MODEL_NAME
    model_version: str = Field(default="", description="Pinned model version; empty = the highest one served.")
    model_repository: Path = Field(default_factory=default_repository)
    # storage
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/clinie"
    # input limits and retries
    max_note_chars: int = 200_000
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    # Triton answers its health check but a note's request fails or times out: after this many attempts the note
    # is dead-lettered (E010). Triton being down is retried without limit.
    max_inference_attempts: int = Field(default=3, ge=1)
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
