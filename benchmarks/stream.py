"""Streaming throughput: Kafka -> extractor -> Triton -> PostgreSQL, against the model alone, in one run.

    .venv/bin/python -m benchmarks.stream --notes 207 --max-in-flight 4 --protocol http --json runs/stream.json

1. **Model only**: the in-process torch backend of the version Triton will serve, the same notes, the same pre- and
   post-processing (``Extractor`` with the default stages), ``--max-in-flight`` notes at a time on ``--threads``
   torch threads, in a child process (its own peak RSS).
2. **Pipeline**: the project's local stack (``services.stack.LocalStack``: Tansu, tritonserver, PostgreSQL); the
   extractor runs in a child process (``build_service``, ``--max-in-flight``, ``--protocol``). After two warm-up
   notes are stored, all notes are published at once; the run ends when every note is stored or dead-lettered
   (dead-lettered notes count as done and are listed with their error code).

Reported: notes/s and windows/s of both (windows = the model's input windows of the notes), their ratio, per-note
latency percentiles (``service``: from the extractor taking the message to its storage; ``end_to_end``: from the
producer's timestamp to storage, which includes the wait in the backlog), peak RSS of the extractor process and of
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
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        annotated = list(pool.map(lambda d: extractor.annotate([d])[0], docs))
    seconds = time.perf_counter() - started
    windows = sum(len(d.segments) for d in annotated)
    out.put({"notes": len(docs), "windows": windows, "seconds": round(seconds, 2),
             "notes_per_s": round(len(docs) / seconds, 3), "windows_per_s": round(windows / seconds, 2),
             "peak_rss_mb": peak_rss_mb(), "torch_threads": threads, "concurrent_notes": in_flight,
             "model_version": f"clinie_ie/{vdir.name}"})


def run_model_only(payloads: list[bytes], args: argparse.Namespace, version: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out: mp.Queue[Any] = ctx.Queue()
    proc = ctx.Process(target=_model_only, args=(payloads, str(args.model_repository), version, args.threads,
                                                 args.max_in_flight, out))
    proc.start()
    result: dict[str, Any] = out.get(timeout=args.timeout)
    proc.join(60)
    return result


# --- extractor (child process) -------------------------------------------------------------------------------------


def _extractor(settings_fields: dict[str, Any], expected: int, done: Any, ready: Any, out: mp.Queue[Any]) -> None:
    import logging

    from services.extractor.app import ExtractorService
    from services.extractor.main import build_service
    from services.settings import ExtractorSettings

    logging.getLogger("faststream").setLevel(logging.WARNING)  # one INFO line per message otherwise
    settings = ExtractorSettings(**settings_fields)
    # (offset, producer timestamp, taken, finished, outcome)
    timings: list[tuple[int, float, float, float, str]] = []

    class TimedService(ExtractorService):
        async def _process(self, msg: Any) -> bool:
            taken, stored, dead = time.time(), self.processed, self.dead_lettered
            ok = await super()._process(msg)
            outcome = ("stored" if self.processed > stored else "dead_lettered" if self.dead_lettered > dead
                       else "abandoned")
            rec = msg.raw_message
            timings.append((rec.offset, rec.timestamp / 1000, taken, time.time(), outcome))
            done.value = self.processed + self.dead_lettered
            return ok

    async def main() -> dict[str, Any]:
        base = build_service(settings)
        service = TimedService(settings, base.processor, base.metrics)
        broker = service.create_broker()
        await broker.start()
        ready.set()
        try:
            while service.processed + service.dead_lettered < expected:
                await asyncio.sleep(0.05)
        finally:
            await service.shutdown()
            await broker.stop()
        return {"processed": service.processed, "dead_lettered": service.dead_lettered, "timings": timings,
                "peak_rss_mb": peak_rss_mb()}

    out.put(asyncio.run(main()))


async def _publish(bootstrap: str, topic: str, payloads: list[bytes]) -> float:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all",
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        started = time.time()
        for p in payloads:
            key = str(json.loads(p).get("id", "")).encode() or None
            await producer.send(topic, p, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return started


def run_pipeline(payloads: list[bytes], warmup: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    from clinie.storage.db import migrate
    from services.extractor.demo import read_dead_letters
    from services.settings import ExtractorSettings
    from services.stack.kafka import create_topics
    from services.stack.local import LocalStack

    work = Path(tempfile.mkdtemp(prefix="clinie-bench-stream-"))
    with LocalStack(work, args.model_repository, database_url=args.database_url) as stack, RssSampler() as rss:
        env = stack.env()
        triton_url = stack.triton.grpc_url if args.protocol == "grpc" else stack.triton.http_url
        settings = ExtractorSettings(kafka_bootstrap_servers=env["CLINIE_KAFKA_BOOTSTRAP_SERVERS"],
                                     triton_url=triton_url, triton_protocol=args.protocol,
                                     database_url=env["CLINIE_DATABASE_URL"], model_repository=args.model_repository,
                                     model_version=args.model_version, max_in_flight=args.max_in_flight,
                                     max_note_chars=10**7, kafka_session_timeout_ms=1000,
                                     kafka_heartbeat_interval_ms=200)
        migrate(settings.database_dsn)
        create_topics(settings.kafka_bootstrap_servers, [settings.input_topic, settings.dead_letter_topic])
        if stack.triton.pid is not None:
            rss.watch("triton", stack.triton.pid)
        ctx = mp.get_context("spawn")
        done, ready, out = ctx.Value("i", 0), ctx.Event(), ctx.Queue()
        expected = len(warmup) + len(payloads)
        fields = {**settings.model_dump(mode="json"), "database_url": settings.database_dsn}
        child = ctx.Process(target=_extractor, args=(fields, expected, done, ready, out))
        child.start()
        assert child.pid is not None
        rss.watch("extractor", child.pid)
        if not ready.wait(args.timeout):
            raise TimeoutError("the extractor did not start")
        asyncio.run(_publish(settings.kafka_bootstrap_servers, settings.input_topic, warmup))
        deadline = time.monotonic() + args.timeout
        while done.value < len(warmup):
            if time.monotonic() > deadline or not child.is_alive():
                raise TimeoutError("warm-up notes were not processed")
            time.sleep(0.05)
        published = asyncio.run(_publish(settings.kafka_bootstrap_servers, settings.input_topic, payloads))
        result: dict[str, Any] = out.get(timeout=args.timeout)
        child.join(60)
        dead = asyncio.run(read_dead_letters(settings, result["dead_lettered"]))
    timed = [t for t in result["timings"] if t[0] >= len(warmup)]  # warm-up notes are offsets 0..WARMUP-1
    seconds = max(t[3] for t in timed) - published
    windows = count_windows(payloads, args)
    return {"notes": len(timed), "stored": sum(1 for t in timed if t[4] == "stored"),
            "dead_lettered": sum(1 for t in timed if t[4] == "dead_lettered"),
            "dead_letters": [{"code": d["code"], "reason": d["reason"], "source_offset": d["source_offset"]}
                             for d in dead if int(d["source_offset"] or 0) >= len(warmup)],
            "seconds": round(seconds, 2), "notes_per_s": round(len(timed) / seconds, 3),
            "windows": windows, "windows_per_s": round(windows / seconds, 2),
            "latency_s": {"service": percentiles([t[3] - t[2] for t in timed]),
                          "end_to_end": percentiles([t[3] - t[1] for t in timed])},
            "peak_rss_mb": {"extractor": max(rss.peak_mb.get("extractor", 0.0), result["peak_rss_mb"]),
                            "triton": rss.peak_mb.get("triton")},
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
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
