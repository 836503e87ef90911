"""The issue-8 examples end to end through the assertion and normalisation stages and the FHIR mapping:
family history, rule-out, historical, stopped/avoided drugs, allergies, duplicates, dosage text, codings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement

from clinie.document import Document, Entity, Relation
from clinie.fhir.docref import SourceNote, parse_document_reference
from clinie.fhir.extensions import INGREDIENT_SYSTEM
from clinie.fhir.mapping import MappedResources, map_extraction
from clinie.normalize import unii
from clinie.normalize.context import AssertionTagger
from clinie.normalize.icd import ICD10CM_SYSTEM
from clinie.normalize.stage import Normalizer
from tests.fhir.factories import docref_dict, entity

MODEL = "clinie_ie/4"


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


def run(normalizer: Normalizer, text: str, mentions: list[tuple[str, str, int]],
        rels: list[tuple[str, int, int]] = ()) -> MappedResources:  # type: ignore[assignment]
    note: SourceNote = parse_document_reference(docref_dict("doc-9", text))
    ents: list[Entity] = [entity(text, m, label, f"T{i + 1}", occurrence=occ) for i, (m, label, occ) in
                          enumerate(mentions)]
    relations = [Relation(label, f"T{h + 1}", f"T{t + 1}") for label, h, t in rels]
    doc: Document = note.document.with_annotations(ents, relations)
    doc = normalizer(AssertionTagger(negation=True)(doc))
    mapped = map_extraction(note, doc, MODEL)
    for r in mapped.resources():  # every resource validates (round trip through the R4B models)
        type(r).model_validate(json.loads(r.model_dump_json()))
    return mapped


def j(r: Condition | MedicationStatement | AllergyIntolerance) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(r.model_dump_json())
    return out


def status(concept: dict[str, Any] | None) -> str | None:
    return None if concept is None else str(concept["coding"][0]["code"])


def test_family_history_is_not_the_patients_condition(normalizer: Normalizer) -> None:
    text = "FAMILY HISTORY\nMother with breast cancer.\n\nASSESSMENT\nHypertension."
    m = run(normalizer, text, [("breast cancer", "Problem", 0), ("Hypertension", "Problem", 0)])
    assert [c.code.text for c in m.conditions] == ["Hypertension"]


def test_rule_out_and_possible_are_provisional(normalizer: Normalizer) -> None:
    text = "Possible sepsis. We will rule out meningitis."
    m = run(normalizer, text, [("sepsis", "Problem", 0), ("meningitis", "Problem", 0)])
    assert {c.code.text: status(j(c)["verificationStatus"]) for c in m.conditions} == {
        "sepsis": "provisional", "meningitis": "provisional"}


def test_historical_tuberculosis_is_resolved(normalizer: Normalizer) -> None:
    m = run(normalizer, "Tuberculosis in 1998, treated. Now has a cough.",
            [("Tuberculosis", "Problem", 0), ("cough", "Problem", 0)])
    by = {c.code.text: j(c) for c in m.conditions}
    assert status(by["Tuberculosis"]["clinicalStatus"]) == "resolved"
    assert status(by["cough"]["clinicalStatus"]) == "active"


def test_hypothetical_mention_is_no_condition(normalizer: Normalizer) -> None:
    m = run(normalizer, "Call if chest pain develops.", [("chest pain", "Problem", 0)])
    assert m.conditions == []


def test_negated_is_refuted(normalizer: Normalizer) -> None:
    m = run(normalizer, "Denies fever.", [("fever", "Problem", 0)])
    (c,) = m.conditions
    assert status(j(c)["verificationStatus"]) == "refuted" and c.clinicalStatus is None


def test_one_condition_per_concept_with_every_mention(normalizer: Normalizer) -> None:
    text = "History of type 2 diabetes. Diabetes is well controlled. HTN stable."
    m = run(normalizer, text, [("type 2 diabetes", "Problem", 0), ("Diabetes", "Problem", 0),
                               ("HTN", "Problem", 0)])
    assert len(m.conditions) == 2
    dm = next(j(c) for c in m.conditions if c.code.text == "type 2 diabetes")
    assert dm["code"]["coding"][0] == {"system": ICD10CM_SYSTEM, "version": "2026", "code": "E11.9",
                                       "display": "Type 2 diabetes mellitus without complications"}
    assert len(dm["extension"]) == 2  # one evidence extension per mention
    htn = next(j(c) for c in m.conditions if c.code.text == "HTN")
    assert htn["code"]["coding"][0]["code"] == "I10"


@pytest.mark.parametrize(
    ("text", "drug", "expected"),
    [("Avoid ceftriaxone.", "ceftriaxone", "not-taken"),
     ("Ceftriaxone was stopped yesterday.", "Ceftriaxone", "stopped"),
     ("Lisinopril was discontinued.", "Lisinopril", "stopped"),
     ("Start metformin.", "metformin", "intended"),
     ("Continue aspirin.", "aspirin", "active")],
)
def test_medication_status_from_clause(normalizer: Normalizer, text: str, drug: str, expected: str) -> None:
    (med,) = run(normalizer, text, [(drug, "Drug", 0)]).medication_statements
    assert med.status == expected


def test_medication_coded_by_ingredient(normalizer: Normalizer) -> None:
    (med,) = run(normalizer, "Continue Glucophage.", [("Glucophage", "Drug", 0)]).medication_statements
    codings = j(med)["medicationCodeableConcept"]["coding"]
    assert {"system": INGREDIENT_SYSTEM, "code": "metformin", "display": "metformin",
            "version": codings[0]["version"]} in codings


def test_dosage_text_only_from_its_drug_fixed_order_no_repeats(normalizer: Normalizer) -> None:
    text = "Levofloxacin 750 mg orally once once daily, and ceftriaxone IV daily."
    mentions = [("Levofloxacin", "Drug", 0), ("750 mg", "Dosage", 0), ("orally", "Route", 0),
                ("once", "Frequency", 0), ("once daily", "Frequency", 0), ("ceftriaxone", "Drug", 0),
                ("IV", "Route", 0), ("daily", "Frequency", 1)]
    rels = [("Dosage-Drug", 1, 0), ("Route-Drug", 2, 0), ("Frequency-Drug", 3, 0), ("Frequency-Drug", 4, 0),
            ("Route-Drug", 6, 5), ("Frequency-Drug", 7, 5)]
    meds = {m.medicationCodeableConcept.text: j(m) for m in run(normalizer, text, mentions, rels)
            .medication_statements}
    assert meds["Levofloxacin"]["dosage"][0]["text"] == "750 mg orally once daily"
    assert meds["ceftriaxone"]["dosage"][0]["text"] == "IV daily"


def test_allergy_list_becomes_allergy_intolerance(normalizer: Normalizer) -> None:
    text = "ALLERGIES\nSulfa (hives).\n\nMEDICATIONS\nLisinopril daily."
    m = run(normalizer, text, [("Sulfa", "Drug", 0), ("hives", "ADE", 0), ("Lisinopril", "Drug", 0)],
            [("ADE-Drug", 1, 0)])
    (allergy,) = m.allergies
    a = j(allergy)
    assert a["category"] == ["medication"] and a["patient"] == {"reference": "Patient/p1"}
    assert a["code"]["text"] == "Sulfa"
    assert a["reaction"][0]["manifestation"][0]["text"] == "hives"
    assert a["reaction"][0]["manifestation"][0]["coding"][0]["code"] == "L50.0"  # drug-induced urticaria
    assert [med.medicationCodeableConcept.text for med in m.medication_statements] == ["Lisinopril"]
    assert m.conditions == []  # the reaction is on the allergy, not an active Condition
    assert f"AllergyIntolerance/{allergy.id}" in {t.reference for t in m.provenance[0].target}


def test_allergic_to_in_text(normalizer: Normalizer) -> None:
    m = run(normalizer, "She is allergic to penicillin.", [("penicillin", "Drug", 0)])
    assert len(m.allergies) == 1 and m.medication_statements == []


def test_coded_resources_are_indexed_for_token_search(normalizer: Normalizer) -> None:
    """The storage search columns carry system|code tokens, so ``code=system|code`` finds coded resources."""
    from datetime import UTC, datetime

    from clinie.storage.repository import resource_row

    def search_columns(resource: Any) -> dict[str, Any]:
        return resource_row(resource, version_id=1, last_updated=datetime.now(UTC))

    m = run(normalizer, "Type 2 diabetes. Continue metformin.\nALLERGIES\nSulfa.",
            [("Type 2 diabetes", "Problem", 0), ("metformin", "Drug", 0), ("Sulfa", "Drug", 0)])
    (cond,) = m.conditions
    assert f"{ICD10CM_SYSTEM}|E11.9" in search_columns(cond)["codes"]
    (med,) = m.medication_statements
    assert f"{INGREDIENT_SYSTEM}|metformin" in search_columns(med)["codes"]
    (allergy,) = m.allergies
    assert {(c["system"], c["code"]) for c in j(allergy)["code"]["coding"]} == {(INGREDIENT_SYSTEM, "sulfonamides")}


def test_every_clinical_coding_has_system_code_display_version(normalizer: Normalizer) -> None:
    text = "Assessment: type 2 diabetes.\nPlan: continue Glucophage 500 mg daily.\nAllergies: amoxicillin (hives)."
    m = run(normalizer, text, [("type 2 diabetes", "Problem", 0), ("Glucophage", "Drug", 0),
                               ("amoxicillin", "Drug", 0), ("hives", "ADE", 0)], [("ADE-Drug", 3, 2)])
    concepts = [j(c)["code"] for c in m.conditions]
    concepts += [j(s)["medicationCodeableConcept"] for s in m.medication_statements]
    for a in m.allergies:
        concepts += [j(a)["code"], *(mf for r in j(a)["reaction"] for mf in r["manifestation"])]
    codings = [c for concept in concepts for c in concept["coding"]]
    assert {c["system"] for c in codings} >= {ICD10CM_SYSTEM, INGREDIENT_SYSTEM, "http://www.drugbank.ca"}
    for c in codings:
        assert c["system"] and c["code"] and c["display"] and c["version"], c
    med = j(m.medication_statements[0])["medicationCodeableConcept"]["coding"]
    if unii.available():
        assert {"system": unii.UNII_SYSTEM, "code": "9100L32L2N", "display": "METFORMIN",
                "version": unii.version()} in med
