"""Synthetic DocumentReferences and annotated documents for the FHIR and storage tests (no real patient text)."""

from __future__ import annotations

import base64
import json
from typing import Any

from clinie.document import Document, Entity, Relation

NOTE = (
    "Assessment: hypertension, stable. Denies chest pain.\n"
    "Plan: metformin 500 mg PO BID for 3 days for diabetes. Rash after amoxicillin.\n"
)


def docref_dict(
    doc_id: str = "doc-1",
    text: str | None = NOTE,
    *,
    version: str | None = None,
    content_type: str | None = "text/plain; charset=utf-8",
    data: str | None = None,
    patient: str | None = "p1",
    encounter: str | None = "e1",
    date: str | None = "2024-03-01T10:00:00Z",
    encoding: str = "utf-8",
) -> dict[str, Any]:
    attachment: dict[str, Any] = {} if content_type is None else {"contentType": content_type}
    if data is not None:
        attachment["data"] = data
    elif text is not None:
        attachment["data"] = base64.b64encode(text.encode(encoding)).decode()
    res: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "status": "current",
        "content": [{"attachment": attachment}],
    }
    if patient is not None:
        res["subject"] = {"reference": f"Patient/{patient}"}
    if date is not None:
        res["date"] = date
    if encounter is not None:
        res["context"] = {"encounter": [{"reference": f"Encounter/{encounter}"}]}
    if version is not None:
        res["meta"] = {"versionId": version}
    return res


def docref_bytes(*args: Any, **kwargs: Any) -> bytes:
    return json.dumps(docref_dict(*args, **kwargs)).encode()


def entity(
    text: str,
    mention: str,
    label: str,
    eid: str,
    *,
    negated: bool = False,
    score: float | None = None,
    occurrence: int = 0,
) -> Entity:
    """The ``occurrence``-th occurrence of ``mention`` in ``text`` as an entity."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(mention, start + 1)
    return Entity(eid, label, start, start + len(mention), negated, score)


def annotate_note(doc: Document) -> Document:
    """The standard annotation of :data:`NOTE`: Problems (one negated), a Drug with all attributes, an ADE."""
    t = doc.text
    ents = [
        entity(t, "hypertension", "Problem", "T1", score=0.97),
        entity(t, "chest pain", "Problem", "T2", negated=True),
        entity(t, "metformin", "Drug", "T3", score=0.99),
        entity(t, "500 mg", "Dosage", "T4"),
        entity(t, "PO", "Route", "T5"),
        entity(t, "BID", "Frequency", "T6"),
        entity(t, "for 3 days", "Duration", "T7"),
        entity(t, "diabetes", "Reason", "T8"),
        entity(t, "Rash", "ADE", "T9"),
        entity(t, "amoxicillin", "Drug", "T10"),
    ]
    rels = [
        Relation("Dosage-Drug", "T4", "T3"),
        Relation("Route-Drug", "T5", "T3"),
        Relation("Frequency-Drug", "T6", "T3"),
        Relation("Duration-Drug", "T7", "T3"),
        Relation("Reason-Drug", "T8", "T3"),
        Relation("ADE-Drug", "T9", "T10"),
    ]
    return doc.with_annotations(ents, rels)
