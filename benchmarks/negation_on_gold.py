"""Negation of the *gold* Problem spans by the model's negation head: the like-for-like comparison with ConText.

    .venv/bin/python benchmarks/negation_on_gold.py ../shared/data/corpus/maccrobat-test.jsonl [--model DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from clinie.backends.torch_backend import TorchBackend
from clinie.evaluate import Counts
from clinie.io import read_documents
from clinie.model.decode import span_negation
from clinie.model.encode import preprocess
from clinie.model.features import piece_span
from clinie.model.repository import default_repository, version_dir
from clinie.model.runtime import stack_notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gold", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--label", default="Problem")
    args = ap.parse_args()
    backend = TorchBackend.from_dir(args.model or version_dir(default_repository()))
    net = backend.net
    counts, agree, total = Counts(), 0, 0
    for doc in read_documents(args.gold):
        gold = [e for e in doc.entities if e.label == args.label]
        if not gold:
            continue
        prepared = preprocess(doc, backend.tokenizer, net.config)
        with torch.inference_mode():
            out = net(**stack_notes([prepared.inputs]))
        neg_logits = out.negation_logits[0, : int(out.lengths[0])].float().numpy()
        spans = np.asarray([piece_span(prepared.encoded.offsets, e.start, e.end) or (0, 1) for e in gold],
                           dtype=np.int64)
        probs = span_negation(neg_logits, spans)
        for e, p in zip(gold, probs, strict=True):
            pred = bool(p >= net.config.negation_threshold)
            total += 1
            agree += int(pred == e.negated)
            counts.tp += int(pred and e.negated)
            counts.fp += int(pred and not e.negated)
            counts.fn += int(e.negated and not pred)
    print(f"| clinie negation head | {total} | {counts.tp + counts.fn} | {counts.tp + counts.fp} | {counts.tp} | "
          f"{counts.fp} | {counts.fn} | {total - counts.tp - counts.fp - counts.fn} | {agree / total:.3f} | "
          f"{counts.precision:.3f} | {counts.recall:.3f} | {counts.f1:.3f} |")


if __name__ == "__main__":
    main()
