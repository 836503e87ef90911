"""Query execution against ``fhir_resources``: search pages, includes and reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from clinie.fhir.search import RESOURCE_TYPES
from services.fhir_api.auth import Access
from services.fhir_api.paging import keyset_condition, order_by
from services.fhir_api.query import TABLE, compartment_condition, type_condition
from services.fhir_api.request import IncludeSpec, SearchRequest

C = TABLE.c


@dataclass(frozen=True)
class Row:
    resource_type: str
    id: str
    patient_id: str | None
    resource: dict[str, Any]
    targets: list[str] | None = None
    version_id: int | None = None
    last_updated: datetime | None = None
    keys: tuple[Any, ...] = ()


@dataclass
class SearchResult:
    matches: list[Row]
    included: list[Row] = field(default_factory=list)
    total: int | None = None
    next_keys: tuple[Any, ...] | None = None
    prev_keys: tuple[Any, ...] | None = None
    includes_truncated: bool = False


def execute_search(conn: Connection, req: SearchRequest, access: Access, max_include: int) -> SearchResult:
    count_stmt = select(func.count()).select_from(TABLE).where(*req.where)
    if req.summary == "count" or req.count == 0:
        return SearchResult(matches=[], total=conn.execute(count_stmt).scalar_one())

    reverse = req.cursor is not None and req.cursor.direction == "prev"
    where = list(req.where)
    if req.cursor is not None:
        where.append(keyset_condition(req.sort, req.cursor))
    key_cols = [k.column.label(f"sort_{i}") for i, k in enumerate(req.sort)]
    stmt = (
        select(C.resource_type, C.id, C.patient_id, C.targets, C.resource, *key_cols)
        .where(*where)
        .order_by(*order_by(req.sort, reverse))
        .limit(req.count + 1)
    )
    raw = list(conn.execute(stmt).all())
    more = len(raw) > req.count
    raw = raw[: req.count]
    if reverse:
        raw.reverse()
    nkeys = len(key_cols)
    rows = [
        Row(r.resource_type, r.id, r.patient_id, r.resource, r.targets, keys=tuple(r[5 + i] for i in range(nkeys)))
        for r in raw
    ]
    has_next, has_prev = (True, more) if reverse else (more, req.cursor is not None)

    total: int | None = None
    if req.total:
        # when everything fit on the first page, no COUNT is needed
        total = len(rows) if req.cursor is None and not more else conn.execute(count_stmt).scalar_one()

    result = SearchResult(
        matches=rows,
        total=total,
        next_keys=rows[-1].keys if has_next and rows else None,
        prev_keys=rows[0].keys if has_prev and rows else None,
    )
    if rows and (req.includes or req.revincludes):
        _add_includes(conn, req, access, result, max_include)
    return result


def _fetch(conn: Connection, where: list[ColumnElement[bool]], limit: int) -> list[Row]:
    stmt = (
        select(C.resource_type, C.id, C.patient_id, C.resource)
        .where(*where)
        .order_by(C.resource_type, C.id)
        .limit(limit)
    )
    return [Row(r.resource_type, r.id, r.patient_id, r.resource) for r in conn.execute(stmt)]


def _add_includes(conn: Connection, req: SearchRequest, access: Access, result: SearchResult, cap: int) -> None:
    seen = {(r.resource_type, r.id) for r in result.matches}
    included: list[Row] = []

    def add(rows: list[Row]) -> None:
        for row in rows:
            key = (row.resource_type, row.id)
            if key in seen:
                continue
            if len(included) >= cap:
                result.includes_truncated = True
                return
            seen.add(key)
            included.append(row)

    specs: list[IncludeSpec] = [*req.includes, *req.revincludes]
    for spec in specs:
        remaining = cap - len(included) + 1
        if remaining <= 1:
            result.includes_truncated = True
            break
        if spec.kind == "prov-target":
            by_type: dict[str, set[str]] = {}
            for row in result.matches:
                for ref in row.targets or []:
                    rtype, _, rid = ref.partition("/")
                    if rtype in RESOURCE_TYPES and rid and spec.target_type in (None, rtype):
                        by_type.setdefault(rtype, set()).add(rid)
            for rtype, ids in sorted(by_type.items()):
                if not access.allows("search", rtype):
                    continue
                grant = access.grant("search", rtype)
                where = [C.resource_type == rtype, C.id.in_(sorted(ids)), compartment_condition(rtype, grant)]
                add(_fetch(conn, where, remaining))
        elif spec.kind == "patient":
            pids = sorted({r.patient_id for r in result.matches if r.patient_id})
            if pids and access.allows("search", "Patient"):
                grant = access.grant("search", "Patient")
                where = [C.resource_type == "Patient", C.id.in_(pids), compartment_condition("Patient", grant)]
                add(_fetch(conn, where, remaining))
        elif spec.kind == "rev-prov-target":
            if access.allows("search", "Provenance"):
                grant = access.grant("search", "Provenance")
                refs = [f"{r.resource_type}/{r.id}" for r in result.matches]
                where = [
                    type_condition("Provenance", targets_filtered=True),
                    C.targets.overlap(refs),
                    compartment_condition("Provenance", grant),
                ]
                add(_fetch(conn, where, remaining))
        elif spec.kind == "rev-patient":
            rtype = spec.resource_type
            if access.allows("search", rtype):
                grant = access.grant("search", rtype)
                patient_ids = [r.id for r in result.matches]
                where = [C.resource_type == rtype, C.patient_id.in_(patient_ids), compartment_condition(rtype, grant)]
                add(_fetch(conn, where, remaining))
    result.included = included


def read_resource(conn: Connection, resource_type: str, rid: str) -> Row | None:
    stmt = select(C.resource_type, C.id, C.patient_id, C.resource, C.version_id, C.last_updated).where(
        and_(C.resource_type == resource_type, C.id == rid)
    )
    r = conn.execute(stmt).first()
    if r is None:
        return None
    return Row(r.resource_type, r.id, r.patient_id, r.resource, version_id=r.version_id, last_updated=r.last_updated)
