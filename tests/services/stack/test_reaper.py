"""The stack's watchdog on plain processes (fast); tests/services/stack/test_hygiene.py runs it on the real stack."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from services.stack.process import wait_until
from services.stack.reaper import MARKER, marked_processes, new_stack_id, reap_orphans, spawn_watchdog, stop_marked


def _spawn(argv: list[str], stack_id: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if stack_id is not None:
        env[MARKER] = stack_id
    return subprocess.Popen(argv, env=env, start_new_session=True)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_orphans_of_a_killed_leader_are_reaped() -> None:
    sid = new_stack_id()
    leader = _spawn(["bash", "-c", "sleep 300 & wait"], sid)  # like tritonserver and its backend stub
    try:
        wait_until(lambda: len(list(marked_processes(sid))) == 2, 10, what="leader and child")
        child = next(p for p in marked_processes(sid) if p != leader.pid)
        assert reap_orphans(sid) == []  # the leader lives: nothing is an orphan
        leader.kill()
        leader.wait()
        assert reap_orphans(sid) == [child]
        wait_until(lambda: _gone(child), 10, what="the orphan to die")
    finally:
        stop_marked(sid, timeout=1)


def test_watchdog_stops_everything_when_its_owner_is_killed(tmp_path: Path) -> None:
    sid = new_stack_id()
    owner = _spawn(["sleep", "300"], None)
    server = _spawn(["sleep", "300"], sid)
    watchdog = spawn_watchdog(sid, tmp_path / "reaper.log", owner=owner.pid)
    try:
        wait_until(lambda: server.pid in set(marked_processes(sid)), 10, what="the server")
        assert watchdog.poll() is None
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert server.wait(30) is not None  # stopped by the watchdog
        assert watchdog.wait(30) == 0
    finally:
        for p in (owner, server, watchdog):
            if p.poll() is None:
                p.kill()
                p.wait()
