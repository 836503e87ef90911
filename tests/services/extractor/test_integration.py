"""The extractor end to end on real Kafka (Tansu), tritonserver and PostgreSQL. No mocks."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from clinie.document import Document
from clinie.storage.db import make_engine
from clinie.storage.models import FhirResource, SourceDocument
from services.extractor.app import ExtractorService
from services.extractor.main import build_service
from services.settings import ExtractorSettings
from services.stack.kafka import TansuBroker, acreate_topics
from services.stack.triton import TritonServer
from tests.services.stack.kafka_client import committed

from .conftest import NOTE, docref

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def settings_for(kafka: TansuBroker, triton: TritonServer, database: str, repo: Path) -> ExtractorSettings:
    topic = f"notes-{uuid.uuid4().hex[:6]}"
    return ExtractorSettings(kafka_bootstrap_servers=kafka.bootstrap_servers, triton_url=triton.http_url,
                             database_url=database, model_repository=repo, input_topic=topic,
                             dead_letter_topic=f"{topic}.dlq", consumer_group=f"g-{topic}",
                             retry_initial_s=0.2, retry_max_s=1.0, triton_timeout_s=10,
                             kafka_session_timeout_ms=1000, kafka_heartbeat_interval_ms=200)


async def publish(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for p in payloads:
            await producer.send_and_wait(topic, p, key=b"k")
    finally:
        await producer.stop()


async def wait_for(service: ExtractorService, n: int, timeout: float = 120.0) -> None:
    start = time.monotonic()
    while service.processed + service.dead_lettered < n:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"processed {service.processed}, dead-lettered {service.dead_lettered} of {n}")
        await asyncio.sleep(0.2)


async def run_service(s: ExtractorSettings, payloads: list[bytes], expect: int) -> ExtractorService:
    await acreate_topics(s.kafka_bootstrap_servers, [s.input_topic, s.dead_letter_topic])
    service = build_service(s)
    broker = service.create_broker()
    await broker.start()
    try:
        await publish(s.kafka_bootstrap_servers, s.input_topic, payloads)
        await wait_for(service, expect)
    finally:
        await service.shutdown()
        await broker.stop()
    return service


def retries(service: ExtractorService) -> float:
    value = service.metrics.registry.get_sample_value("clinie_retries_total", {"reason": "backend_unavailable"})
    return value or 0.0


def rows(database: str, doc_id: str) -> dict[str, int]:
    engine = make_engine(database)
    with engine.connect() as conn:
        res = conn.execute(select(FhirResource.resource_type, func.count()).where(
            FhirResource.source_document_id == doc_id).group_by(FhirResource.resource_type)).all()
    engine.dispose()
    return {t: int(n) for t, n in res}


async def test_note_end_to_end_and_redelivery_is_idempotent(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    s = settings_for(kafka, triton, database, tiny_repository)
    doc_id = f"doc-{uuid.uuid4().hex[:8]}"
    payload = docref(doc_id, NOTE, version="1")
    service = await run_service(s, [payload], 1)
    assert service.processed == 1 and service.dead_lettered == 0
    assert retries(service) == 0, "a healthy stack needs no retries"
    first = rows(database, doc_id)
    assert first.get("Provenance") == 1
    engine = make_engine(database)
    with engine.connect() as conn:
        src = conn.execute(select(SourceDocument).where(SourceDocument.id == doc_id)).one()
        assert src.model_version == "clinie_ie/1"
    engine.dispose()
    # the same message again (redelivery) -> no duplicates
    service = await run_service(s, [payload, payload], 2)
    assert service.processed == 2
    assert rows(database, doc_id) == first


async def test_new_version_supersedes(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    s = settings_for(kafka, triton, database, tiny_repository)
    doc_id = f"doc-{uuid.uuid4().hex[:8]}"
    await run_service(s, [docref(doc_id, NOTE, version="1"), docref(doc_id, "Denies fever.", version="2")], 2)
    engine = make_engine(database)
    with engine.connect() as conn:
        versions = conn.execute(select(FhirResource.source_document_version).where(
            FhirResource.source_document_id == doc_id).distinct()).scalars().all()
    engine.dispose()
    assert set(versions) <= {"2"}


BAD = {
    "not_json": b"this is not json",
    "not_document_reference": b'{"resourceType": "Patient", "id": "x"}',
    "invalid_resource": b'{"resourceType": "DocumentReference", "id": "x", "status": "bogus", "content": 5}',
    "no_text": docref("x1", None),
    "bad_base64": docref("x2", None, data="!!!not base64!!!"),
    "unsupported_content_type": docref("x3", "a", content_type="application/pdf"),
    "bad_encoding": docref("x4", None, data=base64.b64encode(b"\xff\xfe\xfa caf\xe9").decode()),
    "note_too_large": docref("x5", "word " * 500),
}


async def test_each_bad_input_class_is_dead_lettered_with_reason(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    s = settings_for(kafka, triton, database, tiny_repository).model_copy(update={"max_note_chars": 1000})
    good = docref(f"doc-{uuid.uuid4().hex[:8]}", NOTE)
    service = await run_service(s, [*BAD.values(), good], len(BAD) + 1)
    assert service.dead_lettered == len(BAD) and service.processed == 1
    assert retries(service) == 0
    consumer = AIOKafkaConsumer(s.dead_letter_topic, bootstrap_servers=s.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=5000, max_records=100)
        records = [r for batch in got.values() for r in batch]
    finally:
        await consumer.stop()
    reasons = {}
    for r in records:
        headers = {k: v.decode() for k, v in r.headers}
        reasons[headers["clinie-error-reason"]] = r.value
        assert headers["clinie-error-code"].startswith("E0")
        assert headers["clinie-source-topic"] == s.input_topic
    assert set(reasons) == set(BAD), reasons.keys()
    for reason, original in BAD.items():
        assert reasons[reason] == original, "the original payload is kept"


async def test_triton_down_midstream_waits_and_loses_nothing(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    s = settings_for(kafka, triton, database, tiny_repository)
    await acreate_topics(s.kafka_bootstrap_servers, [s.input_topic, s.dead_letter_topic])
    service = build_service(s)
    broker = service.create_broker()
    await broker.start()
    ids = [f"doc-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    try:
        await publish(s.kafka_bootstrap_servers, s.input_topic, [docref(i, NOTE) for i in ids[:2]])
        await wait_for(service, 2)
        await asyncio.to_thread(triton.stop)
        await publish(s.kafka_bootstrap_servers, s.input_topic, [docref(i, NOTE) for i in ids[2:]])
        await asyncio.sleep(3)
        assert service.processed == 2, "nothing is processed while Triton is down"
        assert retries(service) >= 1
        await asyncio.to_thread(triton.restart)
        await wait_for(service, 6)
    finally:
        await service.shutdown()
        await broker.stop()
        if not triton.is_running:
            triton.start()
    assert service.processed == 6 and service.dead_lettered == 0
    for i in ids:
        assert rows(database, i).get("Provenance") == 1


# --- issue 12: bad bytes, oversize dead letters, slow notes (real broker, tritonserver and PostgreSQL) ----------


async def publish_records(bootstrap: str, topic: str,
                          records: list[tuple[bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(topic, value, key=b"k", headers=headers)
    finally:
        await producer.stop()


async def read_dead_letters(s: ExtractorSettings) -> list[tuple[dict[str, str], bytes]]:
    consumer = AIOKafkaConsumer(s.dead_letter_topic, bootstrap_servers=s.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    try:
        got = await consumer.getmany(timeout_ms=5000, max_records=1000)
    finally:
        await consumer.stop()
    return [({k: v.decode() for k, v in r.headers}, r.value) for batch in got.values() for r in batch]


async def run_records(s: ExtractorSettings, records: list[tuple[bytes, list[tuple[str, bytes]]]],
                      expect: int, timeout: float = 120.0) -> ExtractorService:
    await acreate_topics(s.kafka_bootstrap_servers, [s.input_topic, s.dead_letter_topic])
    service = build_service(s)
    broker = service.create_broker()
    await broker.start()
    try:
        await publish_records(s.kafka_bootstrap_servers, s.input_topic, records)
        await wait_for(service, expect, timeout)
    finally:
        await service.shutdown()
        await broker.stop()
    return service


CANARY = "Qxzcanary"


def _nested_extension(depth: int) -> dict[str, object]:
    ext: dict[str, object] = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(depth):
        ext = {"url": "http://example.org/x", "extension": [ext]}
    return ext


def _deep_resource() -> bytes:
    import json

    res = json.loads(docref("deep-300", NOTE))
    res["extension"] = [_nested_extension(300)]
    return json.dumps(res).encode()


UNDECODABLE: dict[str, tuple[bytes, list[tuple[str, bytes]], str]] = {
    # payload, headers, expected reason
    "nested_arrays": (b"[" * 100_000 + b"]" * 100_000, [], "not_json"),
    "json_header_not_json": (b"not json " + CANARY.encode(), [("content-type", b"application/json")], "not_json"),
    "text_header_not_utf8": (b"\xff\xfe\xfa caf\xe9", [("content-type", b"text/plain")], "not_json"),
    "header_not_utf8": (docref("hdr-1", NOTE), [("x-trace", b"\xff\xfe")], "stored"),
    "nested_300_in_resource": (_deep_resource(), [], "invalid_resource"),
    # strings from the payload that error messages used to quote: a JSON key, a resourceType, a charset
    "odd_key": (b'{"resourceType": "DocumentReference", "id": "c1", "status": "current", "' + CANARY.encode() +
                b'": 1, "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}]}', [],
                "invalid_resource"),
    "odd_resource_type": (b'{"resourceType": "' + CANARY.encode() + b'", "id": "c2"}', [], "not_document_reference"),
    "odd_charset": (b'{"resourceType": "DocumentReference", "id": "c3", "status": "current", "content": '
                    b'[{"attachment": {"contentType": "text/plain; charset=' + CANARY.encode() +
                    b'", "data": "aGk="}}]}', [], "unsupported_content_type"),
}


async def test_undecodable_messages_reach_the_dead_letter_topic(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 (1, 8): FastStream's decoder raised before handle() and the message was lost; now every message is
    stored or dead-lettered, with an invalid-resource code for deep nesting and only fixed text in the headers."""
    s = settings_for(kafka, triton, database, tiny_repository)
    good = docref(f"doc-{uuid.uuid4().hex[:8]}", NOTE)
    records = [(p, h) for p, h, _ in UNDECODABLE.values()] + [(good, [])]
    service = await run_records(s, records, len(records), timeout=90)
    expected_dead = sorted(r for _, _, r in UNDECODABLE.values() if r != "stored")
    assert service.processed == len(records) - len(expected_dead)
    dead = await read_dead_letters(s)
    assert sorted(h["clinie-error-reason"] for h, _ in dead) == expected_dead
    for headers, _ in dead:
        assert headers["clinie-error-code"] != "E009"
        assert CANARY not in "".join(headers.values()), "dead-letter headers hold codes and fixed text only"
    assert rows(database, "hdr-1").get("Provenance") == 1


