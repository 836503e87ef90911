"""Streaming throughput: Kafka -> extractor -> Triton -> PostgreSQL, against the model alone, in one run.

    .venv/bin/python -m benchmarks.stream --notes 207 --max-in-flight 4 --protocol http --json runs/stream.json

1. **Model only**: the in-process torch backend of the version Triton will serve, the same notes, the same pre- and
   post-processing (``Extractor`` with the default stages), ``--max-in-flight`` notes at a time on ``--threads``
   torch threads, in a child process (its own peak RSS).
2. **Pipeline**: the project's local stack (``services.stack.LocalStack``: Tansu, tritonserver, PostgreSQL); the
   extractor runs in a child process (``build_service``, ``--max-in-flight``, ``--protocol``). After two warm-up
   notes are stored, all notes are published at once; the run ends when every note is stored or dead-lettered
   (dead-lettered notes count as done and are listed with their error code).
   With ``--partitions P --consumers N`` the input topic has P partitions and N extractor processes join one
   consumer group; publishing waits until every partition has one owner, the warm-up notes go to every partition,
   and the notes are keyed by id (``benchmarks/stream_scaling.py`` sweeps N).

Reported: notes/s and windows/s of both (windows = the model's input windows of the notes), their ratio, per-note
latency percentiles (``service``: from the extractor taking the message to its storage; ``end_to_end``: from the
producer's timestamp to storage, which includes the wait in the backlog), peak RSS of each extractor process and of
tritonserver with its Python-backend stub (sampled every 0.2 s), and the machine. Never a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DEFAULT_INPUT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "notes" / "aci_bench_notes.jsonl"
WARMUP = 2


# --- input ---------------------------------------------------------------------------------------------------------


def as_document_reference(note_id: str, text: str) -> dict[str, Any]:
    """A plain-text note as a FHIR DocumentReference (FHIR ids allow only letters, digits, '-' and '.')."""
    fhir_id = re.sub(r"[^A-Za-z0-9\-.]", "-", note_id)[:64]
    return {"resourceType": "DocumentReference", "id": fhir_id, "status": "current",
            "subject": {"reference": f"Patient/{fhir_id}"}, "date": "2024-01-01T00:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                        "data": base64.b64encode(text.encode()).decode()}}]}


def load_notes(path: Path, limit: int | None) -> list[bytes]:
    """DocumentReference payloads from ``{"id", "text"}`` JSON lines (ACI-Bench) or DocumentReference NDJSON."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("resourceType") != "DocumentReference":
                rec = as_document_reference(str(rec["id"]), str(rec["text"]))
            out.append(json.dumps(rec).encode())
            if limit is not None and len(out) >= limit:
                break
    return out


