"""ICD-10-CM codes for the condition forms of the silver train notes (docs/normalization.md, "Silver-coded forms").

    python corpora/aci-notes-train/condition_codes.py worklist > worklist.tsv   # forms to code, with contexts
    python corpora/aci-notes-train/condition_codes.py table                     # condition-codes.tsv -> the table
    python corpora/aci-notes-train/condition_codes.py sited                     # site-codes.tsv -> sited findings

``worklist``: every distinct Problem/Reason/ADE form of aci-notes-train.jsonl (case-folded; ADE kept apart) that the
hand-curated table does not already hold (run it with the silver table emptied to see what was coded), with the
linker's current answer and two contexts. The coders' answers
are ``condition-codes.tsv`` (form, kind, decision code/context/none, code, description, note).
``table``: the forms decided ``code`` (valid, billable) -> ``clinie/normalize/data/conditions_silver.tsv``.
``sited``: the mentions of the generic forms (the ``context`` forms and "pain", "swelling", ...) coded one by one in
their note (``site-codes.tsv``: note, entity, text, code, site) -> ``clinie/normalize/data/sited_findings.tsv``:
per (form, site without side) the most frequent code with its side taken out.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CODES = HERE / "condition-codes.tsv"
TABLE = ROOT / "clinie" / "normalize" / "data" / "conditions_silver.tsv"
SITE_CODES = HERE / "site-codes.tsv"
SITED = ROOT / "clinie" / "normalize" / "data" / "sited_findings.tsv"
_SIDE_WORDS = {"right", "left", "bilateral", "both", "the", "sided"}
# forms that keep the hand-curated site-less code even where the note gives a site: aci-notes-dev's gold codes
# "injury", "trauma" (T14.90XA), "ecchymosis" (R58) and "weakness" (R53.1) without the site; the injury family follows
SITELESS = frozenset({"injury", "injuries", "trauma", "fracture", "fractures", "acute fracture", "acute fractures",
                      "contusion", "bruising", "ecchymosis", "wound", "weakness"})
HEADER = """\
# ICD-10-CM code\tclinician forms (|)\tdrug-induced code when the mention is an ADE (optional)
# Forms of the silver train notes (corpora/aci-notes-train, 177 ACI-Bench notes; no dev/test text), coded
# form by form in context by six LLM assistant sessions following annotation-guidelines.md (most specific
# billable code the form itself supports; drug-induced code for ADE mentions), every code checked valid and
# billable with simple-icd-10-cm. Forms whose code depends on the note (site, side) were left out. conditions.tsv
# wins where both list a form. Regenerate: python corpora/aci-notes-train/condition_codes.py table
"""


@dataclass
class _Form:
    text: str
    count: int = 0
    contexts: list[str] = field(default_factory=list)


def worklist() -> None:
    from clinie.io import read_documents
    from clinie.normalize.icd import default_index
    from clinie.normalize.text import fold

    index = default_index()
    forms: dict[tuple[str, str], _Form] = {}
    for doc in read_documents(HERE / "aci-notes-train.jsonl"):
        for e in doc.entities:
            if e.label not in ("Problem", "Reason", "ADE"):
                continue
            text = doc.span_text(e)
            f = forms.setdefault((fold(text), "ADE" if e.label == "ADE" else "condition"), _Form(text))
            f.count += 1
            if len(f.contexts) < 2:  # the mention marked in its line, up to 120 characters before, 80 after
                ls = doc.text.rfind("\n", 0, e.start) + 1
                le = doc.text.find("\n", e.end)
                le = len(doc.text) if le < 0 else le
                a, b = max(ls, e.start - 120), min(le, e.end + 80)
                f.contexts.append(f"{doc.text[a:e.start]}[[{text}]]{doc.text[e.end:b]}".replace("\t", " "))
    rows: list[tuple[int, list[object]]] = []
    for (form, kind), f in forms.items():
        cand = index.exact(f.text, ade=kind == "ADE")
        if cand is not None and cand.source == "curated":
            continue
        cand = cand or index.lexical(f.text)
        rows.append((f.count, [form, kind, f.count, cand.code if cand else "", cand.display if cand else "",
                               cand.source if cand else "none", f"{cand.score:.2f}" if cand else "",
                               " ||| ".join(f.contexts)]))
    out = csv.writer(sys.stdout, delimiter="\t", lineterminator="\n")
    out.writerow(["form", "kind", "count", "linker_code", "linker_display", "linker_source", "linker_score",
                  "contexts"])
    out.writerows(row for _, row in sorted(rows, key=lambda r: -r[0]))


def table() -> None:
    import simple_icd_10_cm as icd

    cond: dict[str, str] = {}
    ade: dict[str, str] = {}
    with CODES.open() as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            code = r["code"].strip()
            if r["decision"] != "code":
                continue
            if not (icd.is_valid_item(code) and icd.is_leaf(code)):
                raise SystemExit(f"not a billable ICD-10-CM code: {code} ({r['form']})")
            (ade if r["kind"] == "ADE" else cond)[r["form"].strip()] = code
    rows: dict[tuple[str, str], list[str]] = {}
    for form, code in sorted(cond.items()):
        rows.setdefault((code, ade.get(form, "")), []).append(form)
    for form, code in sorted(ade.items()):
        if form not in cond:  # an ADE-only form: the drug-induced code only
            rows.setdefault(("", code), []).append(form)
    lines = ["\t".join([code, "|".join(forms)] + ([ade_code] if ade_code else []))
             for (code, ade_code), forms in sorted(rows.items())]
    TABLE.write_text(HEADER + "\n".join(lines) + "\n")
    print(f"{len(cond)} condition forms, {len(ade)} ADE forms, {len(rows)} rows -> {TABLE.relative_to(ROOT)}")


def sited() -> None:
    from collections import Counter, defaultdict

    import simple_icd_10_cm as icd

    from clinie.normalize.icd import unsided_variant
    from clinie.normalize.text import fold, singular

    votes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    with SITE_CODES.open() as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            code = r["code"].strip()
            site_words = [singular(w) for w in fold(r["site"].split(",")[0]).split() if w not in _SIDE_WORDS]
            if not code or not site_words or site_words == ["none"] or fold(r["text"]) in SITELESS:
                continue
            if not (icd.is_valid_item(code) and icd.is_leaf(code)):
                raise SystemExit(f"not a billable ICD-10-CM code: {code} ({r['note_id']} {r['entity_id']})")
            votes[(fold(r["text"]), " ".join(site_words))][unsided_variant(code)] += 1
    lines = [f"{form}\t{site}\t{c.most_common(1)[0][0]}\t{sum(c.values())}"
             for (form, site), c in sorted(votes.items())]
    SITED.write_text("# form\tsite (side words removed)\tICD-10-CM code, side unspecified\tcoded mentions\n"
                     "# From corpora/aci-notes-train/site-codes.tsv (silver); regenerate: python "
                     "corpora/aci-notes-train/condition_codes.py sited\n" + "\n".join(lines) + "\n")
    print(f"{len(lines)} (form, site) pairs -> {SITED.relative_to(ROOT)}")


if __name__ == "__main__":
    {"worklist": worklist, "table": table, "sited": sited}[sys.argv[1] if len(sys.argv) > 1 else "table"]()
