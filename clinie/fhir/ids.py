"""Deterministic resource ids.

Every resource clinie emits gets a UUID v5 under :data:`CLINIE_NAMESPACE`, computed from

    (resource kind, document id, document version, model version, *key parts)

where the key parts name the fact inside the document (for entity-derived resources: the character offsets of
the mention, see :func:`entity_key`). The same document version processed by the same model version therefore
always yields the same ids (so storage can upsert), while a new document version or a new model version yields
new ids (so storage can tell the old rows apart and delete them).
"""

from __future__ import annotations

import uuid

# uuid5(NAMESPACE_URL, "https://clinie.dev/fhir/ids"), frozen here: changing it changes every id ever issued.
CLINIE_NAMESPACE = uuid.UUID("0b8c7c1e-2f55-5a4e-9a43-3b0c6c3f9d21")
_SEP = "\x1f"  # unit separator: cannot occur in FHIR ids or version strings that matter here


def resource_id(kind: str, document_id: str, document_version: str, model_version: str, *parts: str | int) -> str:
    """A stable UUID string for one resource of ``kind`` derived from one document version by one model."""
    name = _SEP.join([kind, document_id, document_version, model_version, *(str(p) for p in parts)])
    return str(uuid.uuid5(CLINIE_NAMESPACE, name))


def entity_key(start: int, end: int, label: str | None = None) -> tuple[str, ...]:
    """Key parts naming a mention: its offsets, and its label when the resource kind is label-specific."""
    return (f"{start}-{end}",) if label is None else (f"{start}-{end}", label)
