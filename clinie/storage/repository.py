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
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.resource import Resource
from sqlalchemy import delete, func, not_, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from clinie.fhir.docref import SourceNote
from clinie.fhir.extensions import MODEL_VERSION_SYSTEM, SOURCE_VERSION_URL, read_evidence
from clinie.fhir.mapping import VOLATILE_FIELDS, MappedResources, patient_stub
from clinie.fhir.references import reference_id
from clinie.storage.models import FhirResource, SourceDocument

TABLE = FhirResource.__table__
C = TABLE.c
SEARCH_COLUMNS = (
    "patient_id",
    "encounter_id",
    "source_document_id",
    "source_document_version",
    "model_version",
    "code_text",
    "codes",
    "status",
    "verification_status",
    "recorded_date",
    "effective_start",
    "effective_end",
    "targets",
)


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


# ---------------------------------------------------------------------------------------------- search columns


def search_columns(resource: Resource | Mapping[str, Any]) -> dict[str, Any]:
    """The ``fhir_resources`` search columns of a resource (model or JSON dict); absent values are None."""
    data = _as_json(resource)
    rtype = data.get("resourceType")
    cols: dict[str, Any] = dict.fromkeys(SEARCH_COLUMNS)
    if rtype == "Patient":
        cols["patient_id"] = data.get("id")
    else:
        cols["patient_id"] = reference_id(_ref(data.get("subject") or data.get("patient")), "Patient")
    cols["encounter_id"] = reference_id(_ref(data.get("encounter") or data.get("context")), "Encounter")

    concept = data.get("code") if rtype != "MedicationStatement" else data.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        codings = [c for c in concept.get("coding") or () if isinstance(c, Mapping)]
        label = concept.get("text") or next((c.get("display") for c in codings if c.get("display")), None)
        cols["code_text"] = str(label).lower() if label else None
        tokens: list[str] = []
        for c in codings:
            if c.get("code"):
                if c.get("system"):
                    tokens.append(f"{c['system']}|{c['code']}")
                tokens.append(str(c["code"]))
        cols["codes"] = list(dict.fromkeys(tokens)) or None

    if rtype == "Condition":
        cols["status"] = _first_code(data.get("clinicalStatus"))
        cols["verification_status"] = _first_code(data.get("verificationStatus"))
        cols["recorded_date"] = _instant(data.get("recordedDate"))
        cols["effective_start"], cols["effective_end"] = _period(data, "onset")
    elif rtype == "MedicationStatement":
        cols["status"] = data.get("status")
        cols["recorded_date"] = _instant(data.get("dateAsserted"))
        cols["effective_start"], cols["effective_end"] = _period(data, "effective")
    elif rtype == "Provenance":
        cols["recorded_date"] = _instant(data.get("recorded"))
        cols["effective_start"], cols["effective_end"] = _period(data, "occurred")
        cols["targets"] = [str(t["reference"]) for t in data.get("target") or () if t.get("reference")] or None
    cols.update(_source(data))
    return cols


def _source(data: Mapping[str, Any]) -> dict[str, str | None]:
    """source_document_id/version and model_version: from the note-evidence extension, else derivedFrom
    (MedicationStatement) or entity/agent (Provenance)."""
    evidence = read_evidence(data)
    if evidence:
        ev = evidence[0]
        return {
            "source_document_id": ev.document_id,
            "source_document_version": ev.document_version,
            "model_version": ev.model_version,
        }
    out: dict[str, str | None] = {}
    for ref in data.get("derivedFrom") or ():
        if doc := reference_id(_ref(ref), "DocumentReference"):
            out["source_document_id"] = doc
            break
    for ent in data.get("entity") or ():
        if ent.get("role") == "source" and (doc := reference_id(_ref(ent.get("what")), "DocumentReference")):
            out["source_document_id"] = doc
            for ext in ent.get("extension") or ():
                if ext.get("url") == SOURCE_VERSION_URL:
                    out["source_document_version"] = ext.get("valueString")
            break
    for agent in data.get("agent") or ():
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("system") == MODEL_VERSION_SYSTEM:
            out["model_version"] = ident.get("value")
    return out


def _as_json(resource: Resource | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(resource, Mapping):
        return dict(resource)
    result: dict[str, Any] = json.loads(resource.model_dump_json())
    return result


def _ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, Mapping) else None


