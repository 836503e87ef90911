"""Checks that an interchange document follows the label schema and the annotation conventions exactly."""

from __future__ import annotations

import itertools
import re
from typing import Any

from clinie.schema import ATTRIBUTE_LABELS, ENTITY_LABELS, NEGATABLE_LABELS, relation_label

FLAGS = ("uncertain", "hypothetical", "historical")
# characters a span may not start or end with (besides whitespace); "%" and ")" inside are fine
EDGE_PUNCT = set(".,;:!?()[]{}\"'-/•*#")
SECTION_HEADERS = {
    "chief complaint", "cc", "history of present illness", "hpi", "past medical history", "medical history", "pmh",
    "medications", "current medications", "home medications", "discharge medications", "allergies",
    "drug allergies", "review of systems", "ros", "physical examination", "physical exam", "exam", "results", "labs",
    "assessment and plan", "assessment", "plan", "a/p", "social history", "family history", "subjective",
    "objective", "ed course", "hospital course", "disposition", "admission diagnosis", "reason for visit",
}
ROUTE_OR_FREQUENCY_WORDS = re.compile(
    r"\b(po|iv|im|sc|sq|oral|orally|mouth|inhaled|topical|daily|bid|tid|qid|qhs|prn|once|twice|times|every|"
    r"nightly|bedtime|weekly|needed|q\d+h?|a day|per day)\b",
    re.IGNORECASE,
)


def validate_document(doc: dict[str, Any]) -> list[str]:
    """All problems found in ``doc`` (empty when it is valid)."""
    errors: list[str] = []
    text = doc.get("text")
    if not isinstance(text, str) or not text:
        return ["document has no text"]
    labels = doc.get("labels")
    if labels is not None and not set(labels) <= set(ENTITY_LABELS):
        errors.append(f"unknown labels {sorted(set(labels) - set(ENTITY_LABELS))}")
    entities = doc.get("entities", [])
    by_id: dict[str, dict[str, Any]] = {}
    seen_spans: set[tuple[int, int, str]] = set()
    prev_start = -1
    for n, e in enumerate(entities, 1):
        eid, label, start, end = e.get("id"), e.get("label"), e.get("start"), e.get("end")
        where = f"entity {eid}"
        if eid != f"T{n}":
            errors.append(f"{where}: expected id T{n}")
        if label not in ENTITY_LABELS:
            errors.append(f"{where}: label {label!r} not in schema")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            errors.append(f"{where}: bad offsets {start}..{end}")
            continue
        span = text[start:end]
        if e.get("text") != span:
            errors.append(f"{where}: text does not match offsets")
        if span != span.strip() or span[0] in EDGE_PUNCT or span[-1] in EDGE_PUNCT:
            errors.append(f"{where}: span has leading/trailing whitespace or punctuation")
        if "\n" in span:
            errors.append(f"{where}: span crosses a line break")
        if start < prev_start:
            errors.append(f"{where}: ids not in order of start")
        prev_start = start
        if (start, end, str(label)) in seen_spans:
            errors.append(f"{where}: duplicate span and label")
        seen_spans.add((start, end, str(label)))
        if not isinstance(e.get("negated"), bool):
            errors.append(f"{where}: negated must be a boolean")
        elif e["negated"] and label not in NEGATABLE_LABELS:
            errors.append(f"{where}: {label} cannot be negated")
        for flag in FLAGS:
            if flag in e and (e[flag] is not True or label not in NEGATABLE_LABELS):
                errors.append(f"{where}: flag {flag} only as true on Problem/Reason/ADE")
        if "ingredient" in e and label != "Drug":
            errors.append(f"{where}: ingredient only on Drug")
        if "codes" in e and label not in NEGATABLE_LABELS:
            errors.append(f"{where}: codes only on Problem/Reason/ADE")
        if label == "Dosage" and ROUTE_OR_FREQUENCY_WORDS.search(span):
            errors.append(f"{where}: Dosage contains a route or frequency word")
        if span.lower().rstrip(":") in SECTION_HEADERS and span.isupper():
            errors.append(f"{where}: a section header is annotated")
        if isinstance(eid, str):
            by_id[eid] = e
    # overlapping spans (the generator never nests entities)
    ordered = sorted((e["start"], e["end"], e["id"]) for e in by_id.values())
    for (_s1, e1, i1), (s2, _e2, i2) in itertools.pairwise(ordered):
        if s2 < e1:
            errors.append(f"entities {i1} and {i2} overlap")
    seen_rel: set[tuple[str, str, str]] = set()
    for r in doc.get("relations", []):
        label, head, tail = r.get("label"), r.get("head"), r.get("tail")
        where = f"relation {label} {head}->{tail}"
        if head not in by_id or tail not in by_id:
            errors.append(f"{where}: points to a missing entity")
            continue
        head_label, tail_label = by_id[head]["label"], by_id[tail]["label"]
        if head_label not in ATTRIBUTE_LABELS or label != relation_label(head_label):
            errors.append(f"{where}: head is a {head_label}")
        if tail_label != "Drug":
            errors.append(f"{where}: tail is a {tail_label}")
        rel_key = (str(label), str(head), str(tail))
        if rel_key in seen_rel:
            errors.append(f"{where}: duplicate relation")
        seen_rel.add(rel_key)
    return errors
