"""Streaming throughput vs extractor replicas: 1, 2, 4 extractors in one consumer group on a 4-partition topic.

    .venv/bin/python -m benchmarks.stream_scaling --notes 207 --partitions 4 --consumers 1 2 4 \\
        --max-in-flight 4 --protocol grpc --json runs/stream-scaling.json

For every consumer count, ``benchmarks.stream.run_pipeline`` on a fresh local stack (Tansu, tritonserver,
PostgreSQL; one tritonserver shared by the extractors): the input topic is created with ``--partitions``
partitions, ``N`` extractor processes (``build_service``, each its own interpreter, database engine and in-flight
window: replicas) join the group ``clinie-extractor``; once every partition has one owner (and every extractor
one partition, when there are enough) and the assignment has not changed for 2 s, ``WARMUP`` notes go to every
partition, then all notes are published at once, keyed by note id (Kafka's default partitioner spreads them). The
run ends when every note is stored or dead-lettered. Delivery is the service's own: offsets are committed after
storage; a note redelivered after a rebalance counts once (its first finish) and the redeliveries are reported.

Reported per consumer count: notes/s, windows/s, latency percentiles, notes per extractor and the partitions it
owned, peak RSS per extractor, assignment changes during the measured window, and the model alone once (optional,
``--model-only``) for scale. Never a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.stream import DEFAULT_INPUT, WARMUP, load_notes, machine, run_model_only, run_pipeline, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from clinie.model.repository import default_repository

    ap = argparse.ArgumentParser(prog="python -m benchmarks.stream_scaling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    ap.add_argument("--notes", type=int, default=None, help="first N notes (default: all)")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of the input topic (default 4)")
    ap.add_argument("--consumers", type=int, nargs="+", default=[1, 2, 4],
                    help="extractor counts, one run each (default 1 2 4)")
    ap.add_argument("--max-in-flight", type=int, default=4, help="notes in flight per extractor (default 4)")
    ap.add_argument("--protocol", choices=("http", "grpc"), default="grpc")
    ap.add_argument("--session-timeout-ms", type=int, default=10_000,
                    help="the extractors' Kafka session timeout; heartbeat = 1/5 of it (default 10000, the "
                    "service's default: with 1000, heartbeats of CPU-bound extractors miss and the group rebalances "
                    "over and over)")
    ap.add_argument("--model-only", action="store_true", help="also run the model alone once (for scale)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the model-only run")
    ap.add_argument("--model-repository", type=Path, default=default_repository())
    ap.add_argument("--model-version", default="")
    ap.add_argument("--database-url", default=None, help="PostgreSQL to use (default: an embedded one per run)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.database_url is not None:
        ap.error("--database-url: each run needs an empty database; leave it to the embedded one")
    return args


def table(runs: list[dict[str, Any]]) -> str:
    """The docs table: one row per consumer count."""
    rows = ["| extractors | partitions owned at start | notes/s | x vs 1 | windows/s | service p50 / p95 s "
            "| end-to-end p50 / p95 s | notes per extractor | peak RSS per extractor MB | Triton MB "
            "| rebalances in run |",
            "|---:|---|---:|---:|---:|---|---|---|---|---:|---:|"]
    base = runs[0]["notes_per_s"] if runs and runs[0]["consumers"] == 1 else None
    for r in runs:
        ex = r["extractors"]
        svc, e2e = r["latency_s"]["service"], r["latency_s"]["end_to_end"]
        speedup = f"{r['notes_per_s'] / base:.2f}" if base else "-"
        rss = " / ".join(f"{e['peak_rss_mb']:,.0f}" for e in ex)
        rows.append(
            f"| {r['consumers']} | {' / '.join(','.join(map(str, e['partitions_at_start'])) or '-' for e in ex)} "
            f"| {r['notes_per_s']:.2f} | {speedup} | {r['windows_per_s']:.1f} | {svc['p50']} / {svc['p95']} "
            f"| {e2e['p50']} / {e2e['p95']} | {' / '.join(str(e['notes']) for e in ex)} "
            f"| {rss} | {r['peak_rss_mb']['triton'] or 0:,.0f} "
            f"| {len(r['rebalances_during_run'])} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from clinie.model.repository import version_dir

    args = parse_args(argv)
    payloads = load_notes(args.input, args.notes)
    warmup = [json.dumps({**json.loads(p), "id": f"warmup-{i}"}).encode() for i, p in enumerate(payloads[:WARMUP])]
    version = version_dir(args.model_repository, "clinie_ie", args.model_version or None).name
    report: dict[str, Any] = {"input": str(args.input), "notes": len(payloads), "partitions": args.partitions,
                              "model_version": f"clinie_ie/{version}", "machine": machine(), "runs": []}
    print(f"{len(payloads)} notes from {args.input.name}; model clinie_ie/{version}", file=sys.stderr)
    if args.model_only:
        report["model_only"] = run_model_only(payloads, args, version)
        print(f"model only: {report['model_only']['notes_per_s']} notes/s", file=sys.stderr)
    for n in args.consumers:
        run_args = argparse.Namespace(**{**vars(args), "consumers": n})
        result = run_pipeline(payloads, warmup, run_args)
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        report["runs"].append(result)
        print(f"{n} extractor(s), {args.partitions} partitions: {result['notes_per_s']} notes/s", file=sys.stderr)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["table"] = table(report["runs"])
    write_report(report, args.json)
    print(report["table"], file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
