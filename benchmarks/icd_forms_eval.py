"""Form-level ICD-10-CM accuracy of the condition linker on condition forms it has not seen.

    python benchmarks/icd_forms_eval.py [--forms corpora/aci-notes-train/condition-codes.tsv]
        [--tables data/conditions.tsv data/conditions_lexicon.tsv] [--nearest-form] [--json out.json]

The forms of ``corpora/aci-notes-train/condition-codes.tsv`` are the condition wordings of the 177 silver train
notes that the hand-curated table lacked, each coded in its note by one LLM coder, a blind second coder and an
adjudicator (``decision == code``). Building the index with a set of curated ``tables`` that leaves out
``data/conditions_silver.tsv`` (the table made from these very forms) measures how a table codes wordings it was
not written from: a held-out, target-domain proxy for the unseen wordings of aci-notes-test. Every form is linked
out of context: ``Normalizer.link_condition`` on a one-mention document (exact tiers, else with ``--forms`` the
nearest curated form of the same tables, else lexical retrieval; the side the form names; below the 0.5 threshold
no code). Reported per source tier: n, exact, same 3-character category.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from clinie.document import Document, Entity
from clinie.normalize.forms import FormIndex
from clinie.normalize.icd import IcdIndex
from clinie.normalize.stage import Normalizer

FORMS = Path(__file__).resolve().parents[1] / "corpora" / "aci-notes-train" / "condition-codes.tsv"


def coded_forms(path: Path) -> list[tuple[str, str, str]]:
    """(form, kind, code) for every form the coders gave a code."""
    with path.open(newline="") as fh:
        return [(r["form"], r["kind"], r["code"]) for r in csv.DictReader(fh, delimiter="\t")
                if r["decision"] == "code" and r["code"]]


def evaluate(normalizer: Normalizer, forms: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "exact": 0, "category": 0})
    for i, (form, kind, gold) in enumerate(forms):
        mention = Entity(f"T{i}", "ADE" if kind == "ADE" else "Problem", 0, len(form))
        cand = normalizer.link_condition(Document(f"form-{i}", form, entities=(mention,)), mention)
        if cand is not None and cand.score < normalizer.threshold:
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
    ap.add_argument("--nearest-form", action="store_true", help="nearest-form step on (forms of the same tables)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tables = tuple(args.tables)
    norm = Normalizer(IcdIndex.build(tables), use_site=False,
                      forms=FormIndex.build(tables) if args.nearest_form else None)
    result = evaluate(norm, coded_forms(args.forms))
    for source, r in result.items():
        print(f"{source:10s} n={r['n']:4d} exact={r['exact']:4d} ({r['exact'] / max(r['n'], 1):.3f}) "
              f"category={r['category']:4d} ({r['category'] / max(r['n'], 1):.3f})")
    if args.json:
        report = {"tables": args.tables, "nearest_form": args.nearest_form, "result": result}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
