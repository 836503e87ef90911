"""Assertion flags of the rules on GOLD spans (no model, no normalisation): P/R/F1 of each flag, one row per corpus.

    python benchmarks/assertion_eval.py ../shared/data/corpus/aci-notes-dev.jsonl \
        corpora/aci-notes-train/aci-notes-train.jsonl [--fold 4/5] [--json out.json]

``--system context`` scores medspaCy's ConText instead (default rules, PyRuSH sentences; ``pip install
medspacy``; ``benchmarks.baseline_systems.ConTextNegation.annotate_flags``): the baseline the issue asks for.

``--fold K/N`` keeps, of every corpus whose name contains "train", only the notes at positions i with i % N == K
(the silver held-out fold: positions 4, 9, 14, ... of ``aci-notes-train.jsonl`` for ``4/5``); other corpora are
scored whole. Every attribute is cleared first, the rules (``AssertionTagger(negation=True)``) run, and
``clinie.evaluate.score`` compares with the gold, as ``benchmarks/normalize_eval.py`` does for the flags.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clinie.document import Document
from clinie.evaluate import score
from clinie.io import read_documents
from clinie.normalize.context import AssertionTagger
from clinie.normalize.stage import strip_normalization as strip
from clinie.schema import NEGATABLE_LABELS

FLAGS = ("negated", "uncertain", "hypothetical", "historical")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gold", type=Path, nargs="+")
    ap.add_argument("--fold", default=None, help="K/N: only notes i %% N == K of the *train* corpora")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--system", choices=("clinie", "context"), default="clinie",
                    help="clinie's rules (default) or the medspaCy ConText baseline")
    args = ap.parse_args()
    if args.system == "context":
        from benchmarks.baseline_systems import ConTextNegation

        ctx = ConTextNegation()

        def tagger(doc: Document) -> Document:
            return ctx.annotate_flags(doc, NEGATABLE_LABELS)
    else:
        tagger = AssertionTagger(negation=True)
    out: dict[str, dict[str, object]] = {}
    for path in args.gold:
        docs = read_documents(path)
        name = path.stem
        if args.fold and "train" in path.name:
            k, n = (int(x) for x in args.fold.split("/"))
            docs = [d for i, d in enumerate(docs) if i % n == k]
            name = f"{name}[{k}/{n}]"
        report = score(docs, [tagger(strip(d)) for d in docs])
        out[name] = {"notes": len(docs), **{f: report.flags[f].as_dict() for f in FLAGS}}
        print(f"{name} ({len(docs)} notes)")
        for f in FLAGS:
            c = report.flags[f]
            print(f"  {f:<12} P {c.precision:.3f}  R {c.recall:.3f}  F1 {c.f1:.3f}  (tp {c.tp}, fp {c.fp}, fn {c.fn})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
