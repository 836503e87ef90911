"""End-to-end check on Synthea: what the pipeline extracted vs the structured resources behind the same encounters.

Synthea writes each note from the encounter's own Conditions and MedicationRequests, so those are a (partial) gold
standard for the stored FHIR resources. Notes also mention history from earlier encounters, so "extracted but not
in this encounter's resources" is an upper bound on false positives, not a precision.

    .venv/bin/clinie demo --export runs/demo-export
    .venv/bin/python benchmarks/synthea_e2e.py runs/demo-export --synthea ../shared/data/synthea

A gold item is recalled when an extracted, non-refuted resource of the same encounter has concept text that contains
it or is contained in it (case-insensitive; Synthea's " (finding)"/" (disorder)" suffixes dropped).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SUFFIX = re.compile(r"\s*\((finding|disorder|situation|procedure|morphologic abnormality)\)\s*$")


def ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def norm(text: str) -> str:
    return _SUFFIX.sub("", text.strip().lower())


def encounter_of(resource: dict[str, Any], key: str) -> str | None:
    ref = resource.get(key)
    if isinstance(ref, dict):
        return str(ref.get("reference", "")).split("/")[-1] or None
    return None


def gold(synthea: Path) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"Condition": set(), "MedicationStatement": set()})
    for c in ndjson(synthea / "Condition.ndjson"):
        enc = encounter_of(c, "encounter")
        if enc and c.get("code", {}).get("text"):
            out[enc]["Condition"].add(norm(c["code"]["text"]))
    for m in ndjson(synthea / "MedicationRequest.ndjson"):
        enc = encounter_of(m, "encounter")
        text = m.get("medicationCodeableConcept", {}).get("text")
        if enc and text:
            out[enc]["MedicationStatement"].add(norm(text))
    return out


def extracted(export: Path) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"Condition": set(), "MedicationStatement": set()})
    for c in ndjson(export / "Condition.ndjson"):
        refuted = any(cd.get("code") == "refuted" for cd in c.get("verificationStatus", {}).get("coding", []))
        enc = encounter_of(c, "encounter")
        if enc and not refuted:
            out[enc]["Condition"].add(norm(c["code"]["text"]))
    for m in ndjson(export / "MedicationStatement.ndjson"):
        enc = encounter_of(m, "context")
        if enc and m.get("status") != "not-taken":
            out[enc]["MedicationStatement"].add(norm(m["medicationCodeableConcept"]["text"]))
    return out


def matches(a: str, b: str) -> bool:
    return bool(a) and bool(b) and (a in b or b in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", type=Path, help="directory with Condition.ndjson and MedicationStatement.ndjson")
    ap.add_argument("--synthea", type=Path, default=Path("../shared/data/synthea"))
    args = ap.parse_args()
    g, x = gold(args.synthea), extracted(args.export)
    print("| resource | encounters with gold | gold items | recalled | recall | extracted items | "
          "matching this encounter's gold |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for rtype in ("Condition", "MedicationStatement"):
        encounters = [e for e in g if g[e][rtype]]
        n_gold = sum(len(g[e][rtype]) for e in encounters)
        recalled = sum(1 for e in encounters for item in g[e][rtype] if any(matches(item, t) for t in x[e][rtype]))
        n_x = sum(len(v[rtype]) for v in x.values())
        agree = sum(1 for e, v in x.items() for t in v[rtype] if any(matches(t, item) for item in g[e][rtype]))
        print(f"| {rtype} | {len(encounters)} | {n_gold} | {recalled} | {recalled / max(1, n_gold):.3f} | {n_x} | "
              f"{agree} ({agree / max(1, n_x):.3f}) |")


if __name__ == "__main__":
    main()
