"""Offline augmenters: entity-preserving by construction, exact offsets, deterministic by seed, always valid."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("simple_icd_10_cm")
pytest.importorskip("drug_named_entity_recognition")

from clinie.augment.offline import (
    AugmentStats,
    abbreviation_table,
    augment_document,
    augment_offline,
)
from clinie.augment.pieces import assemble, to_pieces
from clinie.augment.validate import validate_document
from clinie.io import document_from_json
from tests.augment.notes import short_note, visit_note


def _rel_texts(doc: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    by_id = {e["id"]: e for e in doc["entities"]}
    return Counter((r["label"], by_id[r["head"]]["label"], by_id[r["tail"]]["label"]) for r in doc["relations"])


def _variants(doc: dict[str, Any], methods: tuple[str, ...], k: int = 20) -> list[dict[str, Any]]:
    out = []
    for i in range(k):
        aug, _ = augment_document(doc, random.Random(f"t:{i}"), methods)
        if aug is not None:
            out.append(aug)
    return out


def test_pieces_round_trip_is_identity() -> None:
    doc = visit_note()
    again = assemble(doc, to_pieces(doc))
    assert again["text"] == doc["text"]
    assert again["entities"] == doc["entities"]
    assert again["relations"] == doc["relations"]


def test_same_seed_same_output_other_seed_other_output() -> None:
    docs = [visit_note("a"), visit_note("b"), short_note("c")]
    one = list(augment_offline(docs, n=2, seed=5))
    two = list(augment_offline(docs, n=2, seed=5))
    other = list(augment_offline(docs, n=2, seed=6))
    assert json.dumps(one) == json.dumps(two)
    assert [d["text"] for d in one] != [d["text"] for d in other]


def test_every_output_is_valid_and_keeps_entities_and_relations() -> None:
    docs = [visit_note(f"v{i}") for i in range(3)] + [short_note(f"s{i}") for i in range(3)]
    stats = AugmentStats()
    outs = list(augment_offline(docs, n=3, seed=1, stats=stats))
    assert stats.produced == len(outs) >= 15
    for out in outs:
        src = next(d for d in docs if d["id"] == out["meta"]["augmented_from"])
        assert validate_document(out) == []
        document_from_json(out)  # the project's reader accepts it
        assert Counter(e["label"] for e in out["entities"]) == Counter(e["label"] for e in src["entities"])
        assert _rel_texts(out) == _rel_texts(src)
        assert sum(e["negated"] for e in out["entities"]) == sum(e["negated"] for e in src["entities"])
        assert out["text"] != src["text"]


def test_sig_rewriting_relabels_the_new_spans() -> None:
    doc = visit_note()
    seen: set[tuple[str, str]] = set()
    for out in _variants(doc, ("sig",), 30):
        for e in out["entities"]:
            assert out["text"][e["start"] : e["end"]] == e["text"]
            seen.add((e["label"], e["text"]))
    assert ("Dosage", "25mg") in seen or ("Dosage", "25 milligrams") in seen
    assert {("Route", "by mouth"), ("Route", "orally")} & seen
    assert {("Frequency", "once a day"), ("Frequency", "once daily"), ("Frequency", "qd")} & seen
    # the dosage stays an amount, the frequency a frequency
    for label, text in seen:
        if label == "Dosage":
            assert text.split()[0][:1].isdigit() or text.split()[0] in {"one", "two", "five", "ten", "twenty"}


def test_abbreviations_both_ways_from_the_data_table() -> None:
    assert any("hypertension" in r.forms for r in abbreviation_table()["htn"])
    doc = visit_note()
    problems = {e["text"] for out in _variants(doc, ("abbrev",), 30) for e in out["entities"] if e["label"] in
                ("Problem", "Reason")}
    assert {"hypertension", "high blood pressure"} & problems  # HTN expanded
    assert {"DM2", "T2DM"} & problems  # type 2 diabetes abbreviated


def test_substitution_is_type_consistent_and_follows_ingredients() -> None:
    doc = visit_note()
    changed = 0
    for out in _variants(doc, ("substitute",), 20):
        drugs = [e for e in out["entities"] if e["label"] == "Drug"]
        assert len(drugs) == 4
        for e in drugs:
            assert e["ingredient"]
            if e["text"].lower() not in {"metoprolol succinate", "metformin", "lisinopril"}:
                changed += 1
        # the same drug twice in the note is replaced consistently
        lis = [e["text"] for e in drugs[2:]]
        assert lis[0].lower() == lis[1].lower()
    assert changed


def test_list_reordering_moves_items_with_their_entities() -> None:
    doc = visit_note()
    moved = 0
    for out in _variants(doc, ("reorder_lists",), 20):
        lines = out["text"].split("\n")
        items = [ln for ln in lines if ln.startswith("• ")]
        assert sorted(items) == sorted(ln for ln in doc["text"].split("\n") if ln.startswith("• "))
        moved += items != [ln for ln in doc["text"].split("\n") if ln.startswith("• ")]
        by_id = {e["id"]: e for e in out["entities"]}
        for r in out["relations"]:  # an attribute is still on its drug's line
            h, t = by_id[r["head"]], by_id[r["tail"]]
            assert out["text"].count("\n", 0, h["start"]) == out["text"].count("\n", 0, t["start"])
    assert moved


def test_sentence_reordering_keeps_the_first_sentence_and_dependent_ones() -> None:
    doc = visit_note()
    outs = _variants(doc, ("reorder_sentences",), 20)
    assert outs
    for out in outs:
        hpi = out["text"].split("\n")[2]
        src = doc["text"].split("\n")[2]
        assert hpi.startswith("The patient has a history of HTN and type 2 diabetes. She denies chest pain. ")
        assert sorted(hpi.rstrip(".").split(". ")) == sorted(src.rstrip(".").split(". "))
