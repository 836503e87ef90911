"""The whole local stack (Tansu + tritonserver + PostgreSQL), in-process or detached for the CLI.

In-process (demo, integration tests)::

    with LocalStack(workdir, model_repository) as stack:
        settings = stack.env()   # CLINIE_KAFKA_BOOTSTRAP_SERVERS, CLINIE_TRITON_URL, CLINIE_DATABASE_URL

Detached (``clinie stack up`` / ``down`` / ``status``): :func:`stack_up_detached` starts the servers,
leaves them running and records them in ``workdir/stack.json``; :func:`stack_down` stops what is named
there, from any later process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from clinie.storage.db import migrate
from services.stack.api import FhirApiServer
from services.stack.kafka import TansuBroker
from services.stack.ports import port_open
from services.stack.postgres import PostgresServer, postmaster_pid, stop_embedded
from services.stack.process import (
    ManagedProcess,
    StackError,
    pid_alive,
    process_executable,
    terminate_process_group,
)
from services.stack.reaper import MARKER, new_stack_id, spawn_watchdog, stop_marked
from services.stack.triton import TritonServer

logger = logging.getLogger(__name__)

STACK_FILE = "stack.json"


class LocalStack:
    """Tansu, tritonserver and PostgreSQL (embedded unless ``database_url`` is given) under ``workdir``.

    ``up()`` launches Triton first (the slow one, 2–8 s), starts PostgreSQL and Tansu while it loads,
    then waits for Triton. If anything fails, whatever was started is stopped again.

    Every process carries this stack's id, and a watchdog (``services.stack.reaper``) stops them all when the
    process that called ``up()`` dies without calling ``down()`` (kill -9, SIGTERM), and reaps orphans (Triton's
    backend stubs after tritonserver was killed) meanwhile. With ``keep_running`` it only reaps orphans.
    """

    def __init__(
        self,
        workdir: Path,
        model_repository: Path,
        database_url: str | None = None,
        *,
        keep_running: bool = False,
        triton_args: list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.kafka = TansuBroker(self.workdir / "kafka")
        self.triton = TritonServer(model_repository, self.workdir / "triton", extra_args=triton_args or [])
        self.postgres = PostgresServer(self.workdir / "postgres", database_url, keep_running=keep_running)
        self.api = FhirApiServer(self.workdir / "api")
        self.keep_running = keep_running
        self.stack_id = new_stack_id()
        for component in (self.kafka, self.triton, self.api):
            component.extra_env[MARKER] = self.stack_id
        self.watchdog: subprocess.Popen[bytes] | None = None

    def up(self, timeout: float = 120.0) -> None:
        """Start all three; return when every one answers (raises :class:`StackError` otherwise)."""
        started = time.monotonic()
        try:
            if self.watchdog is None or self.watchdog.poll() is not None:
                self.watchdog = spawn_watchdog(
                    self.stack_id, self.workdir / "reaper.log", owner=None if self.keep_running else os.getpid(),
                    pg_datadir=None if self.postgres.external else self.postgres.datadir)
            self.triton.launch()
            self.postgres.start()
            migrate(self.postgres.url)  # idempotent; the API and the extractor expect the schema
            self.api.database_url = self.postgres.url
            self.api.launch()
            self.kafka.start()
            self.api.wait_until_ready(max(self.api.default_start_timeout, timeout - (time.monotonic() - started)))
            self.triton.wait_until_ready(max(1.0, timeout - (time.monotonic() - started)))
        except BaseException:
            try:
                self.down()
            except StackError:
                logger.exception("cleaning up after a failed start")
            raise
        logger.info("local stack up in %.1fs: %s", time.monotonic() - started, self.env())

    def down(self) -> None:
        """Stop everything that runs (external PostgreSQL is left alone). Never raises for one failure."""
        errors: list[str] = []
        if self.watchdog is not None:  # first: it must not race us (it exits on SIGTERM without stopping anything)
            self.watchdog.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watchdog.wait(10)
            self.watchdog = None
        for component in (self.api, self.kafka, self.triton, self.postgres):
            try:
                component.stop()
            except Exception as exc:
                logger.exception("stopping %s failed", component.name)
                errors.append(f"{component.name}: {exc}")
        stop_marked(self.stack_id, timeout=5.0)  # anything a component left behind (e.g. a backend stub)
        if errors:
            raise StackError("stopping the local stack failed: " + "; ".join(errors))

    def env(self) -> dict[str, str]:
        """Settings for clinie services, as environment variables."""
        return {
            "CLINIE_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "CLINIE_TRITON_URL": self.triton.http_url,
            "CLINIE_DATABASE_URL": self.postgres.url,
            "CLINIE_FHIR_API_URL": self.api.url,
        }

    def describe(self) -> dict[str, Any]:
        """What runs where: pids, ports, URLs, log paths (the content of ``stack.json``)."""
        return {
            "workdir": str(self.workdir),
            "stack_id": self.stack_id,
            "watchdog_pid": self.watchdog.pid if self.watchdog is not None else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "env": self.env(),
            "kafka": _process_record(self.kafka, port=self.kafka.port, bootstrap_servers=self.kafka.bootstrap_servers),
            "triton": _process_record(
                self.triton,
                http_port=self.triton.http_port,
                grpc_port=self.triton.grpc_port,
                metrics_port=self.triton.metrics_port,
                http_url=self.triton.http_url,
                grpc_url=self.triton.grpc_url,
                metrics_url=self.triton.metrics_url,
                model_repository=str(self.triton.model_repository),
            ),
            "api": _process_record(self.api, port=self.api.port, url=self.api.url),
            "postgres": {
                "mode": "external" if self.postgres.external else "embedded",
                "pid": self.postgres.pid,
                "datadir": None if self.postgres.external else str(self.postgres.datadir),
                "log": None if self.postgres.log_path is None else str(self.postgres.log_path),
            },
        }

    def __enter__(self) -> Self:
        self.up()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()


def _process_record(proc: ManagedProcess, **extra: Any) -> dict[str, Any]:
    pid = proc.pid
    return {
        "pid": pid,
        "executable": process_executable(pid) if pid is not None else None,
        "log": str(proc.log_path),
        **extra,
    }


def _stack_file(workdir: Path) -> Path:
    return Path(workdir).resolve() / STACK_FILE


def read_stack_file(workdir: Path) -> dict[str, Any] | None:
    """The recorded detached stack, or ``None`` when there is none."""
    path = _stack_file(workdir)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"unreadable stack file {path}: {exc}") from exc
    return data


def _record_alive(record: dict[str, Any]) -> bool:
    """True when the recorded pid still runs the recorded executable (guards against pid reuse)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    expected = record.get("executable")
    actual = process_executable(pid)
    return expected is None or actual is None or actual == expected


