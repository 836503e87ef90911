"""Inference speed of a clinie model with the in-process backend (no timing assertions: this only measures).

    .venv/bin/python benchmarks/model_speed.py --model model_repo/clinie_ie/1 \
        --input ../shared/data/notes/aci_bench_notes.jsonl --threads 2

Prints a markdown table: notes, windows, word pieces, seconds, windows/s, pieces/s, notes/s per batch size.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from clinie.backends.torch_backend import TorchBackend
from clinie.io import read_documents
from clinie.model.encode import preprocess
from clinie.pipeline import Annotator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--input", type=Path, required=True, help="JSONL with id and text")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-windows", type=int, nargs="+", default=[1, 8, 32])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    docs = [d.without_annotations() for d in read_documents(args.input)[: args.limit]]
    backend = TorchBackend.from_dir(args.model)
    config = backend.net.config
    prepared = [preprocess(d, backend.tokenizer, config) for d in docs]
    windows = sum(p.encoded.input_ids.shape[0] for p in prepared)
    pieces = sum(p.encoded.num_tokens for p in prepared)
    print(f"model {args.model}, {len(docs)} notes, {windows} windows of <= {config.max_segment_tokens} pieces, "
          f"{pieces} pieces; torch {torch.__version__}, {args.threads} threads, {platform.processor() or 'cpu'}")
    print()
    print("| batch windows | seconds | windows/s | pieces/s | notes/s |")
    print("| --- | --- | --- | --- | --- |")
    Annotator(backend, backend.tokenizer, config).annotate(docs[:2])  # warm-up
    for bw in args.batch_windows:
        extractor = Annotator(backend, backend.tokenizer, config, batch_windows=bw)
        start = time.perf_counter()
        n = sum(1 for _ in extractor.pipe(docs))
        secs = time.perf_counter() - start
        print(f"| {bw} | {secs:.1f} | {windows / secs:.1f} | {pieces / secs:.0f} | {n / secs:.2f} |")


if __name__ == "__main__":
    main()
