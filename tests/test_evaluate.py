from __future__ import annotations

from clinie.document import Document, Entity, Relation
from clinie.evaluate import score

TEXT = "aspirin 81 mg daily; no fever; cough"


def doc(ents: list[Entity], rels: list[Relation] | None = None, labels: tuple[str, ...] | None = None) -> Document:
    return Document(id="d", text=TEXT, entities=tuple(ents), relations=tuple(rels or []), labels=labels)


def test_strict_and_lenient() -> None:
    gold = doc([Entity("T1", "Drug", 0, 7), Entity("T2", "Dosage", 8, 13), Entity("T3", "Problem", 24, 29)],
               [Relation("Dosage-Drug", "T2", "T1")])
    pred = doc([Entity("P1", "Drug", 0, 7), Entity("P2", "Dosage", 8, 10), Entity("P3", "Problem", 31, 36)],
               [Relation("Dosage-Drug", "P2", "P1")])
    r = score([gold], [pred])
    s = r.micro("strict", "entities")
    assert (s.tp, s.fp, s.fn) == (1, 2, 2)
    le = r.micro("lenient", "entities")
    assert (le.tp, le.fp, le.fn) == (2, 1, 1)
    assert r.micro("strict", "relations").tp == 0
    assert r.micro("lenient", "relations").tp == 1


def test_unannotated_labels_ignored() -> None:
    gold = doc([Entity("T1", "Drug", 0, 7)], labels=("Drug",))
    pred = doc([Entity("P1", "Drug", 0, 7), Entity("P2", "Problem", 24, 29)])
    r = score([gold], [pred])
    s = r.micro("strict", "entities")
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)


def test_lenient_one_to_one() -> None:
    gold = doc([Entity("T1", "Problem", 24, 29), Entity("T2", "Problem", 31, 36)])
    pred = doc([Entity("P1", "Problem", 20, 36)])
    le = score([gold], [pred]).micro("lenient", "entities")
    assert (le.tp, le.fp, le.fn) == (1, 0, 1)


def test_negation_scored_on_strict_matches() -> None:
    gold = doc([Entity("T1", "Problem", 24, 29, negated=True), Entity("T2", "Problem", 31, 36)])
    pred = doc([Entity("P1", "Problem", 24, 29, negated=True), Entity("P2", "Problem", 31, 36, negated=True)])
    r = score([gold], [pred])
    assert r.negation_total == 2 and r.negation_agree == 1
    assert (r.negation.tp, r.negation.fp, r.negation.fn) == (1, 1, 0)
