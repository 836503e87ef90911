"""Form-level ICD-10-CM accuracy of the condition linker on condition forms it has not seen.

    python benchmarks/icd_forms_eval.py [--forms corpora/aci-notes-train/condition-codes.tsv]
        [--tables data/conditions.tsv data/conditions_lexicon.tsv] [--json out.json]

The forms of ``corpora/aci-notes-train/condition-codes.tsv`` are the condition wordings of the 177 silver train
notes that the hand-curated table lacked, each coded in its note by one LLM coder, a blind second coder and an
adjudicator (``decision == code``). Building the index with a set of curated ``tables`` that leaves out
``data/conditions_silver.tsv`` (the table made from these very forms) measures how a table codes wordings it was
not written from: a held-out, target-domain proxy for the unseen wordings of aci-notes-test. Every form is linked
out of context, as ``Normalizer.link_condition`` does before its site and side steps (exact tiers, else lexical
retrieval; below the 0.5 threshold no code). Reported per source tier: n, exact, same 3-character category.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from clinie.normalize.icd import IcdIndex
from clinie.normalize.stage import DEFAULT_THRESHOLD

FORMS = Path(__file__).resolve().parents[1] / "corpora" / "aci-notes-train" / "condition-codes.tsv"


def coded_forms(path: Path) -> list[tuple[str, str, str]]:
    """(form, kind, code) for every form the coders gave a code."""
    with path.open(newline="") as fh:
        return [(r["form"], r["kind"], r["code"]) for r in csv.DictReader(fh, delimiter="\t")
                if r["decision"] == "code" and r["code"]]


def evaluate(index: IcdIndex, forms: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "exact": 0, "category": 0})
    for form, kind, gold in forms:
        cand = index.exact(form, ade=kind == "ADE") or index.lexical(form)
        if cand is not None and cand.score < DEFAULT_THRESHOLD:
            cand = None
        row = out[cand.source if cand else "none"]
        row["n"] += 1
        row["exact"] += cand is not None and cand.code == gold
        row["category"] += cand is not None and cand.code[:3] == gold[:3]
    total = {k: sum(r[k] for r in out.values()) for k in ("n", "exact", "category")}
    return {**dict(sorted(out.items())), "total": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forms", type=Path, default=FORMS)
    ap.add_argument("--tables", nargs="+", default=["data/conditions.tsv"],
                    help="curated tables (package data paths under clinie/normalize), first wins")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = evaluate(IcdIndex.build(tuple(args.tables)), coded_forms(args.forms))
    for source, r in result.items():
        print(f"{source:10s} n={r['n']:4d} exact={r['exact']:4d} ({r['exact'] / max(r['n'], 1):.3f}) "
              f"category={r['category']:4d} ({r['category'] / max(r['n'], 1):.3f})")
    if args.json:
        args.json.write_text(json.dumps({"tables": args.tables, "result": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
