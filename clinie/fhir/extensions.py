"""clinie's extension and code-system URLs, and the note-evidence extension.

Note evidence (``NOTE_EVIDENCE_URL``), on every Condition and MedicationStatement, once per mention used::

    {"url": "https://clinie.dev/fhir/StructureDefinition/note-evidence",
     "extension": [
        {"url": "document", "valueReference": {"reference": "DocumentReference/<id>"}},
        {"url": "documentVersion", "valueString": "<meta.versionId or content hash>"},
        {"url": "modelVersion", "valueString": "<model version>"},
        {"url": "start", "valueInteger": 12},      # char offset into the note text (inclusive)
        {"url": "end", "valueInteger": 25},        # char offset (exclusive)
        {"url": "label", "valueCode": "Problem"},  # entity label (clinie label schema v1)
        {"url": "negated", "valueBoolean": true},  # only when the mention is negated
        {"url": "confidence", "valueDecimal": 0.97}]}  # only when the model gave a score

The note text is the decoded attachment text (for HTML notes: the extracted text, see ``clinie.fhir.docref``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.reference import Reference

from clinie.fhir.systems import INGREDIENT

BASE = "https://clinie.dev/fhir"
NOTE_EVIDENCE_URL = f"{BASE}/StructureDefinition/note-evidence"
# on Provenance.entity: the version of the source DocumentReference that was processed
SOURCE_VERSION_URL = f"{BASE}/StructureDefinition/source-document-version"
# on Provenance, once per code system used by its targets' codings: valueCoding = {system, version} (no code)
TERMINOLOGY_VERSION_URL = f"{BASE}/StructureDefinition/terminology-version"
# Condition.category for conditions the note attributes to a drug (ADE mentions)
CONDITION_CATEGORY_SYSTEM = f"{BASE}/CodeSystem/condition-category"
# Coding.system for the lowercase generic ingredient clinie.normalize assigns to a Drug mention
INGREDIENT_SYSTEM = INGREDIENT  # re-exported: the ingredient code system (clinie.fhir.systems)
ADE_CATEGORY_CODE = "adverse-drug-event"
# Provenance.agent.who.identifier.system: the model version that produced the resources
MODEL_VERSION_SYSTEM = f"{BASE}/model-version"
DATA_ABSENT_REASON_URL = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

CONFIDENCE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Evidence:
    """One mention in one note version, as carried by the note-evidence extension."""

    document_id: str
    document_version: str
    model_version: str
    start: int
    end: int
    label: str
    negated: bool = False
    confidence: float | None = None


def evidence_extension(ev: Evidence) -> Extension:
    """The note-evidence extension for one mention."""
    subs = [
        Extension(url="document", valueReference=Reference(reference=f"DocumentReference/{ev.document_id}")),
        Extension(url="documentVersion", valueString=ev.document_version),
        Extension(url="modelVersion", valueString=ev.model_version),
        Extension(url="start", valueInteger=ev.start),
        Extension(url="end", valueInteger=ev.end),
        Extension(url="label", valueCode=ev.label),
    ]
    if ev.negated:
        subs.append(Extension(url="negated", valueBoolean=True))
    if ev.confidence is not None and math.isfinite(ev.confidence):
        subs.append(Extension(url="confidence", valueDecimal=round(Decimal(str(ev.confidence)), CONFIDENCE_DIGITS)))
    return Extension(url=NOTE_EVIDENCE_URL, extension=subs)


def read_evidence(resource: Mapping[str, Any]) -> list[Evidence]:
    """The note-evidence extensions of a resource in JSON form (malformed ones are skipped)."""
    out: list[Evidence] = []
    for ext in resource.get("extension") or ():
        if ext.get("url") != NOTE_EVIDENCE_URL:
            continue
        subs = {s.get("url"): s for s in ext.get("extension") or ()}
        try:
            ref = subs["document"]["valueReference"]["reference"]
            conf = subs.get("confidence", {}).get("valueDecimal")
            out.append(
                Evidence(
                    document_id=str(ref).rsplit("/", 1)[-1],
                    document_version=str(subs["documentVersion"]["valueString"]),
                    model_version=str(subs["modelVersion"]["valueString"]),
                    start=int(subs["start"]["valueInteger"]),
                    end=int(subs["end"]["valueInteger"]),
                    label=str(subs["label"]["valueCode"]),
                    negated=bool(subs.get("negated", {}).get("valueBoolean", False)),
                    confidence=None if conf is None else float(conf),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out
