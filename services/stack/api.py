"""The FHIR search API (``services/fhir_api``) as a local process, for ``clinie stack up`` and ``clinie demo``.

Runs ``python -m services.fhir_api`` with this interpreter on 127.0.0.1. Authentication is turned off by an
explicit setting, as the API allows only for local demos; production deploys it with JWT verification.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from services.stack.ports import LOOPBACK, free_port
from services.stack.process import ManagedProcess


class FhirApiServer(ManagedProcess):
    name = "fhir-api"
    default_start_timeout = 60.0
    default_stop_timeout = 10.0

    def __init__(self, workdir: Path, database_url: str | None = None, port: int | None = None) -> None:
        super().__init__(workdir)
        self.database_url = database_url  # set before launch when the database starts later
        self.port = port if port is not None else free_port()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "services.fhir_api"]

    def environment(self) -> Mapping[str, str]:
        if not self.database_url:
            raise self.error("no database URL set")
        return {
            **os.environ,
            "CLINIE_DATABASE_URL": self.database_url,
            "CLINIE_API_HOST": LOOPBACK,
            "CLINIE_API_PORT": str(self.port),
            "CLINIE_BASE_URL": self.url,
            "CLINIE_AUTH_ENABLED": "false",  # local stack only: explicit, never a default
            "CLINIE_EXPORT_DIR": str(self.workdir / "exports"),
        }

    def probe_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False
