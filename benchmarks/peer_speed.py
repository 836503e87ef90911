"""The medspaCy peer (dictionary drug tagger + ConText) on the same notes and machine as the model benchmarks.

Needs the ``baseline`` extra (``pip install -e '.[baseline]'``)::

    .venv/bin/python -m benchmarks.peer_speed --input ../shared/data/notes/aci_bench_notes.jsonl \
        --gold ../shared/data/corpus/aci-notes-test.jsonl --json benchmarks/results/peer_medspacy.json

Speed: per note, the dictionary drug tagger on the text, then medspaCy (PyRuSH sentences + ConText) over the
drugs it found: a full note-in, annotations-out pass of the peer, one note at a time, one process.
Accuracy on ``--gold`` with ``clinie.evaluate.score``: the tagger's Drug mentions (it finds no other label and no
relations), and ConText's ``negated`` on the gold Problem mentions (as in ``benchmarks/baseline.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.baseline_systems import DRUG, ConTextNegation, DictionaryDrugTagger, score_negation
from benchmarks.model_speed import machine
from clinie.evaluate import score
from clinie.io import read_documents


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--gold", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    docs = [d.without_annotations() for d in read_documents(args.input)]
    docs = docs[: args.limit] if args.limit else docs
    tagger, ctx = DictionaryDrugTagger(), ConTextNegation()
    t0 = time.perf_counter()
    tagger(docs[0])
    ctx.annotate(tagger(docs[0]), label=DRUG)  # loads the dictionary and the spaCy pipeline
    load_s = time.perf_counter() - t0
    info = machine(1)
    t0, c0 = time.perf_counter(), time.process_time()
    tag_s = 0.0
    for d in docs:
        t1 = time.perf_counter()
        tagged = tagger(d)
        tag_s += time.perf_counter() - t1
        ctx.annotate(tagged, label=DRUG)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    chars = sum(len(d.text) for d in docs)
    speed = {"notes": len(docs), "chars": chars, "load_s": round(load_s, 2), "seconds": round(wall, 2),
             "cpu_seconds": round(cpu, 2), "notes_per_s": round(len(docs) / wall, 2),
             "tagger_s": round(tag_s, 2), "context_s": round(wall - tag_s, 2)}
    print(f"peer on {len(docs)} notes: {wall:.1f} s ({cpu:.1f} s CPU), {len(docs) / wall:.2f} notes/s; tagger "
          f"{tag_s:.1f} s, ConText {wall - tag_s:.1f} s; load {load_s:.1f} s; {info}")
    gold = read_documents(args.gold)
    report = score(gold, [tagger(d.without_annotations()) for d in gold])
    drug_s, drug_l = report.by_label["strict"]["entities"][DRUG], report.by_label["lenient"]["entities"][DRUG]
    targets = [d.with_annotations(entities=[replace(e, negated=False) for e in d.entities if e.label == "Problem"],
                                  relations=[]) for d in gold]
    neg = score_negation(gold, [ctx.annotate(d) for d in targets])
    acc = {"strict_entities_f1": round(report.micro("strict", "entities").f1, 4),
           "strict_relations_f1": round(report.micro("strict", "relations").f1, 4),
           "drug_strict": drug_s.as_dict(), "drug_lenient": drug_l.as_dict(),
           "context_negation_on_gold_problems": neg.as_dict()}
    print(f"{args.gold.name}: all-label strict entity F1 {acc['strict_entities_f1']}, relation F1 "
          f"{acc['strict_relations_f1']}; Drug strict P/R/F1 {drug_s.precision:.3f}/{drug_s.recall:.3f}/"
          f"{drug_s.f1:.3f}, lenient F1 {drug_l.f1:.3f}; ConText on {neg.total} gold Problems: accuracy "
          f"{neg.accuracy:.3f}, negated P/R/F1 {neg.precision:.3f}/{neg.recall:.3f}/{neg.f1:.3f}")
    result: dict[str, Any] = {
        "input": str(args.input), "machine": info, "speed": speed, "gold": {"path": str(args.gold), **acc},
        "versions": {p: metadata.version(p) for p in ("medspacy", "spacy", "drug-named-entity-recognition")},
        "loadavg_after": list(os.getloadavg()),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
