"""resource_json: the same FHIR JSON as fhir.resources' ``model_dump_json``, over mapped notes and edge cases."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference, DocumentReferenceContent
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.fhirprimitiveextension import FHIRPrimitiveExtension
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.timing import Timing, TimingRepeat
from fhir_core.fhirabstractmodel import FHIRAbstractModel

from clinie.annotate.bundle import transaction_bundle
from clinie.document import Document
from clinie.fhir.docref import parse_document_reference
from clinie.fhir.mapping import MappedResources, map_extraction, patient_stub
from clinie.fhir.serialize import resource_json
from clinie.io import read_documents
from tests.fhir.factories import NOTE, annotate_note, docref_dict

MODEL = "clinie_ie/4"
ASSERTED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def reference(resource: FHIRAbstractModel) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(resource.model_dump_json())
    return out


def assert_same(resource: FHIRAbstractModel) -> None:
    """Equal as JSON text (key order, 1 vs 1.0 and True vs 1 all count), not only as Python values."""
    expected, got = reference(resource), resource_json(resource)
    assert json.dumps(got) == json.dumps(expected)
    assert got == expected


def with_scores(doc: Document, seed: int) -> Document:
    """Some entities get a model score (the evidence confidence: a Decimal), including 0 and 1."""
    rng = random.Random(seed)
    choices = [None, 0.0, 1.0, 0.5, 0.97, 0.123456789, 1e-7]
    ents = [dataclasses.replace(e, score=rng.choice([*choices, rng.random()])) for e in doc.entities]
    return doc.with_annotations(ents, list(doc.relations))


def map_gold(doc: Document, seed: int, **docref: Any) -> MappedResources:
    fhir_id = re.sub(r"[^A-Za-z0-9\-.]", "-", doc.id)[:64]
    note = parse_document_reference(docref_dict(fhir_id, doc.text, **docref), max_chars=max(len(doc.text), 1))
    annotated = with_scores(dataclasses.replace(doc, id=note.resource_id), seed)
    return map_extraction(note, annotated, MODEL, asserted=ASSERTED)


# ---------------------------------------------------------------------------------------------- mapped notes


@pytest.mark.parametrize("docref", [{"version": "4"}, {"patient": None, "encounter": None, "date": None}])
def test_standard_note(docref: dict[str, Any]) -> None:
    note = parse_document_reference(docref_dict("doc-1", NOTE, **docref))
    mapped = map_extraction(note, annotate_note(note.document), MODEL, asserted=ASSERTED)
    assert len(mapped.resources()) > 5
    for res in mapped.resources():
        assert_same(res)
    stub = patient_stub(note.patient_ref)
    if stub is not None:
        assert_same(stub)
    assert_same(transaction_bundle(note, mapped))


@pytest.mark.parametrize(("corpus", "limit"), [("aci-notes-dev", 15), ("maccrobat-dev", 20), ("phee-dev", 300)])
def test_annotated_corpora(shared_data: Path, corpus: str, limit: int) -> None:
    """Every resource mapped from gold-annotated notes (all labels, relations, assertions, codes)."""
    docs = read_documents(shared_data / "corpus" / f"{corpus}.jsonl")[:limit]
    n = 0
    for i, doc in enumerate(docs):
        for res in map_gold(doc, i, version=str(i + 1)).resources():
            assert_same(res)
            n += 1
    assert n > len(docs) // 2


# ---------------------------------------------------------------------------------------------- edge cases


def test_primitive_extensions_comments_and_empty_elements() -> None:
    p = Patient.model_validate({
        "id": "p1",
        "gender": "female",
        "_gender": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]},
        "_birthDate": {"extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]},
        "fhir_comments": ["a comment"],
        "name": [{"given": ["A", "B"], "_given": [None, {"id": "g2"}]}],
        "active": False,
        "deceasedBoolean": False,
    })
    assert_same(p)
    # an element that serialises to {} is kept, an empty primitive extension is dropped (validation refuses
    # both, so the models are built without it)
    assert_same(Patient.model_construct(id="p2", gender="male", gender__ext=FHIRPrimitiveExtension.model_construct(),
                                        managingOrganization=Reference.model_construct(), link=[]))


@pytest.mark.parametrize("value", ["5", "5.0", "0.0001", "1E+2", "-3.25", "12345678901234567890", "0.9700"])
def test_decimals(value: str) -> None:
    assert_same(Observation.model_validate({
        "resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": value, "unit": "mg"},
        "extension": [{"url": "http://example.org/d", "valueDecimal": value}],
    }))
    assert_same(Quantity(value=Decimal(value)))


def test_dates_times_and_instants() -> None:
    assert_same(Observation.model_validate({
        "resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},
        "effectivePeriod": {"start": "2024", "end": "2024-03"}, "issued": "2024-03-01T10:00:00.5+02:00",
        "valueDateTime": "2024-03-01T10:00:00Z",
    }))
    assert_same(Timing(repeat=TimingRepeat(timeOfDay=["08:00:00", "20:30:00"], count=2)))
    assert_same(Patient(id="p3", birthDate="1970-01-02"))
    assert_same(Meta(versionId="7", lastUpdated=ASSERTED))


def test_contained_resources_and_uuid_identifiers() -> None:
    assert_same(Observation.model_validate({
        "resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "id": "c1", "gender": "other"}],
        "subject": {"reference": "#c1"},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.UUID(int=7)}"}],
    }))


def test_bytes_fall_back_to_model_dump_json() -> None:
    doc = DocumentReference(id="d1", status="current", content=[DocumentReferenceContent(
        attachment=Attachment(contentType="text/plain", data=b"aGVsbG8="))])
    assert_same(doc)


def test_serialisation_flags_fall_back() -> None:
    p = Patient(id="p4", gender="female", extension=[Extension(url="http://example.org/e", valueString="v")])
    p.__fhir_serialization_summary_only__ = True  # as if a caller left the flag set
    assert resource_json(p) == reference(p)


def test_output_is_a_fresh_dict() -> None:
    bundle = Bundle(type="collection")
    out = resource_json(bundle)
    out["type"] = "changed"
    assert resource_json(bundle)["type"] == "collection"
