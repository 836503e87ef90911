"""SIGTERM to a running ``clinie demo`` / ``stack up`` runs the same clean-up as Ctrl-C (context managers exit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import contextlib, signal, sys, time
from pathlib import Path
import typer
from services.cli.main import _terminate_as_interrupt

# Ctrl-C as in a terminal: a test run started in the background (`make test &`, nohup) hands its children SIGINT
# ignored, and Python then never raises KeyboardInterrupt
signal.signal(signal.SIGINT, signal.default_int_handler)

marker = Path(sys.argv[1])

@contextlib.contextmanager
def stack():  # stands in for LocalStack: its __exit__ stops what was started
    try:
        yield
    finally:
        marker.write_text("stopped")

def main():
    with _terminate_as_interrupt():
        with stack():
            Path(sys.argv[2]).write_text("up")
            time.sleep(60)

try:
    main()
except typer.Exit as e:
    sys.exit(e.exit_code)
"""


def _run_and_signal(tmp_path: Path, sig: signal.Signals) -> tuple[int, str]:
    marker, ready = tmp_path / "stopped", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker), str(ready)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert marker.read_text() == "stopped"
    return proc.returncode, err


def test_sigterm_runs_the_cleanup(tmp_path: Path) -> None:
    code, err = _run_and_signal(tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and "terminated (SIGTERM)" in err and "Traceback" not in err


def test_ctrl_c_runs_the_same_cleanup(tmp_path: Path) -> None:
    code, err = _run_and_signal(tmp_path, signal.SIGINT)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