def _first_code(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    return next((str(c["code"]) for c in concept.get("coding") or () if c.get("code")), None)


def _instant(value: Any, *, end: bool = False) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (UTC when no zone is given); partial dates
    ("2024", "2024-03", "2024-03-01") give the start of that period, or with ``end`` its last microsecond."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 4:
            start, nxt = datetime(int(value), 1, 1, tzinfo=UTC), datetime(int(value) + 1, 1, 1, tzinfo=UTC)
        elif len(value) == 7:
            y, m = int(value[:4]), int(value[5:7])
            start = datetime(y, m, 1, tzinfo=UTC)
            nxt = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
        elif len(value) == 10:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            nxt = start + timedelta(days=1)
        else:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        return None
    return nxt - timedelta(microseconds=1) if end else start


def _period(data: Mapping[str, Any], prefix: str) -> tuple[datetime | None, datetime | None]:
    """(start, end) of ``<prefix>DateTime`` or ``<prefix>Period``."""
    if (dt := data.get(f"{prefix}DateTime")) is not None:
        return _instant(dt), _instant(dt, end=True)
    period = data.get(f"{prefix}Period")
    if isinstance(period, Mapping):
        return _instant(period.get("start")), _instant(period.get("end"), end=True)
    return None, None


# ---------------------------------------------------------------------------------------------- store


def store_extraction(session: Session, note: SourceNote, mapped: MappedResources, model_version: str) -> StoreResult:
    """Write the resources derived from ``note`` by ``model_version`` (see the module docstring)."""
    doc_id = note.resource_id
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(doc_id)})
    n_cond, n_med = len(mapped.conditions), len(mapped.medication_statements)
    current = session.execute(
        select(SourceDocument.version, SourceDocument.model_version).where(SourceDocument.id == doc_id)
    ).first()
    if current is not None and _is_older(note.version, current.version):
        return StoreResult(n_cond, n_med, stale=True)

    now: datetime = session.execute(select(func.now())).scalar_one().astimezone(UTC)
    patient_id = reference_id(note.patient_ref, "Patient")
    rows = []
    for res in mapped.resources():
        data = _as_json(res)
        cols = search_columns(data)
        cols.update(source_document_id=doc_id, source_document_version=note.version, model_version=model_version)
        if cols["patient_id"] is None:
            cols["patient_id"] = patient_id  # Provenance: in the compartment of the note's patient
        rows.append((data, cols))
    keys = [(d["resourceType"], d["id"]) for d, _ in rows]

    deleted = cast(
        CursorResult[Any],
        session.execute(
            delete(FhirResource).where(
                C.source_document_id == doc_id,
                not_(tuple_(C.resource_type, C.id).in_(keys)) if keys else C.source_document_id.is_not(None),
            )
        ),
    )
    superseded = deleted.rowcount

    existing: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    if keys:
        found = session.execute(
            select(C.resource_type, C.id, C.version_id, C.resource)
            .where(tuple_(C.resource_type, C.id).in_(keys))
            .with_for_update()
        )
        existing = {(r.resource_type, r.id): (r.version_id, r.resource) for r in found}

    writes: list[dict[str, Any]] = []
    inserted = updated = unchanged = 0
    for (data, cols), key in zip(rows, keys, strict=True):
        old = existing.get(key)
        if old is not None and _content(old[1]) == _content(data):
            unchanged += 1
            continue
        version = 1 if old is None else old[0] + 1
        inserted, updated = (inserted + 1, updated) if old is None else (inserted, updated + 1)
        writes.append(
            {
                "resource_type": key[0],
                "id": key[1],
                "version_id": version,
                "last_updated": now,
                **cols,
                "resource": _with_meta(data, version, now),
            }
        )
    if writes:
        stmt = insert(FhirResource)
        update_cols = {c.name: stmt.excluded[c.name] for c in TABLE.columns if c.name not in ("resource_type", "id")}
        session.execute(stmt.on_conflict_do_update(index_elements=[C.resource_type, C.id], set_=update_cols), writes)

    if (stub := patient_stub(note.patient_ref)) is not None:
        data = _as_json(stub)
        cols = search_columns(data)
        stmt = insert(FhirResource).values(
            resource_type="Patient",
            id=data["id"],
            version_id=1,
            last_updated=now,
            **cols,
            resource=_with_meta(data, 1, now),
        )
        created = session.execute(stmt.on_conflict_do_nothing().returning(C.id)).first()
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
    return {**data, "meta": json.loads(meta.model_dump_json())}


# ---------------------------------------------------------------------------------------------- read


def get_source_document(session: Session, doc_id: str) -> SourceDocument | None:
    """The ``source_documents`` row of a DocumentReference id, or None."""
    return session.get(SourceDocument, doc_id)


def count_resources(session: Session, resource_type: str | None = None) -> int:
    """Number of stored resources (of one type, or all)."""
    stmt = select(func.count()).select_from(FhirResource)
    if resource_type is not None:
        stmt = stmt.where(C.resource_type == resource_type)
    return int(session.execute(stmt).scalar_one())


def iter_resources(session: Session, resource_type: str, *, batch_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every stored resource of one type as FHIR JSON (with meta), ordered by id, streamed in batches."""
    stmt = (
        select(C.resource)
        .where(C.resource_type == resource_type)
        .order_by(C.id)
        .execution_options(yield_per=batch_size)
    )
    for (resource,) in session.execute(stmt):
        yield resource