def stack_up_detached(
    workdir: Path, model_repository: Path, database_url: str | None = None, timeout: float = 120.0
) -> dict[str, Any]:
    """Start the stack, leave it running after this process exits, write and return ``workdir/stack.json``."""
    workdir = Path(workdir).resolve()
    existing = read_stack_file(workdir)
    if existing is not None:
        status = stack_status(workdir) or {}
        if any(c["running"] and not c.get("external") for c in status.get("components", {}).values()):
            raise StackError(f"a stack already runs from {workdir}; run `clinie stack down` first")
        _stack_file(workdir).unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(workdir, model_repository, database_url, keep_running=True)
    stack.up(timeout)
    info = stack.describe()
    path = _stack_file(workdir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(path)
    stack.kafka.detach()
    stack.triton.detach()
    stack.api.detach()
    stack.watchdog = None  # keeps running: it reaps orphans until `clinie stack down`
    logger.info("local stack running in the background; details in %s", path)
    return info


def stack_down(workdir: Path, timeout: float = 30.0) -> None:
    """Stop every process recorded in ``workdir/stack.json`` (embedded PostgreSQL too); remove the file."""
    info = read_stack_file(workdir)
    if info is None:
        logger.info("no stack recorded in %s", workdir)
        return
    watchdog = info.get("watchdog_pid")
    if isinstance(watchdog, int) and pid_alive(watchdog):
        with contextlib.suppress(ProcessLookupError):
            os.kill(watchdog, signal.SIGTERM)
    for name in ("api", "kafka", "triton"):
        record = info.get(name) or {}
        if _record_alive(record):
            logger.info("stopping %s (pid %s)", name, record["pid"])
            terminate_process_group(int(record["pid"]), timeout)
    if info.get("stack_id"):  # what the leaders left behind, even when a leader itself was killed
        stop_marked(str(info["stack_id"]), timeout=5.0)
    postgres = info.get("postgres") or {}
    if postgres.get("mode") == "embedded" and postgres.get("datadir"):
        stop_embedded(Path(postgres["datadir"]), timeout)
    _stack_file(workdir).unlink(missing_ok=True)


def stack_status(workdir: Path) -> dict[str, Any] | None:
    """Recorded stack plus, per component, whether it runs and answers; ``None`` when nothing is recorded."""
    info = read_stack_file(workdir)
    if info is None:
        return None
    components: dict[str, dict[str, Any]] = {}
    kafka = info.get("kafka") or {}
    components["kafka"] = {
        "pid": kafka.get("pid"),
        "running": _record_alive(kafka),
        "answering": bool(kafka.get("port")) and port_open("127.0.0.1", int(kafka["port"])),
    }
    triton = info.get("triton") or {}
    components["triton"] = {
        "pid": triton.get("pid"),
        "running": _record_alive(triton),
        "answering": bool(triton.get("http_port")) and port_open("127.0.0.1", int(triton["http_port"])),
    }
    api = info.get("api") or {}
    components["api"] = {
        "pid": api.get("pid"),
        "running": _record_alive(api),
        "answering": bool(api.get("port")) and port_open("127.0.0.1", int(api["port"])),
    }
    postgres = info.get("postgres") or {}
    if postgres.get("mode") == "embedded" and postgres.get("datadir"):
        pid = postmaster_pid(Path(postgres["datadir"]))
        components["postgres"] = {"pid": pid, "running": pid is not None, "answering": pid is not None}
    else:
        components["postgres"] = {"pid": None, "running": True, "answering": None, "external": True}
    return {**info, "components": components}
