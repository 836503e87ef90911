"""The table of every ``CLINIE_*`` setting in docs/operations.md, generated from the pydantic settings classes.

``python -m services.settings_table`` prints the table; ``--write`` replaces it in docs/operations.md (between the
``settings-table`` markers). A test fails when the table in the docs differs from what this generates.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from services.settings import ApiSettings, ExtractorSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"

# meanings of settings whose class has no Field(description=...)
MEANING: dict[str, str] = {
    "kafka_bootstrap_servers": "Kafka bootstrap servers, comma-separated host:port.",
    "input_topic": "Topic the extractor reads DocumentReferences from.",
    "dead_letter_topic": "Topic for messages that can never be processed (payload + reason headers).",
    "consumer_group": "Kafka consumer group of the extractor replicas.",
    "kafka_session_timeout_ms": "Consumer session timeout.",
    "kafka_heartbeat_interval_ms": "Consumer heartbeat interval.",
    "backend": "Inference backend: triton (production) or torch (in-process, CPU).",
    "triton_url": "Triton HTTP endpoint host:port.",
    "triton_timeout_s": "Timeout of one Triton request; a timeout is retried.",
    "model_name": "Model name in the Triton model repository.",
    "model_repository": "Local copy of the model repository (tokenizer, label map and window settings per version).",
    "database_url": "PostgreSQL URL (SQLAlchemy form, psycopg 3 driver is chosen for postgresql://).",
    "max_note_chars": "Longest note accepted; longer ones are dead-lettered (E007).",
    "retry_initial_s": "First wait before retrying a transient failure (doubles each time).",
    "retry_max_s": "Longest wait between retries.",
    "max_inference_attempts": "Attempts at one note while Triton is healthy but the request fails or times out; "
                              "then the note is dead-lettered (E010). Triton being down is retried without limit.",
    "kafka_max_request_bytes": "Largest message the dead-letter producer sends (as large as any accepted input).",
    "dead_letter_truncate_bytes": "When the broker still refuses a dead letter, a copy truncated to this many bytes "
                                  "is written, with the original's size and sha256 in the headers.",
    "metrics_port": "Port of /healthz, /readyz and /metrics.",
    "log_level": "Log level (JSON lines; never note text).",
    "db_pool_size": "Database connection pool size.",
    "statement_timeout_ms": "PostgreSQL statement timeout of API queries.",
    "api_host": "Address the API listens on.",
    "api_port": "Port the API listens on.",
    "base_url": "Public base URL of the FHIR endpoint (behind a proxy) for fullUrl and paging links; empty: "
                "from the request.",
    "auth_enabled": "Require a bearer JWT (on by default; false only for local use).",
    "jwt_public_key": "PEM public key (text) that verifies tokens.",
    "jwt_public_key_file": "PEM public key file that verifies tokens.",
    "jwt_jwks_file": "JWKS file with the verification keys.",
    "jwt_jwks_url": "JWKS URL with the verification keys.",
    "jwt_audience": "Required token audience (aud).",
    "jwt_issuer": "Required token issuer (iss).",
    "jwt_algorithms": "Accepted asymmetric JWT algorithms (JSON list).",
    "jwt_leeway_s": "Clock skew tolerated when checking exp/nbf.",
    "default_page_size": "Search page size when _count is not given.",
    "max_page_size": "Largest _count accepted.",
    "max_include_size": "Most resources _include/_revinclude add to one page.",
    "max_param_length": "Longest accepted value of one search parameter (characters).",
    "export_dir": "Where $export writes its NDJSON files.",
    "export_max_concurrent": "Concurrent $export jobs.",
    "export_retention_s": "How long finished $export files are kept.",
    "metrics_enabled": "Serve Prometheus /metrics.",
}


def _type(field: FieldInfo) -> str:
    ann = field.annotation
    text = getattr(ann, "__name__", None) if ann is not None and not hasattr(ann, "__args__") else None
    if text is None:
        text = str(ann).replace("typing.", "")
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional["):-1] + " | None".replace("pathlib.", "").replace("pydantic.types.", "")
        text = text.replace("NoneType", "None")
    return text.replace("|", "\\|")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)" if field.default_factory.__name__ != "<lambda>" else f"`{field.default_factory()}`"  # type: ignore[call-arg]
    value: Any = field.default
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return ""
    if value == "":
        return "(empty)"
    return f"`{value}`"


def _meaning(name: str, field: FieldInfo) -> str:
    meaning = field.description or MEANING.get(name)
    if not meaning:
        raise KeyError(f"setting {name} has no meaning: add Field(description=...) or an entry in MEANING")
    return meaning.replace("|", "\\|")


def settings_table(classes: dict[str, type[BaseSettings]] | None = None) -> str:
    """Markdown table: one row per environment variable, with the services that read it."""
    classes = classes or {"extractor": ExtractorSettings, "api": ApiSettings}
    rows: dict[str, tuple[list[str], str, str, str]] = {}
    for service, cls in classes.items():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            env = (prefix + name).upper()
            if env in rows:
                rows[env][0].append(service)
                continue
            rows[env] = ([service], _type(field), _default(field), _meaning(name, field))
    lines = ["| variable | service | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for env in sorted(rows):
        services, typ, default, meaning = rows[env]
        lines.append(f"| `{env}` | {', '.join(services)} | {typ} | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def documented_table(doc: Path = DOC) -> str:
    text = doc.read_text(encoding="utf-8")
    return text[text.index(START) + len(START):text.index(END)].strip("\n") + "\n"


def write(doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{settings_table()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        write()
    else:
        sys.stdout.write(settings_table())
