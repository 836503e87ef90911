"""Nothing the stack starts outlives its owner: a stack id on every process, and a watchdog that reaps by it.

Every server a :class:`~services.stack.local.LocalStack` launches carries ``CLINIE_STACK_ID=<id>`` in its
environment, and whatever those servers spawn inherits it (Triton's Python-backend stubs). A small watchdog process
(``python -m services.stack.reaper``, its own session, so the signal that kills the owner's group misses it) polls
once a second and:

* kills every marked process whose session leader is gone: after ``kill -9`` of tritonserver its stubs (≈ 600 MB
  each) would otherwise run on as orphans that nothing can reach;
* when the owner (the Python process that started the stack: ``clinie demo``, a test, a benchmark) is gone, however
  it died (``kill -9``, SIGTERM from ``timeout``, a crash), stops every marked process (SIGTERM, then SIGKILL) and
  the embedded PostgreSQL, then exits.

Without an owner (``clinie stack up``), the watchdog only reaps orphans; ``clinie stack down`` stops it. A
``PR_SET_PDEATHSIG`` would not do: it fires when the *thread* that forked exits (servers are restarted from worker
threads) and is not inherited by the servers' own children. Process identity is checked by start time, so a reused
pid is never mistaken for the owner; processes are found by their marker, never by name.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

MARKER = "CLINIE_STACK_ID"
POLL_S = 1.0


def new_stack_id() -> str:
    return uuid.uuid4().hex


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()  # fields from 3 (state) on; the name may contain spaces/parens


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22), ``None`` if gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def session_id(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[3]) if fields is not None and len(fields) > 3 else None


def _alive(pid: int, started: int | None = None) -> bool:
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or (len(fields) > 19 and int(fields[19]) == started)


def marked_processes(stack_id: str) -> Iterator[int]:
    """Pids whose environment carries ``CLINIE_STACK_ID=<stack_id>`` (not this process)."""
    needle = f"{MARKER}={stack_id}".encode()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and _alive(int(entry.name)):
            yield int(entry.name)


def reap_orphans(stack_id: str) -> list[int]:
    """SIGKILL marked processes whose session leader has exited (e.g. Triton's stubs); returns their pids."""
    killed = []
    for pid in marked_processes(stack_id):
        sid = session_id(pid)
        if sid is not None and sid != pid and not _alive(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    if killed:
        logger.warning("killed %d orphaned process(es) of stack %s: %s", len(killed), stack_id, killed)
    return killed


def stop_marked(stack_id: str, timeout: float = 20.0) -> None:
    """SIGTERM every marked process, wait up to ``timeout`` s, then SIGKILL what is left."""
    pids = list(marked_processes(stack_id))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in marked_processes(stack_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def watch(stack_id: str, owner: int | None, owner_started: int | None, pg_datadir: Path | None) -> None:
    """The watchdog loop (see the module docstring). Returns on SIGTERM/SIGINT without stopping anything."""
    stop = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    seen_any = False
    while not stop:
        reap_orphans(stack_id)
        if owner is not None and not _alive(owner, owner_started):
            logger.warning("owner %d of stack %s is gone: stopping what it started", owner, stack_id)
            stop_marked(stack_id)
            if pg_datadir is not None:
                from services.stack.postgres import stop_embedded

                try:
                    stop_embedded(pg_datadir)
                except Exception:
                    logger.exception("stopping the embedded PostgreSQL on %s failed", pg_datadir)
            return
        if owner is None:  # detached stack: leave once everything it watched is gone
            alive = any(True for _ in marked_processes(stack_id))
            if seen_any and not alive:
                return
            seen_any = seen_any or alive
        time.sleep(POLL_S)


def spawn_watchdog(stack_id: str, log_path: Path, owner: int | None = None,
                   pg_datadir: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the watchdog for ``stack_id`` in its own session; ``owner`` defaults to no owner (detached)."""
    argv = [sys.executable, "-m", "services.stack.reaper", "--stack-id", stack_id]
    if owner is not None:
        argv += ["--owner", str(owner), "--owner-started", str(start_time(owner) or 0)]
    if pg_datadir is not None:
        argv += ["--pg-datadir", str(pg_datadir)]
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack-id", required=True)
    parser.add_argument("--owner", type=int)
    parser.add_argument("--owner-started", type=int)
    parser.add_argument("--pg-datadir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s reaper %(levelname)s %(message)s")
    watch(args.stack_id, args.owner, args.owner_started or None, args.pg_datadir)


if __name__ == "__main__":
    main()
