"""Inference speed (and, with ``--gold``, accuracy) of a clinie model with the in-process backend, per variant.

No timing assertions: this only measures. ``--variant`` swaps the encoder for a quantised / exported one
(``benchmarks/variants.py``); ``--gold`` also scores the variant's predictions on a gold set with
``clinie.evaluate.score`` (the same stages as ``clinie evaluate``: assertions and normalisation).

    .venv/bin/python -m benchmarks.model_speed --model model_repo/clinie_ie/4 \
        --input ../shared/data/notes/aci_bench_notes.jsonl --limit 0 --threads 2 --batch-windows 1 16 \
        --variant int8 --gold ../shared/data/corpus/aci-notes-test.jsonl --json benchmarks/results/model_int8.json

Prints a markdown table: batch size, seconds, windows/s, pieces/s, notes/s (model + decode + postprocess, no
normalisation stages); then strict entity/relation F1 on the gold set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.variants import VARIANTS, apply_variant
from clinie.backends.torch_backend import TorchBackend
from clinie.evaluate import score
from clinie.io import read_documents
from clinie.model.encode import preprocess
from clinie.pipeline import Annotator


def machine(threads: int) -> dict[str, Any]:
    """CPU model, cores, torch version, threads and the 1-minute load average, for the results."""
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "threads": threads,
            "loadavg": list(os.getloadavg())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--input", type=Path, required=True, help="JSONL with id and text")
    ap.add_argument("--limit", type=int, default=100, help="first N notes (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-windows", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--variant", choices=VARIANTS, default="fp32")
    ap.add_argument("--gold", type=Path, help="gold JSONL to score the variant on (strict/lenient F1)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    docs = [d.without_annotations() for d in read_documents(args.input)]
    docs = docs[: args.limit] if args.limit else docs
    backend = TorchBackend.from_dir(args.model)
    t0 = time.perf_counter()
    apply_variant(backend.net, args.variant, threads=args.threads)
    prepare_s = time.perf_counter() - t0
    config = backend.net.config
    prepared = [preprocess(d, backend.tokenizer, config) for d in docs]
    windows = sum(p.encoded.input_ids.shape[0] for p in prepared)
    pieces = sum(p.encoded.num_tokens for p in prepared)
    info = machine(args.threads)
    print(f"model {args.model} ({args.variant}, prepared in {prepare_s:.1f} s), {len(docs)} notes, {windows} windows"
          f" of <= {config.max_segment_tokens} pieces, {pieces} pieces; {info}")
    print()
    print("| batch windows | seconds | CPU seconds | windows/s | pieces/s | notes/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    Annotator(backend, backend.tokenizer, config).annotate(docs[:2])  # warm-up
    rows = []
    for bw in args.batch_windows:
        extractor = Annotator(backend, backend.tokenizer, config, batch_windows=bw)
        start, cpu = time.perf_counter(), time.process_time()
        n = sum(1 for _ in extractor.pipe(docs))
        secs, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows.append({"batch_windows": bw, "seconds": round(secs, 2), "cpu_seconds": round(cpu, 2),
                     "windows_per_s": round(windows / secs, 2),
                     "pieces_per_s": round(pieces / secs), "notes_per_s": round(n / secs, 3)})
        print(f"| {bw} | {secs:.1f} | {cpu:.1f} | {windows / secs:.1f} | {pieces / secs:.0f} | {n / secs:.2f} |")
    result: dict[str, Any] = {
        "model": str(args.model), "variant": args.variant, "input": str(args.input), "notes": len(docs),
        "windows": windows, "pieces": pieces, "prepare_s": round(prepare_s, 2), "machine": info, "speed": rows,
    }
    if args.gold:
        from clinie.normalize import default_stages

        gold = read_documents(args.gold)
        extractor = Annotator(backend, backend.tokenizer, config, batch_windows=32, stages=default_stages())
        report = score(gold, list(extractor.pipe(d.without_annotations() for d in gold)))
        acc = {f"{m}_{k}_f1": round(report.micro(m, k).f1, 4) for m in ("strict", "lenient")
               for k in ("entities", "relations")}
        acc["negation_accuracy"] = round(report.negation_agree / report.negation_total, 4) \
            if report.negation_total else 0.0
        acc["negated_f1"] = round(report.negation.f1, 4)
        acc["strict_counts"] = {k: report.micro("strict", k).as_dict() for k in ("entities", "relations")}
        by_label = {lab: round(c.f1, 4) for lab, c in sorted(report.by_label["strict"]["entities"].items())}
        result["gold"] = {"path": str(args.gold), "documents": report.documents, **acc,
                          "strict_entity_f1_by_label": by_label}
        print(f"\n{args.gold.name}: {report.documents} notes; " + ", ".join(f"{k} {v}" for k, v in acc.items()))
    result["machine_after"] = {"loadavg": list(os.getloadavg()),
                               "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
