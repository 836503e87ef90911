"""A kill between the database commit and the offset commit loses nothing and duplicates nothing (issue 12).

The extractor runs as its own process (``clinie serve extractor``) with the test-only fault injection
``CLINIE_FAULT_KILL_AFTER_COMMIT=3``: it stores the third note in PostgreSQL and exits (``os._exit``) before that
note's offset is committed. The group's committed offset is then 2; a restarted extractor gets the third note again,
stores it idempotently, and every note ends with exactly one source document and one Provenance."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clinie.storage.db import make_engine
from clinie.storage.models import FhirResource, SourceDocument
from services.extractor.app import FAULT_EXIT_CODE
from services.stack.kafka import TansuBroker, acreate_topics
from services.stack.ports import free_port
from services.stack.triton import TritonServer
from tests.services.stack.kafka_client import committed

from .conftest import NOTE, docref
from .test_integration import publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[3]
N_NOTES, KILL_AFTER = 6, 3


def stored(database: str, ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(doc id -> source_documents rows, doc id -> Provenance rows) for ``ids``."""
    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            docs = conn.execute(select(SourceDocument.id, func.count()).where(SourceDocument.id.in_(ids))
                                .group_by(SourceDocument.id)).all()
            provs = conn.execute(select(FhirResource.source_document_id, func.count()).where(
                FhirResource.resource_type == "Provenance", FhirResource.source_document_id.in_(ids))
                .group_by(FhirResource.source_document_id)).all()
    finally:
        engine.dispose()
    return {str(k): int(n) for k, n in docs}, {str(k): int(n) for k, n in provs}


def extractor(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "extractor"], cwd=REPO, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def test_kill_between_database_and_offset_commit(kafka: TansuBroker, triton: TritonServer, database: str,
                                                 tiny_repository: Path, tmp_path: Path) -> None:
    topic = f"notes-{uuid.uuid4().hex[:6]}"
    group = f"g-{topic}"
    ids = [f"doc-{uuid.uuid4().hex[:8]}" for _ in range(N_NOTES)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLINIE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "CLINIE_TRITON_URL": triton.http_url, "CLINIE_DATABASE_URL": database,
           "CLINIE_MODEL_REPOSITORY": str(tiny_repository), "CLINIE_INPUT_TOPIC": topic,
           "CLINIE_DEAD_LETTER_TOPIC": f"{topic}.dlq", "CLINIE_CONSUMER_GROUP": group,
           "CLINIE_METRICS_PORT": str(free_port()), "CLINIE_KAFKA_SESSION_TIMEOUT_MS": "6000",
           "CLINIE_KAFKA_HEARTBEAT_INTERVAL_MS": "1000", "CLINIE_RETRY_MAX_S": "2",
           "CLINIE_MAX_IN_FLIGHT": "1"}  # one note at a time: exactly notes 1-3 stored when the kill comes
    asyncio.run(acreate_topics(kafka.bootstrap_servers, [topic, f"{topic}.dlq"]))
    asyncio.run(publish(kafka.bootstrap_servers, topic, [docref(i, NOTE, patient=f"p-{i}") for i in ids]))

    first = extractor({**env, "CLINIE_FAULT_KILL_AFTER_COMMIT": str(KILL_AFTER)}, tmp_path / "first.log")
    try:
        assert first.wait(600) == FAULT_EXIT_CODE, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    docs, provs = stored(database, ids)
    assert set(docs) == set(ids[:KILL_AFTER]), "the third note is in PostgreSQL, the rest not yet"
    assert asyncio.run(committed(kafka.bootstrap_servers, topic, group)) == KILL_AFTER - 1, \
        "the third note's offset was not committed"

    second = extractor(env, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 600
        while len(stored(database, ids)[0]) < N_NOTES:
            assert second.poll() is None, (tmp_path / "second.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the restarted extractor did not finish"
            time.sleep(1)
        deadline = time.monotonic() + 60
        while asyncio.run(committed(kafka.bootstrap_servers, topic, group)) != N_NOTES:
            assert time.monotonic() < deadline, "offsets not committed after the last note"
            time.sleep(1)
    finally:
        second.terminate()
        second.wait(30)
    docs, provs = stored(database, ids)
    assert docs == dict.fromkeys(ids, 1) and provs == dict.fromkeys(ids, 1), "nothing lost, nothing duplicated"
    redelivered = (tmp_path / "second.log").read_text()
    assert ids[KILL_AFTER - 1] in redelivered, "the restarted extractor processed the third note again"
    assert ids[0] not in redelivered, "committed notes are not redelivered"
