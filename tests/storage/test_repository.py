"""store_extraction and friends against the real PostgreSQL (``pg_url``): idempotency, supersession, columns."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.resource import Resource
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinie.document import Entity, Relation
from clinie.fhir.docref import SourceNote, parse_document_reference
from clinie.fhir.mapping import MappedResources, map_extraction
from clinie.storage.models import FhirResource, SourceDocument
from clinie.storage.repository import StoreResult, iter_resources, resource_row, store_extraction
from tests.fhir.factories import NOTE, annotate_note, docref_dict, entity


def get_source_document(session: Session, doc_id: str) -> SourceDocument | None:
    return session.get(SourceDocument, doc_id)


def count_resources(session: Session, resource_type: str | None = None) -> int:
    stmt = select(func.count()).select_from(FhirResource)
    if resource_type is not None:
        stmt = stmt.where(FhirResource.resource_type == resource_type)
    return int(session.execute(stmt).scalar_one())

MODEL = "clinie_ie/1"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MODELS: dict[str, type[Resource]] = {
    "Condition": Condition,
    "MedicationStatement": MedicationStatement,
    "AllergyIntolerance": AllergyIntolerance,
    "Provenance": Provenance,
    "Patient": Patient,
}


def new_note(
    text: str = NOTE, *, version: str | None = "1", doc_id: str | None = None, patient: str | None = None
) -> SourceNote:
    return parse_document_reference(
        docref_dict(doc_id or f"doc-{uuid.uuid4().hex[:10]}", text, version=version, patient=patient or "p-x")
    )


def mapping(note: SourceNote, model: str = MODEL, asserted: datetime = T0) -> MappedResources:
    return map_extraction(note, annotate_note(note.document), model, asserted=asserted)


def store(factory: sessionmaker[Session], note: SourceNote, mapped: MappedResources, model: str = MODEL) -> StoreResult:
    with factory() as session, session.begin():
        return store_extraction(session, note, mapped, model)


def rows(factory: sessionmaker[Session], doc_id: str) -> list[FhirResource]:
    with factory() as session:
        stmt = select(FhirResource).where(FhirResource.source_document_id == doc_id)
        return list(session.scalars(stmt.order_by(FhirResource.resource_type, FhirResource.id)))


def by_type(found: list[FhirResource]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in found:
        out[r.resource_type] = out.get(r.resource_type, 0) + 1
    return out


def snapshot(found: list[FhirResource]) -> list[tuple[Any, ...]]:
    return [
        (r.resource_type, r.id, r.version_id, r.last_updated, json.dumps(r.resource, sort_keys=True)) for r in found
    ]


# ---------------------------------------------------------------------------------------------- store


def test_store_inserts_everything(factory: sessionmaker[Session]) -> None:
    patient = f"p-{uuid.uuid4().hex[:8]}"
    note = new_note(patient=patient)
    result = store(factory, note, mapping(note))
    assert result == StoreResult(conditions=4, medication_statements=2, inserted=8)  # + Provenance + Patient
    found = rows(factory, note.resource_id)
    assert by_type(found) == {"Condition": 4, "MedicationStatement": 2, "Provenance": 1}
    for r in found:
        assert r.version_id == 1
        assert r.resource["meta"]["versionId"] == "1"
        assert datetime.fromisoformat(r.resource["meta"]["lastUpdated"]) == r.last_updated
        assert (r.source_document_id, r.source_document_version, r.model_version) == (note.resource_id, "1", MODEL)
        assert r.patient_id == patient
        MODELS[r.resource_type].model_validate(r.resource)
    with factory() as session:
        src = get_source_document(session, note.resource_id)
        assert src is not None
        assert (src.version, src.model_version, src.conditions, src.medication_statements) == ("1", MODEL, 4, 2)
        assert src.content_sha256 == note.content_sha256 and src.patient_id == patient
        stub = session.get(FhirResource, ("Patient", patient))
        assert stub is not None and stub.patient_id == patient
        assert stub.resource["resourceType"] == "Patient" and stub.resource["id"] == patient


def test_store_again_changes_nothing(factory: sessionmaker[Session]) -> None:
    note = new_note()
    store(factory, note, mapping(note))
    before = snapshot(rows(factory, note.resource_id))
    with factory() as session:
        src = get_source_document(session, note.resource_id)
        assert src is not None
        processed_at = src.processed_at
    # reprocessing later (a new asserted time) with the same document and model version
    again = store(factory, note, mapping(note, asserted=datetime(2025, 1, 1, tzinfo=UTC)))
    assert again == StoreResult(conditions=4, medication_statements=2, unchanged=8)
    assert snapshot(rows(factory, note.resource_id)) == before
    with factory() as session:
        src = get_source_document(session, note.resource_id)
        assert src is not None and src.processed_at == processed_at


def test_changed_content_bumps_version(factory: sessionmaker[Session]) -> None:
    note = new_note()
    store(factory, note, mapping(note))
    # same spans (so same ids), but the model now gives a score for the Reason mention
    ann = annotate_note(note.document)
    ents = [
        Entity(e.id, e.label, e.start, e.end, e.negated, 0.5 if e.label == "Reason" else e.score) for e in ann.entities
    ]
    changed = map_extraction(note, ann.with_annotations(ents), MODEL, asserted=T0)
    result = store(factory, note, changed)
    # the Reason Condition and the MedicationStatement citing the Reason changed
    assert (result.inserted, result.updated, result.unchanged, result.superseded_deleted) == (0, 2, 6, 0)
    updated = [r for r in rows(factory, note.resource_id) if r.version_id == 2]
    assert sorted(r.resource_type for r in updated) == ["Condition", "MedicationStatement"]
    for r in updated:
        assert r.resource["meta"]["versionId"] == "2"
        assert datetime.fromisoformat(r.resource["meta"]["lastUpdated"]) == r.last_updated


def test_new_document_version_supersedes(factory: sessionmaker[Session]) -> None:
    v1 = new_note(version="1")
    store(factory, v1, mapping(v1))
    old_ids = {r.id for r in rows(factory, v1.resource_id)}
    text = (
        "Denies fever. Plan: metformin 500 mg PO BID for 3 days for diabetes. Rash after amoxicillin. "
        "No chest pain, hypertension."
    )
    v2 = new_note(text, version="2", doc_id=v1.resource_id)
    result = store(factory, v2, mapping(v2))
    assert result.superseded_deleted == 7 and result.inserted == 7 and result.unchanged == 1  # Patient stub
    found = rows(factory, v1.resource_id)
    assert {r.source_document_version for r in found} == {"2"}
    assert old_ids.isdisjoint({r.id for r in found})
    assert by_type(found) == {"Condition": 4, "MedicationStatement": 2, "Provenance": 1}
    with factory() as session:
        src = get_source_document(session, v1.resource_id)
        assert src is not None and src.version == "2"


def test_content_hash_versions_supersede(factory: sessionmaker[Session]) -> None:
    a = new_note(version=None)
    store(factory, a, mapping(a))
    b = new_note(NOTE + "Follow up in 2 weeks.\n", version=None, doc_id=a.resource_id)
    assert a.version != b.version
    result = store(factory, b, mapping(b))
    assert result.superseded_deleted == 7
    assert {r.source_document_version for r in rows(factory, a.resource_id)} == {b.version}


def test_new_model_version_supersedes(factory: sessionmaker[Session]) -> None:
    note = new_note()
    store(factory, note, mapping(note))
    result = store(factory, note, mapping(note, model="clinie_ie/2"), model="clinie_ie/2")
    assert result.superseded_deleted == 7
    assert {r.model_version for r in rows(factory, note.resource_id)} == {"clinie_ie/2"}


def test_fewer_findings_delete_the_missing_rows(factory: sessionmaker[Session]) -> None:
    note = new_note()
    store(factory, note, mapping(note))
    empty = map_extraction(note, note.document, "clinie_ie/9", asserted=T0)
    result = store(factory, note, empty, model="clinie_ie/9")
    assert result == StoreResult(conditions=0, medication_statements=0, unchanged=1, superseded_deleted=7)
    assert rows(factory, note.resource_id) == []


def test_stale_version_is_skipped(factory: sessionmaker[Session]) -> None:
    v5 = new_note(version="5")
    store(factory, v5, mapping(v5))
    before = snapshot(rows(factory, v5.resource_id))
    v4 = new_note("An older text of the note: hypertension.", version="4", doc_id=v5.resource_id)
    result = store(factory, v4, map_extraction(v4, v4.document, MODEL))
    assert result.stale and result.inserted == result.updated == result.superseded_deleted == 0
    assert snapshot(rows(factory, v5.resource_id)) == before


def test_rollback_leaves_nothing(factory: sessionmaker[Session]) -> None:
    note = new_note()
    with pytest.raises(RuntimeError), factory() as session, session.begin():
        store_extraction(session, note, mapping(note), MODEL)
        raise RuntimeError("the consumer failed after storing")
    assert rows(factory, note.resource_id) == []
    with factory() as session:
        assert get_source_document(session, note.resource_id) is None


def test_concurrent_stores_of_one_note(factory: sessionmaker[Session]) -> None:
    note = new_note()
    mapped = mapping(note)
    results: list[StoreResult] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(store(factory, note, mapped))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.inserted for r in results) in (7, 8)  # the Patient stub may already exist (shared patient)
    assert by_type(rows(factory, note.resource_id)) == {"Condition": 4, "MedicationStatement": 2, "Provenance": 1}


def test_existing_patient_is_not_overwritten(factory: sessionmaker[Session]) -> None:
    patient = f"p-{uuid.uuid4().hex[:8]}"
    a, b = new_note(patient=patient), new_note(patient=patient)
    assert store(factory, a, mapping(a)).inserted == 8
    assert store(factory, b, mapping(b)).inserted == 7  # the stub is there already
    with factory() as session:
        stub = session.get(FhirResource, ("Patient", patient))
        assert stub is not None and stub.version_id == 1


# ---------------------------------------------------------------------------------------------- search columns


def test_search_columns_of_stored_rows(factory: sessionmaker[Session]) -> None:
    note = new_note()
    mapped = mapping(note)
    store(factory, note, mapped)
    found = {(r.resource_type, r.code_text): r for r in rows(factory, note.resource_id)}
    htn = found[("Condition", "hypertension")]
    assert (htn.status, htn.verification_status, htn.encounter_id) == ("active", "unconfirmed", "e1")
    assert htn.recorded_date == note.date and htn.codes is None and htn.targets is None
    pain = found[("Condition", "chest pain")]
    assert (pain.status, pain.verification_status) == (None, "refuted")
    met = found[("MedicationStatement", "metformin")]
    # no MedicationStatement search parameter reads recorded_date, so the registry leaves it empty
    assert (met.status, met.recorded_date, met.encounter_id) == ("active", None, "e1")
    prov = found[("Provenance", None)]
    assert prov.recorded_date == T0 and prov.patient_id == "p-x"
    assert prov.targets == [
        f"{r.get_resource_type()}/{r.id}" for r in [*mapped.conditions, *mapped.medication_statements]
    ]


def search_columns(resource: Resource | dict[str, Any]) -> dict[str, Any]:
    """The row the store would write for ``resource`` (the real indexer: ``resource_row``)."""
    return resource_row(resource, version_id=1, last_updated=T0)


def test_allergy_is_stored_and_indexed(factory: sessionmaker[Session]) -> None:
    text = "ALLERGIES\nPenicillin (hives).\n"
    patient = f"p-{uuid.uuid4().hex[:8]}"
    note = new_note(text, patient=patient)
    ents = [entity(text, "Penicillin", "Drug", "T1"), entity(text, "hives", "ADE", "T2")]
    ents[0] = Entity(ents[0].id, "Drug", ents[0].start, ents[0].end, ingredient="penicillin")
    doc = note.document.with_annotations(entities=ents, relations=[Relation("ADE-Drug", "T2", "T1")])
    mapped = map_extraction(note, doc, MODEL, asserted=T0)
    assert len(mapped.allergies) == 1 and mapped.conditions == [] and mapped.medication_statements == []
    result = store(factory, note, mapped)
    assert result.inserted == 3  # AllergyIntolerance, Provenance, Patient stub
    (allergy,) = [r for r in rows(factory, note.resource_id) if r.resource_type == "AllergyIntolerance"]
    assert (allergy.patient_id, allergy.status, allergy.verification_status) == (patient, "active", "unconfirmed")
    assert allergy.code_text == "penicillin" and allergy.recorded_date == note.date
    assert "https://clinie.dev/fhir/CodeSystem/ingredient|penicillin" in (allergy.codes or [])
    AllergyIntolerance.model_validate(allergy.resource)
    assert store(factory, note, mapped).unchanged == 3


def test_search_columns_from_resources_alone() -> None:
    note = new_note()
    m = mapping(note)
    cond = search_columns(m.conditions[0])
    assert cond["source_document_id"] == note.resource_id
    assert (cond["source_document_version"], cond["model_version"]) == ("1", MODEL)
    prov = search_columns(m.provenance[0])
    assert (prov["source_document_id"], prov["source_document_version"], prov["model_version"]) == (
        note.resource_id,
        "1",
        MODEL,
    )
    assert prov["patient_id"] is None  # a Provenance names no patient; the store adds the note's
    med = search_columns(
        {
            "resourceType": "MedicationStatement",
            "id": "ms9",
            "status": "active",
            "subject": {"reference": "Patient/q"},
            "derivedFrom": [{"reference": "DocumentReference/d9"}],
            "effectivePeriod": {"start": "2024-02", "end": "2024-03-05"},
        }
    )
    assert (med["patient_id"], med["source_document_id"], med["status"]) == ("q", "d9", "active")
    assert med["effective_start"] == datetime(2024, 2, 1, tzinfo=UTC)
    assert med["effective_end"] == datetime(2024, 3, 5, 23, 59, 59, 999999, tzinfo=UTC)
    assert search_columns({"resourceType": "Patient", "id": "z"})["patient_id"] == "z"


def test_search_columns_of_a_coded_synthea_condition(shared_data: Path) -> None:
    line = (shared_data / "synthea" / "Condition.ndjson").read_text().splitlines()[0]
    data = json.loads(line)
    cols = search_columns(Condition.model_validate(data))
    coding = data["code"]["coding"][0]
    assert cols["codes"] == [f"{coding['system']}|{coding['code']}", coding["code"]]
    assert cols["code_text"] == data["code"]["text"].lower()
    assert cols["patient_id"] == data["subject"]["reference"].split("/")[1]
    assert cols["encounter_id"] == data["encounter"]["reference"].split("/")[1]
    assert cols["status"] == data["clinicalStatus"]["coding"][0]["code"]
    assert cols["verification_status"] == "confirmed"
    assert cols["effective_start"] == datetime.fromisoformat(data["onsetDateTime"])
    assert cols["recorded_date"] == datetime.fromisoformat(data["recordedDate"])
    assert cols["source_document_id"] is None


# ---------------------------------------------------------------------------------------------- read helpers


def test_count_and_iter_resources(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        before = count_resources(session, "Condition"), count_resources(session)
    note = new_note()
    store(factory, note, mapping(note))
    with factory() as session:
        assert count_resources(session, "Condition") == before[0] + 4
        assert count_resources(session) >= before[1] + 7
        exported = list(iter_resources(session, "Condition", batch_size=2))
    assert len(exported) == before[0] + 4
    assert [r["id"] for r in exported] == sorted(r["id"] for r in exported)
    for r in exported:
        Condition.model_validate(r)


def test_synthea_notes_store_twice(factory: sessionmaker[Session], shared_data: Path) -> None:
    """Real (synthetic, CC0) notes with their '(disorder)'/'(finding)' phrases as Problems: the second pass
    writes nothing."""
    finding = re.compile(r"[a-z][a-z ,'-]*? \((?:disorder|finding)\)")
    lines = (shared_data / "synthea" / "DocumentReference.ndjson").read_bytes().splitlines()[:50]
    items = []
    for line in lines:
        note = parse_document_reference(line)
        ents = [Entity(f"P{i}", "Problem", m.start(), m.end()) for i, m in enumerate(finding.finditer(note.text))]
        items.append((note, map_extraction(note, note.document.with_annotations(ents), "synthea-test/1")))
    first = [store(factory, note, mapped, "synthea-test/1") for note, mapped in items]
    assert sum(r.conditions for r in first) > 50
    second = [store(factory, note, mapped, "synthea-test/1") for note, mapped in items]
    assert len(second) == len(first) > 0
    assert all(r.inserted == r.updated == r.superseded_deleted == 0 for r in second)
    assert sum(r.unchanged for r in second) == sum(r.inserted + r.unchanged for r in first)
