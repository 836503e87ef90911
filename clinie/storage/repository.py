"""Store extracted FHIR resources in PostgreSQL, idempotently, and read them back.

``store_extraction`` writes everything derived from one note version in the caller's transaction::

    with session_factory(engine)() as session, session.begin():
        result = store_extraction(session, note, mapped, model_version)

It never commits: if anything raises, the caller's transaction rolls back and nothing is written. Inside it:

1. takes a transaction-scoped advisory lock on the document id (two consumers never interleave on one note);
2. skips the note if it is *older* than the stored version (both ``meta.versionId`` values numeric and the new
   one smaller: a late redelivery), returning ``StoreResult(stale=True)``;
3. deletes the rows of this document that are not in the new set (older document versions or model versions:
   ``superseded_deleted``);
4. upserts each resource (``INSERT ... ON CONFLICT (resource_type, id) DO UPDATE``) only when its content
   differs from the stored one, ignoring ``meta`` and the processing-time fields in
   ``clinie.fhir.mapping.VOLATILE_FIELDS``; a change bumps ``version_id`` and ``last_updated`` (transaction
   time), mirrored in ``meta.versionId``/``meta.lastUpdated`` of the stored JSON;
5. inserts the Patient stub if that Patient is not stored yet (an existing Patient is never overwritten);
6. upserts the ``source_documents`` row (left untouched when nothing about it changed).

Reprocessing the same document version with the same model version thus writes nothing (all ``unchanged``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.resource import Resource
from sqlalchemy import delete, not_, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from clinie.fhir.docref import SourceNote
from clinie.fhir.mapping import VOLATILE_FIELDS, MappedResources, patient_stub
from clinie.fhir.references import reference_id
from clinie.fhir.search import index_columns
from clinie.fhir.serialize import resource_json
from clinie.storage.models import FhirResource, SourceDocument


@dataclass(frozen=True)
class StoreResult:
    """What ``store_extraction`` did. Counts of written rows cover every resource incl. Provenance and Patient."""

    conditions: int  # Conditions derived from the note (stored or unchanged)
    medication_statements: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded_deleted: int = 0  # rows of other versions of this document (or other model versions) removed
    stale: bool = False  # True: an older version than the stored one; nothing was written


# ---------------------------------------------------------------------------------------------- rows


def resource_row(
    resource: Resource | Mapping[str, Any],
    *,
    version_id: int,
    last_updated: datetime,
    overrides: Mapping[str, Any] | None = None,
    patient_fallback: str | None = None,
) -> dict[str, Any]:
    """The complete ``fhir_resources`` row of a resource: the indexed search columns (``overrides`` replace
    some), ``patient_fallback`` as compartment when the resource names no patient (Provenance), and the JSON
    with ``meta.versionId``/``meta.lastUpdated`` set."""
    data = _as_json(resource)
    cols = index_columns(data)
    cols.update(overrides or {})
    if cols["patient_id"] is None:
        cols["patient_id"] = patient_fallback
    return {
        "resource_type": data["resourceType"],
        "id": data["id"],
        "version_id": version_id,
        "last_updated": last_updated,
        **cols,
        "resource": _with_meta(data, version_id, last_updated),
    }


def _as_json(resource: Resource | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(resource, Mapping):
        return dict(resource)
    return resource_json(resource)


# ---------------------------------------------------------------------------------------------- store


def store_extraction(session: Session, note: SourceNote, mapped: MappedResources, model_version: str) -> StoreResult:
    """Write the resources derived from ``note`` by ``model_version`` (see the module docstring)."""
    doc_id = note.resource_id
    # the lock and the transaction time in one round trip (now() is the transaction's start time either way)
    locked = session.execute(text("SELECT pg_advisory_xact_lock(:k), now()"), {"k": _lock_key(doc_id)}).one()
    now: datetime = locked[1].astimezone(UTC)
    n_cond, n_med = len(mapped.conditions), len(mapped.medication_statements)
    current = session.execute(
        select(SourceDocument.version, SourceDocument.model_version).where(SourceDocument.id == doc_id)
    ).first()
    if current is not None and _is_older(note.version, current.version):
        return StoreResult(n_cond, n_med, stale=True)

    patient_id = reference_id(note.patient_ref, "Patient")
    source = {"source_document_id": doc_id, "source_document_version": note.version, "model_version": model_version}
    datas = [_as_json(res) for res in mapped.resources()]
    keys = [(d["resourceType"], d["id"]) for d in datas]

    deleted = cast(
        CursorResult[Any],
        session.execute(
            delete(FhirResource).where(
                FhirResource.source_document_id == doc_id,
                (not_(tuple_(FhirResource.resource_type, FhirResource.id).in_(keys)) if keys
                 else FhirResource.source_document_id.is_not(None)),
            )
        ),
    )
    superseded = deleted.rowcount

    existing: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    if keys:
        found = session.execute(
            select(FhirResource.resource_type, FhirResource.id, FhirResource.version_id, FhirResource.resource)
            .where(tuple_(FhirResource.resource_type, FhirResource.id).in_(keys))
            .with_for_update()
        )
        existing = {(r.resource_type, r.id): (r.version_id, r.resource) for r in found}

    writes: list[dict[str, Any]] = []
    inserted = updated = unchanged = 0
    for data, key in zip(datas, keys, strict=True):
        old = existing.get(key)
        if old is not None and _content(old[1]) == _content(data):
            unchanged += 1
            continue
        version = 1 if old is None else old[0] + 1
        inserted, updated = (inserted + 1, updated) if old is None else (inserted, updated + 1)
        # a Provenance names no patient: it goes into the compartment of the note's patient
        writes.append(
            resource_row(data, version_id=version, last_updated=now, overrides=source, patient_fallback=patient_id)
        )
    if writes:
        stmt = insert(FhirResource)
        update_cols = {c.name: stmt.excluded[c.name] for c in FhirResource.__table__.columns
                       if c.name not in ("resource_type", "id")}
        primary_key = [FhirResource.resource_type, FhirResource.id]
        # on the connection, not the session: one executemany for all rows (the session's ORM bulk insert splits
        # the rows into one statement per set of None columns, a round trip each)
        session.connection().execute(stmt.on_conflict_do_update(index_elements=primary_key, set_=update_cols), writes)

    if (stub := patient_stub(note.patient_ref)) is not None:
        stmt = insert(FhirResource).values(**resource_row(stub, version_id=1, last_updated=now))
        created = session.execute(stmt.on_conflict_do_nothing().returning(FhirResource.id)).first()
        inserted, unchanged = (inserted + 1, unchanged) if created is not None else (inserted, unchanged + 1)

    _upsert_source_document(session, note, patient_id, model_version, n_cond, n_med, now)
    return StoreResult(n_cond, n_med, inserted, updated, unchanged, int(superseded or 0))


def _upsert_source_document(
    session: Session,
    note: SourceNote,
    patient_id: str | None,
    model_version: str,
    conditions: int,
    medication_statements: int,
    now: datetime,
) -> None:
    values = {
        "id": note.resource_id,
        "version": note.version,
        "content_sha256": note.content_sha256,
        "patient_id": patient_id,
        "model_version": model_version,
        "processed_at": now,
        "conditions": conditions,
        "medication_statements": medication_statements,
    }
    stmt = insert(SourceDocument).values(**values)
    table = SourceDocument.__table__
    changed = [
        table.c[name].is_distinct_from(stmt.excluded[name])
        for name in ("version", "content_sha256", "patient_id", "model_version", "conditions", "medication_statements")
    ]
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"},
            where=or_(*changed),
        )
    )


def _lock_key(doc_id: str) -> int:
    """A signed 64-bit advisory-lock key for one document id."""
    return int.from_bytes(hashlib.sha256(f"clinie-doc:{doc_id}".encode()).digest()[:8], "big", signed=True)


def _is_older(new: str, stored: str) -> bool:
    """Only numeric versionIds are ordered; content hashes and other strings never count as older."""
    return new.isdigit() and stored.isdigit() and int(new) < int(stored)


def _content(data: Mapping[str, Any]) -> dict[str, Any]:
    """The resource without ``meta`` and the processing-time fields: what 'unchanged' compares."""
    drop = {"meta", *VOLATILE_FIELDS.get(str(data.get("resourceType")), ())}
    return {k: v for k, v in data.items() if k not in drop}


def _with_meta(data: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    meta = Meta.model_validate({**(data.get("meta") or {}), "versionId": str(version), "lastUpdated": now})
    return {**data, "meta": resource_json(meta)}


# ---------------------------------------------------------------------------------------------- read


def iter_resources(session: Session, resource_type: str, *, batch_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every stored resource of one type as FHIR JSON (with meta), ordered by id, streamed in batches."""
    stmt = (
        select(FhirResource.resource)
        .where(FhirResource.resource_type == resource_type)
        .order_by(FhirResource.id)
        .execution_options(yield_per=batch_size)
    )
    for (resource,) in session.execute(stmt):
        yield resource
