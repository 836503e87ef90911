"""Score the normalisation and assertion stages on GOLD spans (independent of the NER model).

    python benchmarks/normalize_eval.py ../shared/data/corpus/aci-notes-dev.jsonl [--json out.json]

The gold entities and relations are kept, every attribute the stages set is cleared (negated, flags, codes,
ingredient), the stages run, and ``clinie.evaluate.score`` compares with the gold. Baselines in the same run:
``exact-icd`` (exact match of the mention against ICD-10-CM descriptions and inclusion terms only) and, for the
flags, the rules with negation only.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from clinie.document import Document
from clinie.evaluate import Report, score
from clinie.io import read_documents
from clinie.normalize.context import AssertionTagger
from clinie.normalize.icd import ICD10CM_SYSTEM, IcdIndex, default_index
from clinie.normalize.stage import Normalizer
from clinie.normalize.stage import strip_normalization as strip


def exact_icd(index: IcdIndex, doc: Document) -> Document:
    from clinie.normalize.text import fold

    table = index.tiers[-1]
    ents = [replace(e, codes=(f"{ICD10CM_SYSTEM}|{table[fold(doc.span_text(e))][0]}",))
            if e.label in ("Problem", "Reason", "ADE") and fold(doc.span_text(e)) in table else e
            for e in doc.entities]
    return doc.with_annotations(entities=ents)


def summary(r: Report) -> dict[str, object]:
    d = r.as_dict()
    return {k: d[k] for k in ("flags_on_strict_matches", "codes_on_strict_matches", "ingredient_on_strict_matches")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("gold", type=Path)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--errors", action="store_true")
    ap.add_argument("--dense", type=Path, help="dense index (clinie terminology build --dense): dense retrieval on")
    ap.add_argument("--dense-weights", default=None, help="w_mention,w_context,w_lexical")
    ap.add_argument("--dense-threshold", type=float, default=None)
    ap.add_argument("--forms", type=Path, help="curated-form index (clinie terminology build --forms); default: built "
                    "from the packaged tables")
    ap.add_argument("--no-forms", action="store_true", help="nearest-form step off (the configuration before it)")
    ap.add_argument("--form-threshold", type=float, default=None)
    args = ap.parse_args()
    gold = read_documents(args.gold)
    index = default_index()
    kw: dict[str, object] = {} if args.threshold is None else {"threshold": args.threshold}
    if args.dense is not None:
        from clinie.normalize.dense import DenseIndex

        dense = DenseIndex.load(args.dense)
        if args.dense_weights:
            wm, wc, wl = (float(x) for x in args.dense_weights.split(","))
            dense.weights = (wm, wc, wl)
        kw["dense"] = dense
        if args.dense_threshold is not None:
            kw["dense_threshold"] = args.dense_threshold
    if not args.no_forms:
        from clinie.normalize.forms import FormIndex, default_forms

        kw["forms"] = FormIndex.load(args.forms) if args.forms is not None else default_forms()
        if args.form_threshold is not None:
            kw["form_threshold"] = args.form_threshold
    norm = Normalizer(index, **kw)  # type: ignore[arg-type]
    tagger = AssertionTagger(negation=True)
    preds = [norm(tagger(strip(d))) for d in gold]
    out = {"clinie": summary(score(gold, preds)),
           "exact-icd baseline": summary(score(gold, [exact_icd(index, strip(d)) for d in gold])),
           "versions": norm.versions}
    print(json.dumps(out, indent=1))
    if args.errors:
        for g, p in zip(gold, preds, strict=True):
            for ge, pe in zip(g.entities, p.entities, strict=True):
                if ge.codes and ge.codes[0] not in pe.codes:
                    print("CODE", repr(g.span_text(ge)), ge.codes[0].split("|")[1], [c.split("|")[1] for c in pe.codes])
                if ge.ingredient and ge.ingredient != pe.ingredient:
                    print("DRUG", repr(g.span_text(ge)), ge.ingredient, pe.ingredient)
                for f in ("negated", "uncertain", "hypothetical", "historical"):
                    if ge.label in ("Problem", "Reason", "ADE") and getattr(ge, f) != getattr(pe, f):
                        s = g.text.rfind("\n", 0, ge.start) + 1
                        e = g.text.find("\n", ge.end)
                        print("FLAG", f, "gold" if getattr(ge, f) else "pred", repr(g.span_text(ge)), "|",
                              g.text[max(s, ge.start - 120):min(e if e >= 0 else len(g.text), ge.end + 80)])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
