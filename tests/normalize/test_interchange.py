"""Label schema v1.1 attributes through the interchange format and the scorer."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.document import Document, Entity
from clinie.errors import InvalidInputError
from clinie.evaluate import score
from clinie.io import document_from_json, read_documents, write_documents

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def test_round_trip(tmp_path: Path) -> None:
    ents = (Entity("T1", "Problem", 0, 5, uncertain=True, historical=True, subject="family", codes=(f"{ICD}|R50.9",)),
            Entity("T2", "Drug", 6, 13, ingredient="rosuvastatin"))
    doc = Document("d", "fever Crestor", entities=ents)
    write_documents(tmp_path / "x.jsonl", [doc])
    (back,) = read_documents(tmp_path / "x.jsonl")
    assert back.entities == ents


def test_unknown_subject_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        document_from_json({"id": "d", "text": "fever", "entities": [
            {"id": "T1", "label": "Problem", "start": 0, "end": 5, "subject": "neighbour"}]})


def test_scoring_of_flags_codes_ingredients_and_subject() -> None:
    text = "fever cough rash Crestor"
    gold = Document("d", text, entities=(
        Entity("T1", "Problem", 0, 5, hypothetical=True, codes=(f"{ICD}|R50.9",)),
        Entity("T2", "Problem", 6, 11, codes=(f"{ICD}|R05.9",)),
        Entity("T3", "Problem", 12, 16, codes=(f"{ICD}|R21",)),
        Entity("T4", "Drug", 17, 24, ingredient="rosuvastatin")))
    pred = Document("d", text, entities=(
        Entity("P1", "Problem", 0, 5, hypothetical=True, codes=(f"{ICD}|R50.9",)),
        Entity("P2", "Problem", 6, 11, codes=(f"{ICD}|R05.1",)),  # same category, not exact
        Entity("P3", "Problem", 12, 16, subject="family"),  # dropped before matching: a false negative
        Entity("P4", "Drug", 17, 24, ingredient="Rosuvastatin")))
    r = score([gold], [pred])
    d = r.as_dict()
    assert d["flags_on_strict_matches"]["hypothetical"]["f1"] == 1.0  # type: ignore[index]
    assert d["codes_on_strict_matches"] == {"n": 2, "exact_accuracy": 0.5, "category_accuracy": 1.0}
    assert d["ingredient_on_strict_matches"] == {"n": 1, "accuracy": 1.0}
    assert r.by_label["strict"]["entities"]["Problem"].fn == 1
