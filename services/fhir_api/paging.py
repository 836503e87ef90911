"""Keyset paging: sort keys, the opaque ``_cursor`` and the SQL condition for "rows after the cursor row"."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, literal, or_, tuple_

from services.fhir_api.params import bad_request


@dataclass(frozen=True)
class SortKey:
    name: str
    column: Any
    kind: Literal["datetime", "str"]
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    direction: Literal["next", "prev"]
    values: list[Any]


def encode_cursor(direction: Literal["next", "prev"], sort_spec: str, values: Sequence[Any]) -> str:
    enc: list[Any] = []
    for v in values:
        if v is None:
            enc.append(None)
        elif isinstance(v, datetime):
            enc.append(["d", v.isoformat()])
        else:
            enc.append(["s", str(v)])
    payload = json.dumps({"d": direction, "s": sort_spec, "k": enc}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(raw: str, sort_spec: str, keys: Sequence[SortKey]) -> Cursor:
    err = bad_request("invalid _cursor (use the links of a previous page)")
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:  # RecursionError: deeply nested JSON
        raise err from exc
    if not isinstance(data, dict) or data.get("s") != sort_spec or data.get("d") not in ("next", "prev"):
        raise err
    enc = data.get("k")
    if not isinstance(enc, list) or len(enc) != len(keys):
        raise err
    values: list[Any] = []
    for key, v in zip(keys, enc, strict=True):
        if v is None:
            values.append(None)
            continue
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[1], str)):
            raise err
        if key.kind == "datetime" and v[0] == "d":
            try:
                dt = datetime.fromisoformat(v[1])
            except ValueError as exc:
                raise err from exc
            if dt.tzinfo is None:
                raise err
            values.append(dt)
        elif key.kind == "str" and v[0] == "s" and len(v[1]) <= 512:
            values.append(v[1])
        else:
            raise err
    return Cursor(data["d"], values)


def _greater(col: Any, v: Any) -> ColumnElement[bool]:
    """col > v where NULL sorts as the greatest value (PostgreSQL's default)."""
    if v is None:
        return false()
    return or_(col > v, col.is_(None)) if col.nullable else col > v


def _less(col: Any, v: Any) -> ColumnElement[bool]:
    if v is None:
        return col.is_not(None)
    return col < v


def _equal(col: Any, v: Any) -> ColumnElement[bool]:
    return col.is_(None) if v is None else col == v


def keyset_condition(keys: Sequence[SortKey], cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after (``next``) / before (``prev``) the cursor row in the sort order.

    NOT NULL keys sorted the same way compare as a row value, ``(k1, k2) > (v1, v2)``, which PostgreSQL answers
    with an index range scan; otherwise the lexicographic expansion with NULL as the greatest value."""
    if all(not k.column.nullable for k in keys) and len({k.descending for k in keys}) == 1:
        greater = (cursor.direction == "next") != keys[0].descending
        if len(keys) == 1:
            col, v = keys[0].column, cursor.values[0]
            return col > v if greater else col < v
        lhs = tuple_(*[k.column for k in keys])
        rhs = tuple_(*[literal(v, type_=k.column.type) for k, v in zip(keys, cursor.values, strict=True)])
        return lhs > rhs if greater else lhs < rhs
    alternatives: list[ColumnElement[bool]] = []
    for i, key in enumerate(keys):
        forward_greater = not key.descending
        after = forward_greater if cursor.direction == "next" else not forward_greater
        strict = _greater(key.column, cursor.values[i]) if after else _less(key.column, cursor.values[i])
        prefix = [_equal(k.column, cursor.values[j]) for j, k in enumerate(keys[:i])]
        alternatives.append(and_(*prefix, strict) if prefix else strict)
    return or_(*alternatives)


def order_by(keys: Sequence[SortKey], reverse: bool) -> list[Any]:
    out = []
    for k in keys:
        desc = k.descending != reverse
        out.append(k.column.desc() if desc else k.column.asc())
    return out
