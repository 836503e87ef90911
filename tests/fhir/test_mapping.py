"""map_extraction: every mapping rule, FHIR validity and invariants, evidence offsets, determinism."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from clinie.document import Document, Entity, Relation
from clinie.errors import ErrorCode, InvalidInputError
from clinie.fhir.docref import SourceNote, parse_document_reference
from clinie.fhir.extensions import (
    ADE_CATEGORY_CODE,
    CONDITION_CATEGORY_SYSTEM,
    DATA_ABSENT_REASON_URL,
    NOTE_EVIDENCE_URL,
    SOURCE_VERSION_URL,
    read_evidence,
)
from clinie.fhir.mapping import MappedResources, map_extraction, patient_stub
from tests.fhir.factories import NOTE, annotate_note, docref_dict, entity

MODEL = "clinie_ie/4"
ASSERTED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def make_note(text: str = NOTE, **kw: Any) -> SourceNote:
    return parse_document_reference(docref_dict(kw.pop("doc_id", "doc-1"), text, **kw))


@pytest.fixture()
def note() -> SourceNote:
    return make_note(version="4")


@pytest.fixture()
def mapped(note: SourceNote) -> MappedResources:
    return map_extraction(note, annotate_note(note.document), MODEL, asserted=ASSERTED)


def as_json(r: Resource) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(r.model_dump_json())
    return out


def by_text(resources: list[Condition]) -> dict[str, dict[str, Any]]:
    """Conditions as FHIR JSON, by code.text."""
    return {j["code"]["text"]: j for j in map(as_json, resources)}


def meds_by_text(resources: list[MedicationStatement]) -> dict[str, dict[str, Any]]:
    """MedicationStatements as FHIR JSON, by medicationCodeableConcept.text."""
    return {j["medicationCodeableConcept"]["text"]: j for j in map(as_json, resources)}


def code_of(concept: dict[str, Any] | None) -> str | None:
    return None if concept is None else str(concept["coding"][0]["code"])


def categories(c: dict[str, Any]) -> set[tuple[str, str]]:
    return {(cd["system"], cd["code"]) for cat in c.get("category", ()) for cd in cat.get("coding", ())}


def check_condition_invariants(c: dict[str, Any]) -> None:
    """R4 con-3, con-4, con-5 (fhir.resources does not check them)."""
    ver = code_of(c.get("verificationStatus"))
    clin = code_of(c.get("clinicalStatus"))
    if ver != "entered-in-error" and "problem-list-item" in {code for _, code in categories(c)}:
        assert clin is not None  # con-3
    if any(k.startswith("abatement") for k in c):
        assert clin in ("inactive", "resolved", "remission")  # con-4
    if ver == "entered-in-error":
        assert clin is None  # con-5


# ---------------------------------------------------------------------------------------------- validity


def test_counts(mapped: MappedResources) -> None:
    assert sorted(by_text(mapped.conditions)) == ["Rash", "chest pain", "diabetes", "hypertension"]
    assert sorted(meds_by_text(mapped.medication_statements)) == ["amoxicillin", "metformin"]
    assert len(mapped.provenance) == 1
    assert len(mapped.resources()) == 7


def test_everything_validates(mapped: MappedResources) -> None:
    assert mapped.resources()
    for r in mapped.resources():
        type(r).model_validate(r.model_dump())
        again = type(r).model_validate(json.loads(r.model_dump_json()))
        assert as_json(again) == as_json(r)
        assert r.id and re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", r.id)


def test_condition_invariants(mapped: MappedResources) -> None:
    for c in mapped.conditions:
        check_condition_invariants(as_json(c))


# ---------------------------------------------------------------------------------------------- Conditions


def test_problem_becomes_unconfirmed_active_condition(note: SourceNote, mapped: MappedResources) -> None:
    c = by_text(mapped.conditions)["hypertension"]
    assert code_of(c["verificationStatus"]) == "unconfirmed"
    assert code_of(c["clinicalStatus"]) == "active"
    assert categories(c) == {("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")}
    assert c["subject"] == {"reference": "Patient/p1"}
    assert c["encounter"] == {"reference": "Encounter/e1"}
    assert c["recordedDate"] == "2024-03-01T10:00:00Z" and note.date is not None


def test_negated_problem_is_refuted_never_active(mapped: MappedResources) -> None:
    c = by_text(mapped.conditions)["chest pain"]
    assert code_of(c["verificationStatus"]) == "refuted"
    assert "clinicalStatus" not in c
    ev = read_evidence(c)
    assert [e.negated for e in ev] == [True]


def test_any_negated_mention_of_a_span_refutes_it() -> None:
    note = make_note("No fever today.")
    doc = note.document.with_annotations(
        [entity(note.text, "fever", "Problem", "T1", negated=True), entity(note.text, "fever", "Reason", "T2")]
    )
    (c,) = map(as_json, map_extraction(note, doc, MODEL).conditions)
    assert code_of(c["verificationStatus"]) == "refuted" and "clinicalStatus" not in c


def test_evidence_offsets_point_at_the_mention(note: SourceNote, mapped: MappedResources) -> None:
    ann = annotate_note(note.document)
    spans = {(e.start, e.end, e.label): e for e in ann.entities}
    for r in map(as_json, [*mapped.conditions, *mapped.medication_statements]):
        evidence = read_evidence(r)
        assert evidence, r["id"]
        for ev in evidence:
            assert (ev.start, ev.end, ev.label) in spans
            assert ev.document_id == "doc-1" and ev.document_version == "4" and ev.model_version == MODEL
        first = evidence[0]
        mention = note.text[first.start : first.end]
        if r["resourceType"] == "Condition":
            assert r["code"]["text"] == mention
        else:
            assert r["medicationCodeableConcept"]["text"] == mention and first.label == "Drug"


def test_evidence_extension_shape_and_confidence(mapped: MappedResources) -> None:
    c = by_text(mapped.conditions)["hypertension"]
    (ext,) = c["extension"]
    assert ext["url"] == NOTE_EVIDENCE_URL
    subs = {s["url"]: s for s in ext["extension"]}
    assert subs["document"]["valueReference"] == {"reference": "DocumentReference/doc-1"}
    assert subs["label"]["valueCode"] == "Problem"
    assert isinstance(subs["start"]["valueInteger"], int)
    assert subs["confidence"]["valueDecimal"] == 0.97
    # no score -> no confidence
    c2 = by_text(mapped.conditions)["diabetes"]
    assert all(s["url"] != "confidence" for s in c2["extension"][0]["extension"])


def test_ade_condition_links_to_the_drug(mapped: MappedResources) -> None:
    rash = by_text(mapped.conditions)["Rash"]
    amox = meds_by_text(mapped.medication_statements)["amoxicillin"]
    assert (CONDITION_CATEGORY_SYSTEM, ADE_CATEGORY_CODE) in categories(rash)
    assert rash["evidence"] == [
        {"detail": [{"reference": f"MedicationStatement/{amox['id']}", "display": "amoxicillin"}]}
    ]
    assert code_of(rash["verificationStatus"]) == "unconfirmed" and code_of(rash["clinicalStatus"]) == "active"
    # non-ADE conditions carry no ADE category and no evidence link
    htn = by_text(mapped.conditions)["hypertension"]
    assert "evidence" not in htn
    assert (CONDITION_CATEGORY_SYSTEM, ADE_CATEGORY_CODE) not in categories(htn)


def test_reason_is_a_condition_and_the_medication_reason(mapped: MappedResources) -> None:
    diabetes = by_text(mapped.conditions)["diabetes"]
    met = meds_by_text(mapped.medication_statements)["metformin"]
    assert met["reasonCode"] == [{"text": "diabetes"}]
    assert met["reasonReference"] == [{"reference": f"Condition/{diabetes['id']}"}]


def test_reason_with_same_span_as_problem_is_not_duplicated() -> None:
    text = "Asthma. Albuterol for asthma exacerbation."
    note = make_note(text)
    ents = [
        entity(text, "asthma exacerbation", "Problem", "T1"),
        entity(text, "asthma exacerbation", "Reason", "T2"),
        entity(text, "Albuterol", "Drug", "T3"),
    ]
    doc = note.document.with_annotations(ents, [Relation("Reason-Drug", "T2", "T3")])
    m = map_extraction(note, doc, MODEL)
    (c,) = map(as_json, m.conditions)
    assert sorted(e.label for e in read_evidence(c)) == ["Problem", "Reason"]
    (med,) = map(as_json, m.medication_statements)
    assert med["reasonReference"] == [{"reference": f"Condition/{c['id']}"}]


def test_negated_reason_is_not_a_medication_reason() -> None:
    text = "Aspirin, not for fever."
    note = make_note(text)
    ents = [entity(text, "Aspirin", "Drug", "T1"), entity(text, "fever", "Reason", "T2", negated=True)]
    m = map_extraction(note, note.document.with_annotations(ents, [Relation("Reason-Drug", "T2", "T1")]), MODEL)
    (med,) = map(as_json, m.medication_statements)
    assert "reasonCode" not in med and "reasonReference" not in med
    (c,) = map(as_json, m.conditions)
    assert code_of(c["verificationStatus"]) == "refuted"


def test_hypothetical_reason_is_a_reason_code_without_a_condition() -> None:
    """Regression: a hypothetical Reason ("use Tylenol for pain and fever") is no Condition, and its reasonReference
    lookup raised KeyError, so 5 of the 207 ACI-Bench notes were dead-lettered with E009."""
    text = "Avoid ibuprofen and use Tylenol for pain and fever."
    note = make_note(text)
    pain = entity(text, "pain", "Reason", "T2")
    ents = [entity(text, "Tylenol", "Drug", "T1"), dataclasses.replace(pain, hypothetical=True)]
    m = map_extraction(note, note.document.with_annotations(ents, [Relation("Reason-Drug", "T2", "T1")]), MODEL)
    (med,) = map(as_json, m.medication_statements)
    assert med["reasonCode"] == [{"text": "pain"}]
    assert "reasonReference" not in med
    assert m.conditions == []


# ---------------------------------------------------------------------------------------------- MedicationStatement


def test_medication_statement(note: SourceNote, mapped: MappedResources) -> None:
    met = meds_by_text(mapped.medication_statements)["metformin"]
    assert met["status"] == "active"  # no status cue in its clause
    assert met["subject"] == {"reference": "Patient/p1"}
    assert met["context"] == {"reference": "Encounter/e1"}
    assert met["dateAsserted"] == "2024-03-01T10:00:00Z" and note.date is not None
    assert met["derivedFrom"] == [{"reference": "DocumentReference/doc-1"}]
    labels = [e.label for e in read_evidence(met)]
    assert labels == ["Drug", "Dosage", "Route", "Frequency", "Duration", "Reason"]


def test_dosage_structured(mapped: MappedResources) -> None:
    met = meds_by_text(mapped.medication_statements)["metformin"]
    (dosage,) = met["dosage"]
    assert dosage["text"] == "500 mg PO BID for 3 days"
    assert dosage["doseAndRate"] == [
        {"doseQuantity": {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
    ]
    assert dosage["route"] == {
        "text": "PO",
        "coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}],
    }
    assert dosage["timing"] == {
        "code": {"text": "BID"},
        "repeat": {
            "frequency": 2,
            "period": 1,
            "periodUnit": "d",
            "boundsDuration": {"value": 3, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
        },
    }
    assert "asNeededBoolean" not in dosage


def test_drug_without_attributes_has_no_dosage(mapped: MappedResources) -> None:
    amox = meds_by_text(mapped.medication_statements)["amoxicillin"]
    assert "dosage" not in amox and "reasonCode" not in amox


def test_unparseable_attributes_keep_text_only() -> None:
    text = "Heparin high dose parenteral with meals long-term."
    note = make_note(text)
    ents = [
        entity(text, "Heparin", "Drug", "T1"),
        entity(text, "high dose", "Dosage", "T2"),
        entity(text, "parenteral", "Route", "T3"),
        entity(text, "with meals", "Frequency", "T4"),
        entity(text, "long-term", "Duration", "T5"),
    ]
    rels = [Relation(f"{e.label}-Drug", e.id, "T1") for e in ents[1:]]
    (med,) = map_extraction(note, note.document.with_annotations(ents, rels), MODEL).medication_statements
    MedicationStatement.model_validate(med.model_dump())
    assert as_json(med)["dosage"] == [
        {
            "text": "high dose parenteral with meals long-term",
            "route": {"text": "parenteral"},
            "timing": {"code": {"text": "with meals"}},
        }
    ]


def test_prn_ranges_and_bounds_range() -> None:
    text = "Oxycodone 1-2 tablets q4-6h prn for 5-7 days."
    note = make_note(text)
    ents = [
        entity(text, "Oxycodone", "Drug", "T1"),
        entity(text, "1-2 tablets", "Dosage", "T2"),
        entity(text, "q4-6h prn", "Frequency", "T3"),
        entity(text, "for 5-7 days", "Duration", "T4"),
    ]
    rels = [Relation(f"{e.label}-Drug", e.id, "T1") for e in ents[1:]]
    (med,) = map_extraction(note, note.document.with_annotations(ents, rels), MODEL).medication_statements
    MedicationStatement.model_validate(json.loads(med.model_dump_json()))
    (dosage,) = as_json(med)["dosage"]
    assert dosage["asNeededBoolean"] is True
    assert dosage["doseAndRate"] == [
        {"doseRange": {"low": {"value": 1, "unit": "tablet"}, "high": {"value": 2, "unit": "tablet"}}}
    ]
    rep = dosage["timing"]["repeat"]
    assert (rep["frequency"], rep["period"], rep["periodMax"], rep["periodUnit"]) == (1, 4, 6, "h")
    ucum = "http://unitsofmeasure.org"
    assert rep["boundsRange"] == {
        "low": {"value": 5, "unit": "days", "system": ucum, "code": "d"},
        "high": {"value": 7, "unit": "days", "system": ucum, "code": "d"},
    }


def test_attributes_follow_relations_only() -> None:
    text = "Lisinopril 10 mg and aspirin daily."
    note = make_note(text)
    ents = [
        entity(text, "Lisinopril", "Drug", "T1"),
        entity(text, "10 mg", "Dosage", "T2"),
        entity(text, "aspirin", "Drug", "T3"),
        entity(text, "daily", "Frequency", "T4"),  # related to nothing: not mapped
    ]
    m = map_extraction(note, note.document.with_annotations(ents, [Relation("Dosage-Drug", "T2", "T1")]), MODEL)
    meds = meds_by_text(m.medication_statements)
    assert meds["Lisinopril"]["dosage"][0]["text"] == "10 mg"
    assert "dosage" not in meds["aspirin"]


def test_attribute_shared_by_two_drugs() -> None:
    text = "Amlodipine and atorvastatin daily."
    note = make_note(text)
    ents = [
        entity(text, "Amlodipine", "Drug", "T1"),
        entity(text, "atorvastatin", "Drug", "T2"),
        entity(text, "daily", "Frequency", "T3"),
    ]
    rels = [Relation("Frequency-Drug", "T3", "T1"), Relation("Frequency-Drug", "T3", "T2")]
    m = map_extraction(note, note.document.with_annotations(ents, rels), MODEL)
    assert len(m.medication_statements) == 2
    for med in map(as_json, m.medication_statements):
        assert med["dosage"][0]["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}


def test_negated_drug_is_not_taken() -> None:
    text = "Not on warfarin."
    note = make_note(text)
    doc = note.document.with_annotations([entity(text, "warfarin", "Drug", "T1", negated=True)])
    (med,) = map_extraction(note, doc, MODEL).medication_statements
    assert med.status == "not-taken"


# ---------------------------------------------------------------------------------------------- Provenance


def test_provenance(note: SourceNote, mapped: MappedResources) -> None:
    (model,) = mapped.provenance
    prov = as_json(model)
    expected = [f"{r.get_resource_type()}/{r.id}" for r in [*mapped.conditions, *mapped.medication_statements]]
    assert [t["reference"] for t in prov["target"]] == expected
    assert model.recorded == ASSERTED and note.date != ASSERTED
    (agent,) = prov["agent"]
    assert agent["who"]["display"] == f"clinie model {MODEL}"
    assert agent["who"]["identifier"]["value"] == MODEL
    assert code_of(agent["type"]) == "assembler"
    (ent,) = prov["entity"]
    assert ent["role"] == "source"
    assert ent["what"]["reference"] == "DocumentReference/doc-1"
    assert "version 4" in ent["what"]["display"]
    assert ent["extension"] == [{"url": SOURCE_VERSION_URL, "valueString": "4"}]


def test_no_entities_no_resources(note: SourceNote) -> None:
    m = map_extraction(note, note.document, MODEL)
    assert m.resources() == [] and m.provenance == []


# ---------------------------------------------------------------------------------------------- ids, dates, subject


def test_mapping_is_deterministic(note: SourceNote) -> None:
    a = map_extraction(note, annotate_note(note.document), MODEL, asserted=ASSERTED)
    b = map_extraction(note, annotate_note(note.document), MODEL, asserted=ASSERTED)
    assert [as_json(r) for r in a.resources()] == [as_json(r) for r in b.resources()]


def test_new_document_or_model_version_gives_new_ids(note: SourceNote) -> None:
    ids = {r.id for r in map_extraction(note, annotate_note(note.document), MODEL).resources()}
    v5 = make_note(version="5")
    ids_v5 = {r.id for r in map_extraction(v5, annotate_note(v5.document), MODEL).resources()}
    ids_m = {r.id for r in map_extraction(note, annotate_note(note.document), "clinie_ie/5").resources()}
    assert ids.isdisjoint(ids_v5) and ids.isdisjoint(ids_m)


def test_asserted_defaults(note: SourceNote) -> None:
    ann = annotate_note(note.document)
    assert map_extraction(note, ann, MODEL).provenance[0].recorded == note.date
    naive = map_extraction(note, ann, MODEL, asserted=datetime(2024, 1, 2, 3, 4, 5))
    assert naive.provenance[0].recorded == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    undated = make_note(date=None)
    m = map_extraction(undated, annotate_note(undated.document), MODEL, asserted=ASSERTED)
    assert m.medication_statements[0].dateAsserted == ASSERTED
    assert m.conditions and all("recordedDate" not in as_json(c) for c in m.conditions)


def test_note_without_patient_uses_data_absent_reason() -> None:
    note = make_note(patient=None, encounter=None)
    m = map_extraction(note, annotate_note(note.document), MODEL)
    assert m.conditions and m.medication_statements
    for r in [*m.conditions, *m.medication_statements]:
        j = as_json(r)
        assert j["subject"] == {"extension": [{"url": DATA_ABSENT_REASON_URL, "valueCode": "unknown"}]}
        assert "encounter" not in j and "context" not in j
        type(r).model_validate(r.model_dump())


def test_annotated_text_must_match_the_note(note: SourceNote) -> None:
    other = Document(id=note.resource_id, text=note.text + " ")
    with pytest.raises(InvalidInputError) as exc:
        map_extraction(note, other, MODEL)
    assert exc.value.code == ErrorCode.BAD_INTERCHANGE


def test_patient_stub() -> None:
    p = patient_stub("Patient/p1")
    assert isinstance(p, Patient) and p.id == "p1"
    assert json.loads(p.model_dump_json()) == {"resourceType": "Patient", "id": "p1"}
    assert patient_stub(None) is None and patient_stub("Group/g") is None


# ---------------------------------------------------------------------------------------------- real notes


def test_synthea_notes_map_and_validate(shared_data: Path) -> None:
    """Every Synthea note, with its '(disorder)'/'(finding)' phrases as Problems and the drugs listed under
    '# Medications' as Drugs: all resources validate and all evidence points at the mention."""
    finding = re.compile(r"[a-z][a-z ,'-]*? \((?:disorder|finding)\)")
    lines = (shared_data / "synthea" / "DocumentReference.ndjson").read_bytes().splitlines()
    total = 0
    for line in lines:
        note = parse_document_reference(line)
        ents: list[Entity] = [
            Entity(f"P{i}", "Problem", m.start(), m.end(), negated=i % 5 == 0)
            for i, m in enumerate(finding.finditer(note.text))
        ]
        meds = note.text.split("# Medications\n", 1)
        if len(meds) == 2:
            offset = len(meds[0]) + len("# Medications\n")
            block = meds[1].split("\n\n", 1)[0]
            pos = offset
            for i, ln in enumerate(block.split("\n")):
                if ln.strip() and not ln.startswith("No "):
                    ents.append(Entity(f"D{i}", "Drug", pos, pos + len(ln.rstrip())))
                pos += len(ln) + 1
        ann = note.document.with_annotations(ents)
        m = map_extraction(note, ann, MODEL)
        for r in m.resources():
            type(r).model_validate(r.model_dump())
            for ev in read_evidence(as_json(r)):
                assert note.text[ev.start : ev.end] == ann.text[ev.start : ev.end]
        for c in map(as_json, m.conditions):
            check_condition_invariants(c)
            if code_of(c["verificationStatus"]) == "refuted":
                assert "clinicalStatus" not in c
        total += len(m.resources())
    assert total > 196