ECHOED = ("odd_key", "odd_resource_type", "odd_charset")


async def test_dead_letter_headers_never_echo_payload_strings(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 (8b): ``clinie-error-message`` quoted strings of the payload (a JSON key, a resourceType, a charset).
    These three messages decode on any version, so this checks the headers apart from row 1's lost messages."""
    s = settings_for(kafka, triton, database, tiny_repository)
    records = [UNDECODABLE[k][:2] for k in ECHOED]
    await run_records(s, records, len(records), timeout=90)
    dead = await read_dead_letters(s)
    leaked = sorted(h["clinie-error-reason"] for h, _ in dead if CANARY in "".join(h.values()))
    assert leaked == [], f"dead-letter headers quote the payload for: {leaked}"
    assert sorted(h["clinie-error-reason"] for h, _ in dead) == sorted(UNDECODABLE[k][2] for k in ECHOED)


async def test_oversize_payload_is_dead_lettered_without_blocking(kafka, triton, database, tiny_repository) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 (2): a 1.5 MB not-JSON message blocked the partition (MessageSizeTooLargeError, retried forever).
    With the producer sized for it, it is dead-lettered whole; when the producer (or broker) refuses it, a
    truncated copy with the original's size and sha256 is written; the notes behind it are processed."""
    import hashlib

    big = b"x" * 1_500_000
    for limit, truncated in ((16 * 1024 * 1024, False), (1024 * 1024, True)):
        s = settings_for(kafka, triton, database, tiny_repository).model_copy(
            update={"kafka_max_request_bytes": limit})
        doc_id = f"doc-{uuid.uuid4().hex[:8]}"
        service = await run_records(s, [(big, []), (docref(doc_id, NOTE), [])], 2, timeout=90)
        assert service.dead_lettered == 1 and service.processed == 1
        [(headers, value)] = await read_dead_letters(s)
        assert headers["clinie-error-reason"] == "not_json"
        if truncated:
            assert headers["clinie-truncated"] == "true"
            assert headers["clinie-original-bytes"] == str(len(big))
            assert headers["clinie-original-sha256"] == hashlib.sha256(big).hexdigest()
            assert value == big[:s.dead_letter_truncate_bytes]
        else:
            assert "clinie-truncated" not in headers and value == big


async def test_note_that_times_out_is_dead_lettered_after_bounded_attempts(  # type: ignore[no-untyped-def]
        kafka, triton, database, tiny_repository) -> None:
    """Issue 12 (3): every Triton exception was transient and retried forever, so a note needing more than the
    timeout stalled its partition. Now: Triton ready + request failed/timed out -> bounded attempts, then E010."""
    from clinie.errors import TransientError
    from services.extractor.main import build_backend

    s = settings_for(kafka, triton, database, tiny_repository).model_copy(update={"max_inference_attempts": 2})
    slow = docref(f"slow-{uuid.uuid4().hex[:8]}", "Denies chest pain; takes aspirin 81 mg daily. " * 200)
    await acreate_topics(s.kafka_bootstrap_servers, [s.input_topic, s.dead_letter_topic])
    service = build_service(s)
    service.processor.extractor.backend.timeout_s = 0.05  # type: ignore[attr-defined]  # worker threads' clients
    broker = service.create_broker()
    await broker.start()
    try:
        await publish_records(s.kafka_bootstrap_servers, s.input_topic,
                              [(slow, []), (b"not json: proves the partition moved on", [])])
        await wait_for(service, 2, 120)
    finally:
        await service.shutdown()
        await broker.stop()
        # let Triton finish the abandoned requests before other tests use it
        _, extractor, _ = build_backend(s.model_copy(update={"triton_timeout_s": 300}))
        deadline = time.monotonic() + 300
        while True:
            try:
                await asyncio.to_thread(extractor.annotate, [Document(id="drain", text="Aspirin.", source="t")])
                break
            except TransientError:  # batched with an abandoned request that failed
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
    assert service.dead_lettered == 2
    reasons = sorted(h["clinie-error-reason"] for h, _ in await read_dead_letters(s))
    assert reasons == ["not_json", "note_timed_out"]
    failed = service.metrics.registry.get_sample_value(
        "clinie_failures_total", {"reason": "backend_request_failed", "kind": "transient"})
    assert failed == 2


# --- issue 11: several notes in flight; a kill mid-batch loses nothing and stores nothing twice -----------------


async def committed_offset(s: ExtractorSettings) -> int:
    """The consumer group's committed position on partition 0 of the input topic (0 when none)."""
    return await committed(s.kafka_bootstrap_servers, s.input_topic, s.consumer_group) or 0


def stored(database: str, ids: list[str]) -> set[str]:
    engine = make_engine(database)
    with engine.connect() as conn:
        got = conn.execute(select(SourceDocument.id).where(SourceDocument.id.in_(ids))).scalars().all()
    engine.dispose()
    return set(got)


@pytest.mark.timeout(900)  # two extractor start-ups and a kill on a busy 2-core machine
async def test_kill_mid_batch_then_restart_stores_every_note_exactly_once(  # type: ignore[no-untyped-def]
        kafka, triton, database, tiny_repository, tmp_path) -> None:
    """The extractor process is SIGKILLed while several notes are in flight (max_in_flight=4): the committed offset
    never passes a note that is not stored, and after a restart every note is stored once (one Provenance, every
    resource at version 1: the redelivered notes changed nothing) and the offset reaches the end of the topic."""
    import os
    import signal
    import subprocess
    import sys

    from services.stack.ports import free_port

    s = settings_for(kafka, triton, database, tiny_repository).model_copy(update={"max_in_flight": 4})
    await acreate_topics(s.kafka_bootstrap_servers, [s.input_topic, s.dead_letter_topic])
    ids = [f"kill-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    long_note = NOTE * 2  # several windows of the tiny model per note: notes stay in flight a while
    await publish(s.kafka_bootstrap_servers, s.input_topic, [docref(i, long_note, version="1") for i in ids])
    env = {**os.environ, "CLINIE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers, "CLINIE_TRITON_URL": s.triton_url,
           "CLINIE_DATABASE_URL": s.database_dsn, "CLINIE_MODEL_REPOSITORY": str(s.model_repository),
           "CLINIE_INPUT_TOPIC": s.input_topic, "CLINIE_DEAD_LETTER_TOPIC": s.dead_letter_topic,
           "CLINIE_CONSUMER_GROUP": s.consumer_group, "CLINIE_KAFKA_SESSION_TIMEOUT_MS": "1000",
           "CLINIE_KAFKA_HEARTBEAT_INTERVAL_MS": "200", "CLINIE_MAX_IN_FLIGHT": "4",
           "CLINIE_METRICS_PORT": str(free_port()), "CLINIE_METRICS_HOST": "127.0.0.1", "CLINIE_LOG_LEVEL": "WARNING"}
    with open(tmp_path / "extractor.log", "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "extractor"], env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while len(stored(database, ids)) < 2:
                assert proc.poll() is None, (tmp_path / "extractor.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "the extractor stored nothing"
                await asyncio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    at_kill = stored(database, ids)
    offset = await committed_offset(s)
    assert len(at_kill) < len(ids), "killed before the end"
    assert set(ids[:offset]) <= at_kill, "an offset was committed before its note was stored"

    service = build_service(s)
    broker = service.create_broker()
    await broker.start()
    try:
        await wait_for(service, len(ids) - offset, timeout=240)
    finally:
        await service.shutdown()
        await broker.stop()
    assert service.dead_lettered == 0
    assert stored(database, ids) == set(ids)
    assert await committed_offset(s) == len(ids)
    engine = make_engine(database)
    with engine.connect() as conn:
        per_doc = dict(conn.execute(select(FhirResource.source_document_id, func.count()).where(
            FhirResource.source_document_id.in_(ids), FhirResource.resource_type == "Provenance")
            .group_by(FhirResource.source_document_id)).all())
        max_version = conn.execute(select(func.max(FhirResource.version_id)).where(
            FhirResource.source_document_id.in_(ids))).scalar_one()
    engine.dispose()
    assert per_doc == dict.fromkeys(ids, 1), "one Provenance per note"
    assert max_version == 1, "a redelivered note rewrote nothing"