def percentiles(values: list[float]) -> dict[str, float | None]:
    import numpy as np

    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    a = np.asarray(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


def peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


class RssSampler:
    """Peak resident memory of some processes (each with its children, summed), sampled in a thread."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.pids: dict[str, int] = {}
        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.peak_mb.setdefault(name, 0.0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def cpu_seconds(self) -> dict[str, tuple[float, float]]:
        """CPU time (user + system) used so far by each watched process: (with its live children, alone)."""
        import psutil

        out: dict[str, tuple[float, float]] = {}
        for name, pid in self.pids.items():
            try:
                proc = psutil.Process(pid)
                times = proc.cpu_times()
                own = times.user + times.system
                kids = sum(t.user + t.system for c in proc.children(recursive=True) for t in [c.cpu_times()])
            except psutil.Error:
                continue
            out[name] = (own + kids, own)
        return out

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.interval_s):
            for name, pid in list(self.pids.items()):
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
                self.peak_mb[name] = max(self.peak_mb[name], round(rss / 2**20, 1))


def machine_busy_seconds() -> float:
    """Busy CPU time of every core of the machine so far (all but idle and I/O wait)."""
    import psutil

    total = psutil.cpu_times()
    return float(sum(total) - total.idle - getattr(total, "iowait", 0.0))


# --- model only (child process) ------------------------------------------------------------------------------------


def _model_only(payloads: list[bytes], repo: str, version: str, threads: int, in_flight: int,
                out: mp.Queue[Any]) -> None:
    import torch

    from clinie.backends.torch_backend import TorchBackend
    from clinie.fhir.docref import parse_document_reference
    from clinie.model.repository import version_dir
    from clinie.normalize import default_stages
    from clinie.pipeline import Annotator

    torch.set_num_threads(threads)
    vdir = version_dir(Path(repo), "clinie_ie", version or None)
    backend = TorchBackend.from_dir(vdir, model_version=f"clinie_ie/{vdir.name}")
    extractor = Annotator(backend, backend.tokenizer, backend.net.config, stages=default_stages())
    docs = [parse_document_reference(p, max_chars=10**7).document for p in payloads]
    extractor.annotate(docs[:WARMUP])
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        annotated = list(pool.map(lambda d: extractor.annotate([d])[0], docs))
    seconds = time.perf_counter() - started
    cpu_ms_per_note = round(1000 * (time.process_time() - cpu_started) / max(1, len(docs)), 1)
    windows = sum(len(d.segments) for d in annotated)
    out.put({"notes": len(docs), "windows": windows, "seconds": round(seconds, 2),
             "notes_per_s": round(len(docs) / seconds, 3), "windows_per_s": round(windows / seconds, 2),
             "peak_rss_mb": peak_rss_mb(), "torch_threads": threads, "concurrent_notes": in_flight,
             "cpu_ms_per_note": cpu_ms_per_note, "model_version": f"clinie_ie/{vdir.name}"})


def run_model_only(payloads: list[bytes], args: argparse.Namespace, version: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out: mp.Queue[Any] = ctx.Queue()
    proc = ctx.Process(target=_model_only, args=(payloads, str(args.model_repository), version, args.threads,
                                                 args.max_in_flight, out))
    proc.start()
    result: dict[str, Any] = out.get(timeout=args.timeout)
    proc.join(60)
    return result


# --- extractors (child processes) ----------------------------------------------------------------------------------


def _extractor(settings_fields: dict[str, Any], index: int, ready: Any, stop: Any, progress: mp.Queue[Any],
               out: mp.Queue[Any]) -> None:
    """One extractor replica: ``build_service`` in its own process, a member of the consumer group.

    Puts ``("assigned", index, partitions, time)`` on ``progress`` whenever its assignment changes and
    ``("done", index, key)`` for every message stored or dead-lettered; runs until ``stop`` is set, then shuts down
    as the service does (offsets committed after storage, unchanged) and puts its timings on ``out``."""
    import logging

    from services.extractor.app import ExtractorService
    from services.extractor.main import build_service
    from services.settings import ExtractorSettings

    logging.getLogger("faststream").setLevel(logging.WARNING)  # one INFO line per message otherwise
    settings = ExtractorSettings(**settings_fields)
    # (partition, offset, key, producer timestamp, taken, finished, outcome)
    timings: list[tuple[int, int, str, float, float, float, str]] = []
    assignments: list[tuple[float, list[int]]] = []

    class TimedService(ExtractorService):
        async def _process(self, msg: Any) -> bool:
            taken, stored, dead = time.time(), self.processed, self.dead_lettered
            ok = await super()._process(msg)
            outcome = ("stored" if self.processed > stored else "dead_lettered" if self.dead_lettered > dead
                       else "abandoned")
            rec = msg.raw_message
            key = (rec.key or b"").decode("utf-8", "replace")
            timings.append((rec.partition, rec.offset, key, rec.timestamp / 1000, taken, time.time(), outcome))
            if outcome != "abandoned":
                progress.put(("done", index, key))
            return ok

    async def main() -> dict[str, Any]:
        base = build_service(settings)
        service = TimedService(settings, base.processor, base.metrics)
        broker = service.create_broker()
        await broker.start()
        ready.set()
        subscriber: Any = broker.subscribers[0]
        current: list[int] | None = None
        try:
            while not stop.is_set():
                consumer = subscriber.consumer
                parts = sorted(tp.partition for tp in consumer.assignment()) if consumer is not None else []
                if parts != current:
                    current = parts
                    assignments.append((time.time(), parts))
                    progress.put(("assigned", index, parts, time.time()))
                await asyncio.sleep(0.05)
        finally:
            await service.shutdown()
            await broker.stop()
        return {"index": index, "processed": service.processed, "dead_lettered": service.dead_lettered,
                "timings": timings, "assignments": assignments, "peak_rss_mb": peak_rss_mb()}

    out.put(asyncio.run(main()))


async def _publish(bootstrap: str, topic: str, payloads: list[bytes], keys: list[str] | None = None,
                   partitions: list[int] | None = None) -> tuple[float, list[int]]:
    """Publish ``payloads`` keyed by note id (or ``keys``), to the partition the key hashes to (or ``partitions``);
    returns the time publishing started and the partition of every message."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all",
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        started = time.time()
        futures = []
        for i, p in enumerate(payloads):
            key = keys[i] if keys is not None else str(json.loads(p).get("id", ""))
            futures.append(await producer.send(topic, p, key=key.encode() or None,
                                               partition=partitions[i] if partitions is not None else None))
        await producer.flush()
        placed = [(await f).partition for f in futures]
    finally:
        await producer.stop()
    return started, placed


def note_keys(payloads: list[bytes]) -> list[str]:
    return [str(json.loads(p).get("id", "")) for p in payloads]


def warmup_plan(warmup: list[bytes], partitions: int) -> tuple[list[bytes], list[str], list[int]]:
    """The warm-up notes sent to every partition (so every extractor that owns one is warm): payloads, keys,
    partitions."""
    payloads, keys, parts = [], [], []
    for p in range(partitions):
        for i, w in enumerate(warmup):
            payloads.append(w)
            keys.append(f"warmup-p{p}-{i}")
            parts.append(p)
    return payloads, keys, parts


def balanced(assigned: dict[int, list[int]], consumers: int, partitions: int) -> bool:
    """Every partition owned by exactly one consumer, and every consumer owning one (when there are enough)."""
    if len(assigned) < consumers:
        return False
    owned = [p for parts in assigned.values() for p in parts]
    if sorted(owned) != list(range(partitions)):
        return False
    return all(parts for parts in assigned.values()) or consumers > partitions


class Progress:
    """The parent's view of the children: their latest assignments and the keys finished (by whom)."""

    def __init__(self, queue: mp.Queue[Any]) -> None:
        self.queue = queue
        self.assigned: dict[int, list[int]] = {}
        self.changed_at = time.monotonic()
        self.assignment_log: list[tuple[float, int, list[int]]] = []
        self.done: dict[str, list[int]] = {}

    def drain(self, wait_s: float = 0.05) -> None:
        import queue as queue_mod

        try:
            item = self.queue.get(timeout=wait_s)
        except queue_mod.Empty:
            return
        while True:
            if item[0] == "assigned":
                _, idx, parts, at = item
                self.assigned[idx] = parts
                self.changed_at = time.monotonic()
                self.assignment_log.append((at, idx, parts))
            else:
                self.done.setdefault(item[2], []).append(item[1])
            try:
                item = self.queue.get_nowait()
            except queue_mod.Empty:
                return

    def wait(self, condition: Any, timeout: float, children: list[Any], what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}; assignments: {self.assigned}")
            if not all(c.is_alive() for c in children):
                raise RuntimeError(f"an extractor exited while waiting: {what}")
            self.drain()


def run_pipeline(payloads: list[bytes], warmup: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    from clinie.storage.db import migrate
    from services.extractor.demo import read_dead_letters
    from services.settings import ExtractorSettings
    from services.stack.kafka import create_topics
    from services.stack.local import LocalStack

    consumers, partitions = getattr(args, "consumers", 1), getattr(args, "partitions", 1)
    session_ms = getattr(args, "session_timeout_ms", 1000)
    work = Path(tempfile.mkdtemp(prefix="clinie-bench-stream-"))
    with LocalStack(work, args.model_repository, database_url=args.database_url) as stack, RssSampler() as rss:
        env = stack.env()
        triton_url = stack.triton.grpc_url if args.protocol == "grpc" else stack.triton.http_url
        settings = ExtractorSettings(kafka_bootstrap_servers=env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"],
                                     triton_url=triton_url, triton_protocol=args.protocol,
                                     database_url=env["CLINIE_DATABASE_URL"], model_repository=args.model_repository,
                                     model_version=args.model_version, max_in_flight=args.max_in_flight,
                                     max_note_chars=10**7, kafka_session_timeout_ms=session_ms,
                                     kafka_heartbeat_interval_ms=max(100, session_ms // 5))
        migrate(settings.database_dsn)
        create_topics(settings.kafka_bootstrap_servers, [settings.input_topic], partitions=partitions)
        create_topics(settings.kafka_bootstrap_servers, [settings.dead_letter_topic])
        if stack.triton.pid is not None:
            rss.watch("triton", stack.triton.pid)
        ctx = mp.get_context("spawn")
        stop, progress_q, out = ctx.Event(), ctx.Queue(), ctx.Queue()
        fields = {**settings.model_dump(mode="json"), "database_url": settings.database_dsn}
        children, readies = [], []
        for i in range(consumers):
            ready = ctx.Event()
            child = ctx.Process(target=_extractor, args=(fields, i, ready, stop, progress_q, out))
            child.start()
            assert child.pid is not None
            rss.watch(f"extractor-{i}", child.pid)
            children.append(child)
            readies.append(ready)
        progress = Progress(progress_q)
        results: list[dict[str, Any]] = []
        try:
            progress.wait(lambda: all(r.is_set() for r in readies), args.timeout, children,
                          "the extractors did not start")
            # the group is settled: every partition has one owner (and every extractor one partition, if enough),
            # unchanged for 2 s
            progress.wait(lambda: balanced(progress.assigned, consumers, partitions)
                          and time.monotonic() - progress.changed_at > 2.0, args.timeout, children,
                          f"the consumer group did not settle on {partitions} partitions over {consumers} members")
            settled = dict(progress.assigned)
            w_payloads, w_keys, w_parts = warmup_plan(warmup, partitions)
            _, warm_placed = asyncio.run(_publish(settings.kafka_bootstrap_servers, settings.input_topic,
                                                  w_payloads, w_keys, w_parts))
            progress.wait(lambda: all(k in progress.done for k in w_keys), args.timeout, children,
                          "warm-up notes were not processed")
            changes_before = len(progress.assignment_log)
            cpu_before, busy_before = rss.cpu_seconds(), machine_busy_seconds()
            keys = note_keys(payloads)
            published, placed = asyncio.run(_publish(settings.kafka_bootstrap_servers, settings.input_topic,
                                                     payloads, keys))
            progress.wait(lambda: all(k in progress.done for k in keys), args.timeout, children,
                          "not every note was stored or dead-lettered")
            cpu_after, busy_after = rss.cpu_seconds(), machine_busy_seconds()
        finally:
            stop.set()
            import queue as queue_mod

            for _ in children:
                try:
                    results.append(out.get(timeout=120))
                except queue_mod.Empty:
                    break
            for child in children:
                child.join(60)
                if child.is_alive():
                    child.kill()
        progress.drain(0)
        rebalances = [{"at_s": round(at - published, 2), "extractor": idx, "partitions": parts}
                      for at, idx, parts in progress.assignment_log[changes_before:]]
        n_dead = sum(r["dead_lettered"] for r in results)
        dead = asyncio.run(read_dead_letters(settings, n_dead))
    warm = set(w_keys)
    results.sort(key=lambda r: r["index"])
    all_timed = [(r["index"], t) for r in results for t in r["timings"] if t[2] not in warm and t[6] != "abandoned"]
    first: dict[str, tuple[int, Any]] = {}
    for idx, t in sorted(all_timed, key=lambda x: x[1][5]):
        first.setdefault(t[2], (idx, t))
    timed = [t for _, t in first.values()]
    warm_offsets = {(p, o) for r in results for (p, o, k, *_rest) in r["timings"] if k in warm}
    seconds = max(t[5] for t in timed) - published
    windows = count_windows(payloads, args)
    per_extractor = []
    for r in results:
        mine = [t for idx, t in all_timed if idx == r["index"]]
        per_extractor.append({
            "extractor": r["index"], "partitions_at_start": settled.get(r["index"], []),
            "partitions_at_end": r["assignments"][-1][1] if r["assignments"] else [],
            "notes": len(mine), "stored": sum(1 for t in mine if t[6] == "stored"),
            "dead_lettered": sum(1 for t in mine if t[6] == "dead_lettered"),
            "peak_rss_mb": max(rss.peak_mb.get(f"extractor-{r['index']}", 0.0), r["peak_rss_mb"])})
    def used(name: str, alone: bool = False) -> float:
        k = 1 if alone else 0
        return cpu_after[name][k] - cpu_before[name][k] if name in cpu_after and name in cpu_before else 0.0

    machine_cpu = busy_after - busy_before
    extractor_cpu = sum(used(name) for name in cpu_after if name.startswith("extractor-"))
    cpu_seconds = {"triton": used("triton"),
                   "triton server process (without the Python-backend stub)": used("triton", alone=True),
                   "extractors": extractor_cpu,
                   "rest (broker, database, API, this benchmark)": machine_cpu - used("triton") - extractor_cpu,
                   "machine": machine_cpu}
    cpu_ms_per_note = {k: round(1000 * v / max(1, len(payloads)), 1) for k, v in cpu_seconds.items()}
    return {"notes": len(timed), "stored": sum(1 for t in timed if t[6] == "stored"),
            "dead_lettered": sum(1 for t in timed if t[6] == "dead_lettered"),
            "dead_letters": [{"code": d["code"], "reason": d["reason"], "source_partition": d["source_partition"],
                              "source_offset": d["source_offset"]} for d in dead
                             if (int(d["source_partition"] or 0), int(d["source_offset"] or 0)) not in warm_offsets],
            "redelivered": len(all_timed) - len(timed),
            "seconds": round(seconds, 2), "notes_per_s": round(len(timed) / seconds, 3),
            "windows": windows, "windows_per_s": round(windows / seconds, 2),
            "latency_s": {"service": percentiles([t[5] - t[4] for t in timed]),
                          "end_to_end": percentiles([t[5] - t[3] for t in timed])},
            "peak_rss_mb": {"extractor": max((e["peak_rss_mb"] for e in per_extractor), default=0.0),
                            "extractors_total": round(sum(e["peak_rss_mb"] for e in per_extractor), 1),
                            "triton": rss.peak_mb.get("triton")},
            "cpu_ms_per_note": cpu_ms_per_note,
            "consumers": consumers, "partitions": partitions,
            "published_per_partition": dict(sorted(Counter(placed).items())),
            "warmup_per_partition": dict(sorted(Counter(warm_placed).items())),
            "extractors": per_extractor, "rebalances_during_run": rebalances,
            "kafka_session_timeout_ms": session_ms,
            "protocol": args.protocol, "max_in_flight": args.max_in_flight}


def count_windows(payloads: list[bytes], args: argparse.Namespace) -> int:
    """The model's input windows of these notes (the same for both runs)."""
    from clinie.fhir.docref import parse_document_reference
    from clinie.model.checkpoint import load_model_spec
    from clinie.model.encode import preprocess
    from clinie.model.repository import version_dir

    config, _, tokenizer = load_model_spec(version_dir(args.model_repository, "clinie_ie", args.model_version or None))
    return sum(preprocess(parse_document_reference(p, max_chars=10**7).document, tokenizer, config)
               .encoded.input_ids.shape[0] for p in payloads)


# --- main ----------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import torch

    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def write_report(report: dict[str, Any], path: Path | None) -> None:
    """The JSON result on stdout, and in ``path`` when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from clinie.model.repository import default_repository

    ap = argparse.ArgumentParser(prog="python -m benchmarks.stream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT,
                    help="ACI-Bench style {id,text} JSON lines, or DocumentReference NDJSON (default: the ACI notes)")
    ap.add_argument("--notes", type=int, default=None, help="first N notes (default: all)")
    ap.add_argument("--max-in-flight", type=int, default=4, help="notes in flight in the extractor (default 4)")
    ap.add_argument("--protocol", choices=("http", "grpc"), default="http", help="transport to Triton")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch threads of the model-only run (default: all CPUs)")
    ap.add_argument("--model-repository", type=Path, default=default_repository())
    ap.add_argument("--model-version", default="", help="default: the highest version in the repository")
    ap.add_argument("--partitions", type=int, default=1, help="partitions of the input topic (default 1)")
    ap.add_argument("--consumers", type=int, default=1,
                    help="extractor processes in one consumer group (default 1)")
    ap.add_argument("--session-timeout-ms", type=int, default=1000,
                    help="the extractors' Kafka session timeout; heartbeat = 1/5 of it (default 1000)")
    ap.add_argument("--database-url", default=None, help="PostgreSQL to use (default: an embedded one)")
    ap.add_argument("--skip-model-only", action="store_true", help="pipeline only (no ratio)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from clinie.model.repository import version_dir

    args = parse_args(argv)
    payloads = load_notes(args.input, args.notes)
    warmup = [json.dumps({**json.loads(p), "id": f"warmup-{i}"}).encode() for i, p in enumerate(payloads[:WARMUP])]
    version = version_dir(args.model_repository, "clinie_ie", args.model_version or None).name
    report: dict[str, Any] = {"input": str(args.input), "notes": len(payloads), "machine": machine()}
    print(f"{len(payloads)} notes from {args.input.name}; model clinie_ie/{version}", file=sys.stderr)
    if not args.skip_model_only:
        report["model_only"] = run_model_only(payloads, args, version)
        print(f"model only: {report['model_only']['notes_per_s']} notes/s", file=sys.stderr)
    report["pipeline"] = run_pipeline(payloads, warmup, args)
    print(f"pipeline: {report['pipeline']['notes_per_s']} notes/s", file=sys.stderr)
    if "model_only" in report:
        report["ratio"] = round(report["pipeline"]["notes_per_s"] / report["model_only"]["notes_per_s"], 3)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_report(report, args.json)
    return report


if __name__ == "__main__":
    main()
