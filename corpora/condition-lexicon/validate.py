"""Check an area lexicon: ``code<TAB>forms(|)<TAB>ade_code(optional)``; codes valid and billable (leaf) ICD-10-CM,
forms lowercase, one code per form.

    python corpora/condition-lexicon/validate.py areas/cardio.tsv
"""

from __future__ import annotations

import sys

import simple_icd_10_cm as icd


def problem(code: str) -> str | None:
    if not icd.is_valid_item(code) and not icd.is_valid_item(code.replace(".", "")):
        return "invalid"
    if not icd.is_leaf(code.replace(".", "")):
        return "not billable (has children)"
    return None


def main(path: str) -> int:
    bad = 0
    seen: dict[str, str] = {}
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) not in (2, 3):
                print(f"{n}: expected 2 or 3 tab-separated columns")
                bad += 1
                continue
            for code in [cols[0]] + ([cols[2]] if len(cols) == 3 and cols[2].strip() else []):
                if err := problem(code.strip()):
                    print(f"{n}: {code}: {err}")
                    bad += 1
            for form in (f.strip() for f in cols[1].split("|")):
                if form != form.lower():
                    print(f"{n}: form not lowercase: {form}")
                    bad += 1
                if form in seen and seen[form] != cols[0]:
                    print(f"{n}: form '{form}' also given code {seen[form]}")
                    bad += 1
                seen[form] = cols[0]
    print(f"{len(seen)} forms, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
