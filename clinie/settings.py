"""Service settings (pydantic-settings, env prefix ``CLINIE_``). The library never reads these: services do."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinie.model.repository import DEFAULT_MODEL_NAME, default_repository


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
    # observability
    metrics_port: int = 9464
    log_level: str = "INFO"
