"""Merge the eight area lexicons into ``clinie/normalize/data/conditions_lexicon.tsv``.

    python corpora/condition-lexicon/merge.py [OUT]

Forms are lowercased and whitespace-normalised; a form two areas gave different codes is dropped; a form listed
twice keeps its first area's line; the drug-induced (ADE) code of a code is the first one any area gave it.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "clinie" / "normalize" / "data" / "conditions_lexicon.tsv"
AREAS = ("cardio", "pulm_ent", "gi", "endo_renal_uro", "msk_upper", "msk_lower", "neuro_psych", "derm_general")
HEADER = """\
# ICD-10-CM code\tclinician forms (|)\tdrug-induced code when the mention is an ADE (optional)
# Clinician-phrase lexicon, written from coding knowledge, not from notes: eight LLM assistant sessions, one per
# clinical area (cardiology/vascular/hematology; pulmonology/ENT/allergy; GI/hepatology; endocrine/renal/urology;
# spine and upper limb; lower limb and rheumatology; neurology/psychiatry; dermatology/infection/women's health/eyes/
# general symptoms), each told to read annotation-guidelines.md and forbidden to read any corpus or this repository.
# Every code checked valid and billable with simple-icd-10-cm; a form two areas coded differently was dropped.
# Third curated tier: conditions.tsv, then conditions_silver.tsv, then this table (first wins).
# Measured as a held-out table with benchmarks/icd_forms_eval.py (docs/normalization.md).
# Built by corpora/condition-lexicon/merge.py from corpora/condition-lexicon/areas/.
"""


def rows() -> list[tuple[str, str, str]]:
    """(code, form, ADE code or '') in area order."""
    out = []
    for area in AREAS:
        for line in (HERE / "areas" / f"{area}.tsv").read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cols = [*line.split("\t"), ""]
            for form in cols[1].split("|"):
                form = " ".join(form.lower().split())
                if form:
                    out.append((cols[0].strip(), form, cols[2].strip()))
    return out


def merge(all_rows: list[tuple[str, str, str]]) -> str:
    codes_of: dict[str, set[str]] = defaultdict(set)
    for code, form, _ in all_rows:
        codes_of[form].add(code)
    by_code: dict[str, list[str]] = {}
    ade: dict[str, str] = {}
    seen: set[str] = set()
    for code, form, ade_code in all_rows:
        if len(codes_of[form]) > 1 or form in seen:
            continue
        seen.add(form)
        by_code.setdefault(code, []).append(form)
        if ade_code:
            ade.setdefault(code, ade_code)
    lines = ["\t".join([code, "|".join(forms), *([ade[code]] if code in ade else [])])
             for code, forms in by_code.items()]
    return HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.write_text(merge(rows()))
    print(f"wrote {out}")
