"""Ports and the ManagedProcess base, with plain shell commands (no servers needed)."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import pytest

from services.stack.ports import free_port, port_open, wait_for_tcp
from services.stack.process import ManagedProcess, StackError, pid_alive


class Shell(ManagedProcess):
    name = "shell"
    default_start_timeout = 5.0
    default_stop_timeout = 5.0

    def __init__(self, workdir: Path, script: str, ready_port: int | None = None) -> None:
        super().__init__(workdir)
        self.script = script
        self.ready_port = ready_port

    def command(self) -> list[str]:
        return ["/bin/sh", "-c", self.script]

    def probe_ready(self) -> bool:
        return self.ready_port is None or port_open("127.0.0.1", self.ready_port)


def test_free_port_and_wait_for_tcp() -> None:
    port = free_port()
    assert 0 < port < 65536
    with pytest.raises(TimeoutError):
        wait_for_tcp("127.0.0.1", port, timeout=0.2)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", port))
        srv.listen()
        wait_for_tcp("127.0.0.1", port, timeout=2)


def test_early_exit_raises_with_log_tail(tmp_path: Path) -> None:
    proc = Shell(tmp_path, "echo 'cannot bind: boom' >&2; exit 3", ready_port=free_port())
    with pytest.raises(StackError, match="exited early with status 3") as info:
        proc.start()
    assert "cannot bind: boom" in info.value.log_tail
    assert "cannot bind: boom" in str(info.value)
    assert not proc.is_running


def test_not_ready_in_time_stops_the_process(tmp_path: Path) -> None:
    proc = Shell(tmp_path, "echo waiting; exec sleep 60", ready_port=free_port())
    with pytest.raises(StackError, match="not ready after"):
        proc.start(timeout=0.5)
    assert not proc.is_running and proc.pid is None


class ReadyFile(Shell):
    """Ready when the script has written ``ready`` (an explicit signal from the child, no sleeps)."""

    def probe_ready(self) -> bool:
        return (self.workdir / "ready").is_file()


def test_stop_escalates_to_sigkill_and_kills_the_group(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # ignores SIGTERM, and leaves a grandchild behind in its process group; it signals readiness only after the
    # trap is set and the grandchild's pid is written (mv makes the file appear complete)
    script = ("trap '' TERM; sleep 600 & echo $! > child.pid; mv child.pid ready; "
              "while true; do sleep 0.1; done")
    proc = ReadyFile(tmp_path, script)
    proc.start(timeout=120)  # generous: a loaded machine may take seconds to start a shell
    pid = proc.pid
    assert pid is not None and proc.is_running
    child = int((tmp_path / "ready").read_text())
    assert pid_alive(child)
    with caplog.at_level(logging.WARNING, logger="services.stack.process"):
        proc.stop(timeout=0.5)  # SIGTERM is ignored, so this always escalates to SIGKILL of the group
    assert "sending SIGKILL" in caplog.text
    assert not proc.is_running and proc.pid is None
    assert not pid_alive(pid)
    # stop() returns only once the group is gone (it waits for the SIGKILLed members, not a fixed time)
    assert not pid_alive(child)


def test_restart_runs_again(tmp_path: Path) -> None:
    proc = Shell(tmp_path, f"exec {sys.executable} -c 'import time; time.sleep(60)'")
    proc.start()
    first = proc.pid
    proc.restart()
    try:
        assert proc.is_running and proc.pid != first
        assert proc.log_path.read_text().count("starting:") == 2
    finally:
        proc.stop()
