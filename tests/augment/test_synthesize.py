"""`clinie synthesize`: determinism, validity and the annotation conventions of the synthetic notes."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("simple_icd_10_cm")
pytest.importorskip("drug_named_entity_recognition")

from clinie.augment.synthesize import summarize, synthesize
from clinie.augment.validate import SECTION_HEADERS, validate_document
from clinie.augment.vocab import icd_is_valid, load_vocab, simplify_icd_term
from clinie.io import document_from_json
from clinie.schema import ENTITY_LABELS

N = 60


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(synthesize(N, seed=7))


def _ents(docs: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The ``label`` entities of ``docs``; never empty, so a loop over them cannot pass vacuously."""
    found = [e for d in docs for e in d["entities"] if e["label"] == label]
    assert found, f"no {label} entity in the synthesized notes"
    return found


def test_same_seed_same_notes(docs: list[dict[str, Any]]) -> None:
    again = list(synthesize(10, seed=7))
    assert json.dumps(again) == json.dumps(docs[:10])


def test_other_seed_other_notes(docs: list[dict[str, Any]]) -> None:
    other = list(synthesize(5, seed=8))
    assert [d["text"] for d in other] != [d["text"] for d in docs[:5]]


def test_every_note_passes_the_validator_and_loads(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        assert validate_document(d) == [], d["id"]
        assert document_from_json(d).id == d["id"]  # the project's reader accepts it
        assert d["labels"] == list(ENTITY_LABELS)


def test_all_labels_relations_and_flags_occur(docs: list[dict[str, Any]]) -> None:
    summary = summarize(docs)
    assert set(summary["entities"]) == set(ENTITY_LABELS)
    assert set(summary["relations"]) == {f"{a}-Drug" for a in ("Dosage", "Route", "Frequency", "Duration",
                                                               "Reason", "ADE")}
    assert {"negated", "uncertain", "hypothetical", "historical"} <= set(summary["flags"])
    types = Counter(d["meta"]["note_type"] for d in docs)
    assert set(types) == {"clinic", "ed", "discharge", "progress"}


def test_note_lengths(docs: list[dict[str, Any]]) -> None:
    lengths = [len(d["text"]) for d in docs]
    assert min(lengths) >= 1000
    assert sum(lengths) / len(lengths) >= 1800


def test_dosage_is_amount_only(docs: list[dict[str, Any]]) -> None:
    words = re.compile(r"\b(po|iv|oral|orally|mouth|daily|bid|tid|prn|twice|times|every|needed|bedtime)\b", re.I)
    for e in _ents(docs, "Dosage"):
        assert not words.search(e["text"]), e["text"]
        assert re.search(r"\d|one|two", e["text"]), e["text"]


def test_route_and_frequency_vocabulary(docs: list[dict[str, Any]]) -> None:
    for e in _ents(docs, "Route"):
        assert not re.search(r"\d", e["text"]), e["text"]
    for e in _ents(docs, "Duration"):
        assert re.match(r"(for|x|over)\b|x\d", e["text"]), e["text"]


def test_routes_written_before_the_drug_and_in_prescription_style(docs: list[dict[str, Any]]) -> None:
    """Both ways a route is written besides "PO": as an adjective right before its drug ("topical clobetasol",
    "an injectable steroid") and in e-prescribing sigs ("by oral route"); each is linked to its drug."""
    before, prescription = 0, 0
    for d in docs:
        by_id = {e["id"]: e for e in d["entities"]}
        for r in d["relations"]:
            head, tail = by_id[r["head"]], by_id[r["tail"]]
            if r["label"] != "Route-Drug":
                continue
            before += d["text"][head["end"]:tail["start"]] == " "
            prescription += bool(re.fullmatch(r"by \w+ route", head["text"]))
    assert before >= 5 and prescription >= 5, (before, prescription)


def test_headers_never_entities(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        for e in d["entities"]:
            assert e["text"].lower().rstrip(":") not in SECTION_HEADERS - {"allergies"}, e["text"]


def test_relations_link_attributes_to_drugs(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        by_id = {e["id"]: e for e in d["entities"]}
        for r in d["relations"]:
            assert by_id[r["tail"]]["label"] == "Drug"
            assert r["label"] == f"{by_id[r['head']]['label']}-Drug"
        linked = {r["head"] for r in d["relations"]}
        for e in d["entities"]:
            if e["label"] in ("Dosage", "Route", "Frequency", "Duration", "ADE", "Reason"):
                assert e["id"] in linked, (d["id"], e["label"])  # no attribute without its drug


def test_codes_and_ingredients(docs: list[dict[str, Any]]) -> None:
    for e in _ents(docs, "Drug"):
        assert e["ingredient"] == e["ingredient"].lower()
    codes = {c.split("|")[1] for d in docs for e in d["entities"] for c in e.get("codes", [])}
    assert codes and all(icd_is_valid(c) for c in codes)
    for label in ("Problem", "Reason", "ADE"):
        assert all(e.get("codes") for e in _ents(docs, label)), label


def test_negated_lists_and_flags_only_on_conditions(docs: list[dict[str, Any]]) -> None:
    negated = [e for d in docs for e in d["entities"] if e["negated"]]
    assert negated and all(e["label"] in ("Problem", "Reason", "ADE") for e in negated)
    # "Denies fever, chills or cough": every item of a negated list is negated
    for d in docs:
        for m in re.finditer(r"(?m)(Denies|Negative for|No) ([^.\n]+)\.", d["text"]):
            inside = [e for e in d["entities"] if m.start(2) <= e["start"] and e["end"] <= m.end(2)]
            if inside and all(e["label"] == "Problem" for e in inside) and m.group(1) == "Denies":
                assert all(e["negated"] for e in inside), m.group(0)


def test_validator_catches_errors(docs: list[dict[str, Any]]) -> None:
    good = docs[0]
    bad = json.loads(json.dumps(good))
    bad["entities"][0]["start"] += 1
    assert validate_document(bad)
    bad = json.loads(json.dumps(good))
    e = bad["entities"][0]
    e["end"] += 1  # now ends with a space or punctuation, or the text no longer matches
    e["text"] = bad["text"][e["start"] : e["end"]]
    assert validate_document(bad)
    bad = json.loads(json.dumps(good))
    bad["entities"][0]["label"] = "Medication"
    assert validate_document(bad)
    bad = json.loads(json.dumps(good))
    bad["entities"][0], bad["entities"][1] = bad["entities"][1], bad["entities"][0]
    assert validate_document(bad)
    bad = json.loads(json.dumps(good))
    rel = bad["relations"][0]
    rel["head"], rel["tail"] = rel["tail"], rel["head"]
    assert validate_document(bad)
    bad = json.loads(json.dumps(good))
    bad["entities"].append(dict(bad["entities"][-1], id=f"T{len(bad['entities']) + 1}"))
    assert any("duplicate" in x for x in validate_document(bad))


def test_dosage_with_route_word_is_rejected(docs: list[dict[str, Any]]) -> None:
    doc = {"id": "x", "text": "lisinopril 20 mg PO daily", "entities": [
        {"id": "T1", "label": "Drug", "start": 0, "end": 10, "text": "lisinopril", "negated": False},
        {"id": "T2", "label": "Dosage", "start": 11, "end": 19, "text": "20 mg PO", "negated": False},
    ], "relations": [{"label": "Dosage-Drug", "head": "T2", "tail": "T1"}]}
    assert any("route or frequency" in x for x in validate_document(doc))


def test_vocabularies_come_from_packages() -> None:
    v = load_vocab()
    assert len(v.problems) > 150 and len(v.drugs) > 80 and len(v.long_tail) > 100
    assert any(p.icd_forms for p in v.problems.values())
    assert all(icd_is_valid(code) for code in v.problems)
    assert simplify_icd_term("Hyperlipidemia, unspecified") == "hyperlipidemia"
    assert simplify_icd_term("Pain in right knee") == "right knee pain"
    assert simplify_icd_term("Other specified disorders of nose") is None
