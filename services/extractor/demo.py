"""``clinie demo``: the whole job on the local stack, start to finish, leaving nothing running.

Starts Tansu (Kafka protocol), tritonserver with ``model_repo/``, PostgreSQL (embedded unless
``CLINIE_DATABASE_URL`` is set) and the FHIR API, publishes DocumentReferences, runs the extractor until every
message is either stored or dead-lettered (its offset committed), queries the API, optionally exports the resources
as NDJSON, and returns a summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from clinie.model.repository import default_repository
from clinie.storage.db import make_engine, migrate, session_factory
from clinie.storage.models import FhirResource
from clinie.storage.repository import iter_resources
from services.extractor.main import build_service
from services.settings import ExtractorSettings
from services.stack.kafka import create_topics
from services.stack.local import LocalStack

EXPORT_TYPES = ("Condition", "MedicationStatement", "Provenance")


def default_input() -> Path:
    """The 196 Synthea (CC0) DocumentReferences shipped with the package."""
    return Path(str(resources.files("clinie.data").joinpath("synthea_documentreference.ndjson")))


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def publish(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for line in lines:
            try:
                key = str(json.loads(line).get("id", "")).encode() or None
            except (ValueError, AttributeError):
                key = None
            await producer.send(topic, line, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def consume_until_done(settings: ExtractorSettings, expected: int, timeout_s: float) -> tuple[int, int]:
    service = build_service(settings)
    broker = service.create_broker()
    await broker.start()
    started = time.perf_counter()
    last = -1
    try:
        while service.processed + service.dead_lettered < expected:
            done = service.processed + service.dead_lettered
            if done != last:
                progress(f"  processed {done}/{expected} notes ({time.perf_counter() - started:.0f}s)")
                last = done
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"only {done}/{expected} notes processed in {timeout_s:.0f}s")
            await asyncio.sleep(0.5)
        progress(f"  processed {expected}/{expected} notes ({time.perf_counter() - started:.0f}s)")
    finally:
        await service.shutdown()
        await broker.stop()
    return service.processed, service.dead_lettered


async def read_dead_letters(settings: ExtractorSettings, expected: int, timeout_s: float = 30.0
                            ) -> list[dict[str, Any]]:
    """The reasons of the messages on the dead-letter topic: code, reason, message, source partition and offset
    (no payload)."""
    from aiokafka import AIOKafkaConsumer

    if expected == 0:
        return []
    consumer = AIOKafkaConsumer(settings.dead_letter_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    out: list[dict[str, Any]] = []
    deadline = time.perf_counter() + timeout_s
    try:
        while len(out) < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for rec in records:
                    h = {k: v.decode("utf-8", "replace") for k, v in rec.headers}
                    out.append({"code": h.get("clinie-error-code"), "reason": h.get("clinie-error-reason"),
                                "message": h.get("clinie-error-message"),
                                "source_partition": h.get("clinie-source-partition"),
                                "source_offset": h.get("clinie-source-offset")})
    finally:
        await consumer.stop()
    return out


def dump_ndjson(database_url: str, out_dir: Path) -> dict[str, int]:
    """Write every stored resource of ``EXPORT_TYPES`` to ``out_dir/<type>.ndjson`` (the demo's ``--export``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url)
    counts = {}
    with session_factory(engine)() as session:
        for rtype in EXPORT_TYPES:
            n = 0
            with open(out_dir / f"{rtype}.ndjson", "w", encoding="utf-8") as fh:
                for resource in iter_resources(session, rtype):
                    fh.write(json.dumps(resource, separators=(",", ":")) + "\n")
                    n += 1
            counts[rtype] = n
    engine.dispose()
    return counts


def count(database_url: str, *resource_types: str) -> list[int]:
    """How many resources of each type are stored."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        counts = [int(conn.execute(select(func.count()).select_from(FhirResource)
                                   .where(FhirResource.resource_type == t)).scalar_one()) for t in resource_types]
    engine.dispose()
    return counts


def _exit_on_sigterm() -> None:
    """SIGTERM (``timeout``, a supervisor) ends the demo like Ctrl-C: the ``with LocalStack`` block stops the
    stack. (If the demo is killed outright, the stack's watchdog stops it: ``services.stack.reaper``.)"""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run_demo(input_path: Path | None = None, export_dir: Path | None = None, database_url: str | None = None,
             workdir: Path | None = None, model_repository: Path | None = None,
             timeout_s: float = 1800.0) -> dict[str, Any]:
    started = time.perf_counter()
    _exit_on_sigterm()
    src = input_path or default_input()
    lines = [ln.rstrip(b"\n") for ln in src.read_bytes().splitlines() if ln.strip()]
    repo = model_repository or default_repository()
    work = workdir or Path(tempfile.mkdtemp(prefix="clinie-demo-"))
    progress(f"clinie demo: {len(lines)} DocumentReferences from {src.name}; starting Kafka (Tansu), PostgreSQL, "
             f"the FHIR API and tritonserver in {work}")
    with LocalStack(work, repo, database_url=database_url) as stack:
        env = stack.env()
        settings = ExtractorSettings(
            kafka_bootstrap_servers=env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"],
            triton_url=env["CLINIE_TRITON_URL"],
            database_url=env["CLINIE_DATABASE_URL"],
            model_repository=repo,
            backend="triton",
            # a local single-member group: join fast (Tansu takes about half the session timeout to settle a join)
            kafka_session_timeout_ms=1000,
            kafka_heartbeat_interval_ms=200,
        )
        progress(f"stack up in {time.perf_counter() - started:.1f}s; migrating database")
        migrate(settings.database_dsn)
        create_topics(settings.kafka_bootstrap_servers, [settings.input_topic, settings.dead_letter_topic])
        asyncio.run(publish(settings.kafka_bootstrap_servers, settings.input_topic, lines))
        progress(f"published {len(lines)} messages to {settings.input_topic}; extracting")
        processed, dead = asyncio.run(consume_until_done(settings, len(lines), timeout_s))
        dead_letters = asyncio.run(read_dead_letters(settings, dead))
        conditions, meds = count(settings.database_dsn, "Condition", "MedicationStatement")
        api_url = env["CLINIE_FHIR_API_URL"]
        served = httpx.get(f"{api_url}/Condition", params={"_summary": "count"}, timeout=30).json().get("total")
        progress(f"FHIR API at {api_url}: GET /Condition?_summary=count -> {served} (auth off: local demo only)")
        if export_dir is not None:
            exported = dump_ndjson(settings.database_dsn, export_dir)
            progress(f"exported {exported} to {export_dir}")
        progress("stopping the stack")
    return {"notes": processed + dead, "conditions": conditions, "medication_statements": meds,
            "dead_lettered": dead, "dead_letters": dead_letters, "seconds": round(time.perf_counter() - started, 1)}
