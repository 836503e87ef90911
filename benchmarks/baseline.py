"""Score the published baseline (dictionary drug tagger + medspaCy ConText negation) with clinie's evaluator.

Needs the optional packages (``pip install -e '.[baseline]'``, or the separate ``.venv-baseline``)::

    .venv-baseline/bin/python benchmarks/baseline.py --out runs/baseline --report docs/baseline-results.md

Writes ``<out>/<set>.pred.jsonl`` (Drug predictions), ``<out>/<set>.negation.jsonl`` (MACCROBAT gold
Problems with ConText's ``negated``), ``<out>/baseline.json`` (all numbers) and ``<out>/baseline.md``
(also to ``--report``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.baseline_systems import DRUG, ConTextNegation, DictionaryDrugTagger, NegationCounts, score_negation
from clinie.document import Document
from clinie.evaluate import Counts, Report, score
from clinie.io import read_documents, write_documents

REPO = Path(__file__).resolve().parents[1]
TEST_SETS = {"phee-dev": "phee-dev.jsonl", "maccrobat-test": "maccrobat-test.jsonl"}
NEGATION_SET = "maccrobat-test"
NOTES = [
    "- Error sources seen in the predictions (`<out>/*.pred.jsonl`): PHEE annotates a drug only where "
    "it takes part in an adverse-event or treatment event, so a correct dictionary hit elsewhere in the "
    "sentence is a false positive; gold Drugs include classes, abbreviations and procedures that the "
    "dictionary lacks (chemotherapy, steroids, MTX, general anaesthesia); the dictionary also matches "
    "proteins and lab analytes (troponin I, alanine transaminase, parathyroid hormone) and odd brand "
    'names ("AT 10").',
    "- `find_drugs` looks up unigrams and bigrams only, although its dictionary also holds longer names.",
    "- Timings are wall clock on the machine named above; on a shared machine they vary from run to run.",
]


def _default_data() -> Path:
    return Path(os.environ.get("CLINIE_SHARED_DATA", REPO.parent / "shared" / "data"))


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _fmt(c: Counts) -> str:
    return f"{c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.tp} | {c.fp} | {c.fn}"


def run_drugs(name: str, gold: list[Document], tagger: DictionaryDrugTagger, out: Path) -> dict[str, Any]:
    inputs = [d.without_annotations() for d in gold]
    t0 = time.perf_counter()
    preds = [tagger(d) for d in inputs]
    wall = time.perf_counter() - t0
    write_documents(out / f"{name}.pred.jsonl", preds)
    report = score(gold, preds)
    return {
        "report": report,
        "wall_s": wall,
        "docs": len(gold),
        "chars": sum(len(d.text) for d in gold),
        "pred_drugs": sum(len(p.entities) for p in preds),
    }


def run_negation(gold: list[Document], ctx: ConTextNegation, out: Path) -> dict[str, Any]:
    # the targets are the gold Problem spans; every other annotation is dropped, and negated starts False
    targets = [
        d.with_annotations(
            entities=[replace(e, negated=False) for e in d.entities if e.label == "Problem"], relations=[]
        )
        for d in gold
    ]
    t0 = time.perf_counter()
    preds = [ctx.annotate(d) for d in targets]
    wall = time.perf_counter() - t0
    write_documents(out / f"{NEGATION_SET}.negation.jsonl", preds)
    counts = score_negation(gold, preds)
    majority = score_negation(gold, targets)  # reference: never negated
    return {"counts": counts, "majority": majority, "wall_s": wall, "docs": len(gold)}


def to_markdown(
    results: dict[str, dict[str, Any]],
    ablation: dict[str, Report],
    negation: dict[str, Any] | None,
    meta: dict[str, Any],
) -> str:
    lines = [
        "# Baseline results: dictionary drug tagger + medspaCy ConText",
        "",
        "The published baseline that clinie's model is compared against, scored by `clinie.evaluate.score` "
        "(n2c2 2018 track 2 rules: strict = same label and exact offsets, lenient = same label and overlap, "
        "one-to-one) on the same test sets.",
        "",
        f"Command (from the repository root): `{meta['command']}`",
        "",
        f"Packages: drug-named-entity-recognition {meta['versions']['drug-named-entity-recognition']}, "
        f"medspacy {meta['versions']['medspacy']}, spacy {meta['versions']['spacy']}; "
        f"Python {meta['python']}, {meta['machine']}.",
        "",
        "- Drugs: `drug_named_entity_recognition.find_drugs` (exact unigram/bigram dictionary lookup; its "
        "fuzzy mode crashes in this version) over clinie's regex tokens mapped back to character offsets; a "
        "hyphenated word is looked up whole, then by its parts (`benchmarks/baseline_systems.py`). "
        "It predicts only Drug and no relations, so **the Drug row is the comparable number**; "
        "the micro rows count every other gold label as missed.",
        "- Negation: medspaCy ConText (default rules, PyRuSH sentences, blank English tokenizer) given the "
        "**gold** MACCROBAT Problem spans as targets; scored on those mentions only.",
        "",
        "## Drug (the comparable row)",
        "",
        "| test set | mode | P | R | F1 | TP | FP | FN |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        rep: Report = r["report"]
        for mode in ("strict", "lenient"):
            lines.append(f"| {name} | {mode} | {_fmt(rep.by_label[mode]['entities'][DRUG])} |")
    lines += [
        "",
        "Ablation, hyphenated words looked up whole only (not split into parts):",
        "",
        "| test set | mode | P | R | F1 | TP | FP | FN |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rep in ablation.items():
        for mode in ("strict", "lenient"):
            lines.append(f"| {name} | {mode} | {_fmt(rep.by_label[mode]['entities'][DRUG])} |")
    lines += ["", "## Negation of gold Problems (MACCROBAT test)", ""]
    if negation is None:
        lines.append("Not run (medspacy unavailable or `--no-negation`).")
    else:
        c: NegationCounts = negation["counts"]
        m: NegationCounts = negation["majority"]
        lines += [
            "| system | mentions | gold negated | pred negated | TP | FP | FN | TN | accuracy | "
            "P (negated) | R (negated) | F1 (negated) |",
            "| --- " * 12 + "|",
        ]
        for label, k in (("medspaCy ConText", c), ("reference: never negated", m)):
            lines.append(
                f"| {label} | {k.total} | {k.tp + k.fn} | {k.tp + k.fp} | {k.tp} | {k.fp} | {k.fn} | "
                f"{k.tn} | {k.accuracy:.3f} | {k.precision:.3f} | {k.recall:.3f} | {k.f1:.3f} |"
            )
    lines += [
        "",
        "## Speed",
        "",
        "| step | docs | chars | wall s | docs/s |",
        "| --- | --- | --- | --- | --- |",
        f"| load drug dictionary (once) | | | {meta['load_s']['drugs']:.2f} | |",
    ]
    for name, r in results.items():
        lines.append(
            f"| drug tagging, {name} | {r['docs']} | {r['chars']} | {r['wall_s']:.2f} | "
            f"{r['docs'] / r['wall_s']:.1f} |"
        )
    if negation is not None:
        lines.append(f"| load medspaCy (once) | | | {meta['load_s']['context']:.2f} | |")
        lines.append(
            f"| ConText negation, {NEGATION_SET} | {negation['docs']} | | {negation['wall_s']:.2f} | "
            f"{negation['docs'] / negation['wall_s']:.1f} |"
        )
    lines += ["", "## Notes", "", *NOTES]
    lines += ["", "## Full reports (all labels; the baseline predicts only Drug)", ""]
    for name, r in results.items():
        lines.append(r["report"].to_markdown(f"{name} ({r['docs']} docs, {r['pred_drugs']} predicted Drugs)"))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=_default_data() / "corpus", help="folder with the test JSONL"
    )
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "baseline", help="output folder")
    ap.add_argument("--report", type=Path, default=None, help="also write the markdown report here")
    ap.add_argument("--sets", nargs="+", default=list(TEST_SETS), choices=list(TEST_SETS))
    ap.add_argument("--no-negation", action="store_true", help="skip medspaCy ConText")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    exe = Path(sys.executable)
    exe_str = os.path.relpath(exe, Path.cwd()) if exe.is_relative_to(Path.cwd()) else str(exe)
    command = shlex.join([exe_str, "benchmarks/baseline.py", *(sys.argv[1:] if argv is None else argv)])
    meta: dict[str, Any] = {
        "command": command,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {
            p: _version(p) for p in ("drug-named-entity-recognition", "medspacy", "spacy", "PyRuSH")
        },
        "load_s": {},
    }
    tagger = DictionaryDrugTagger()
    t0 = time.perf_counter()
    tagger.find_drugs(["aspirin"])  # loads the dictionary, so that tagging times exclude it
    meta["load_s"]["drugs"] = time.perf_counter() - t0

    golds = {name: read_documents(args.data / TEST_SETS[name]) for name in args.sets}
    results = {name: run_drugs(name, gold, tagger, args.out) for name, gold in golds.items()}
    # ablation: whole-token lookup only (hyphenated words are not split into their parts)
    whole = DictionaryDrugTagger(split_hyphens=False, find_drugs=tagger.find_drugs)
    ablation = {
        name: score(gold, [whole(d.without_annotations()) for d in gold]) for name, gold in golds.items()
    }

    negation = None
    if not args.no_negation and NEGATION_SET in golds:
        ctx = ConTextNegation()
        t0 = time.perf_counter()
        _ = ctx.nlp
        meta["load_s"]["context"] = time.perf_counter() - t0
        negation = run_negation(golds[NEGATION_SET], ctx, args.out)

    md = to_markdown(results, ablation, negation, meta)
    numbers: dict[str, Any] = {"meta": meta, "sets": {}}
    for name, r in results.items():
        numbers["sets"][name] = {
            "docs": r["docs"],
            "chars": r["chars"],
            "pred_drugs": r["pred_drugs"],
            "wall_s": round(r["wall_s"], 3),
            "docs_per_s": round(r["docs"] / r["wall_s"], 2),
            "drug": {m: r["report"].by_label[m]["entities"][DRUG].as_dict() for m in ("strict", "lenient")},
            "report": r["report"].as_dict(),
            "drug_whole_tokens_only": {
                m: ablation[name].by_label[m]["entities"][DRUG].as_dict() for m in ("strict", "lenient")
            },
        }
    if negation is not None:
        numbers["negation"] = {
            "set": NEGATION_SET,
            "context": negation["counts"].as_dict(),
            "never_negated": negation["majority"].as_dict(),
            "wall_s": round(negation["wall_s"], 3),
            "docs_per_s": round(negation["docs"] / negation["wall_s"], 2),
        }
    (args.out / "baseline.json").write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    (args.out / "baseline.md").write_text(md, encoding="utf-8")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
