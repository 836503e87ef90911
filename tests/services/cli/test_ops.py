"""``clinie db`` against a real PostgreSQL, ``clinie publish`` against a real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from tests.conftest import fresh_database


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def empty_db(pg_server: str) -> Iterator[str]:
    yield from fresh_database(pg_server)


def test_db_current_upgrade_current(empty_db: str) -> None:
    from services.cli.ops import head_revision

    code, out, err = run("db", "current", "--database-url", empty_db)
    assert code == 1 and out.startswith("(none)") and "clinie db upgrade" in err
    code, out, _ = run("db", "upgrade", env={"CLINIE_DATABASE_URL": empty_db})
    assert code == 0 and out.strip() == f"database schema: (empty) -> {head_revision()}"
    code, out, _ = run("db", "upgrade", "--database-url", empty_db)
    assert code == 0 and "already at" in out
    code, out, _ = run("db", "current", "--database-url", empty_db)
    assert code == 0 and out.strip() == f"{head_revision()} (head)"


def test_db_unreachable_is_one_line_without_password() -> None:
    code, _, err = run("db", "current", "--database-url",
                       "postgresql://u:topsecret@127.0.0.1:1/x?connect_timeout=2")
    assert code == 1 and "[E202]" in err and "topsecret" not in err and err.strip().count("\n") == 0


def test_bad_kafka_settings_are_one_line(tmp_path: Path) -> None:
    note = tmp_path / "n.txt"
    note.write_text("Aspirin daily.")
    code, _, err = run("publish", str(note), env={"CLINIE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                                  "CLINIE_KAFKA_SASL_MECHANISM": "KERBEROS"})
    assert code == 1 and "[E304]" in err and "kafka_sasl_mechanism" in err and err.strip().count("\n") == 0


def _read(bootstrap: str, topic: str, n: int) -> list[tuple[bytes, bytes]]:
    from aiokafka import AIOKafkaConsumer

    async def go() -> list[tuple[bytes, bytes]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        out: list[tuple[bytes, bytes]] = []
        try:
            for _ in range(60):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend((r.key or b"", r.value or b"") for r in records)
                if len(out) >= n:
                    break
        finally:
            await consumer.stop()
        return out

    return asyncio.run(go())


def test_publish_text_and_docrefs(kafka, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from clinie.fhir.docref import parse_document_reference
    from services.stack.kafka import create_topics

    topic = "clinie.test.publish"
    create_topics(kafka.bootstrap_servers, [topic])
    (tmp_path / "visit note.txt").write_text("Metformin 500 mg BID.\n")
    docref = {"resourceType": "DocumentReference", "id": "dr-1", "status": "current",
              "content": [{"attachment": {"contentType": "text/plain",
                                          "data": base64.b64encode(b"No fever.").decode()}}]}
    bad = {**docref, "id": "dr-bad", "content": [{"attachment": {"contentType": "text/plain", "data": "@@"}}]}
    (tmp_path / "docs.ndjson").write_text(json.dumps(docref) + "\n" + json.dumps(bad) + "\n")
    env = {"CLINIE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    code, _, err = run("publish", str(tmp_path / "visit note.txt"), str(tmp_path / "docs.ndjson"),
                       "--patient", "p-7", "--topic", topic, env=env)
    assert code == 1  # the bad one was reported, not sent
    assert "[E005]" in err and "sent 2 DocumentReference(s)" in err
    got = _read(kafka.bootstrap_servers, topic, 2)
    assert [k for k, _ in got] == [b"visit-note", b"dr-1"]
    wrapped = parse_document_reference(got[0][1])
    assert wrapped.text == "Metformin 500 mg BID.\n" and wrapped.patient_ref == "Patient/p-7"
    assert json.loads(got[1][1]) == docref  # sent as it was
