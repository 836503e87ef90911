"""The search-parameter registry is the one definition of every parameter (issue 7): walking it proves each
parameter is indexed on write (by the real indexer that seeded the test database), queryable, listed in the
CapabilityStatement with its modifiers, and, if sortable, sortable by its column."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from clinie.fhir.search import SEARCH_COLUMNS, SEARCH_PARAMETERS, SearchParameter
from clinie.storage.models import FhirResource
from tests.services.fhir_api.conftest import seed_rows

PARAMS = [(rtype, p) for rtype, params in SEARCH_PARAMETERS.items() for p in params.values()]
IDS = [f"{rtype}.{p.name}" for rtype, p in PARAMS]


def _rows(rtype: str) -> list[dict[str, Any]]:
    return [r for r in seed_rows() if r["resource_type"] == rtype]


def _value(p: SearchParameter, row: dict[str, Any]) -> str | None:
    """A search value that must match ``row``, derived from its indexed column(s); None if it has none."""
    v = row[p.columns[0]]
    if v is None or v == []:
        return None
    if p.index in ("code", "targets"):
        return str(v[0])
    if p.index == "instant":
        assert isinstance(v, datetime)
        return "eq" + v.isoformat()
    if p.index == "period":
        assert isinstance(v, datetime)
        return "ge" + v.isoformat()
    return str(v)


def test_every_registry_column_is_a_storage_column() -> None:
    table = {c.name for c in FhirResource.__table__.columns}
    assert set(SEARCH_COLUMNS) <= table
    assert {c for _, p in PARAMS for c in (*p.columns, p.sort_column) if c} <= table


@pytest.mark.parametrize(("rtype", "p"), PARAMS, ids=IDS)
def test_parameter_is_indexed_and_queryable(client: TestClient, engine: Engine, rtype: str, p: SearchParameter) -> None:
    rows = [(r, v) for r in _rows(rtype) if (v := _value(p, r)) is not None]
    assert rows, f"the indexer filled no {p.columns} for any seeded {rtype}"  # indexed on write
    row, value = rows[0]
    r = client.get(f"/{rtype}", params={p.name: value, "_count": "50"})
    assert r.status_code == 200, r.text
    found = {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}
    assert row["id"] in found
    if "below" in p.modifiers:  # subsumption: the category of a coded row's code finds the row
        coded = [(r, t) for r in _rows(rtype) for t in r["codes"] or [] if p.hierarchy(t.rpartition("|")[0])]
        assert coded, f"no seeded {rtype} is coded in a system with a hierarchy ({p.hierarchies})"
        (row, token) = coded[0]
        system, _, code = token.rpartition("|")
        category = code.split(p.hierarchy(system).separator)[0]  # type: ignore[union-attr]
        r = client.get(f"/{rtype}", params={f"{p.name}:below": f"{system}|{category}", "_count": "50"})
        assert r.status_code == 200 and row["id"] in {e["resource"]["id"] for e in r.json()["entry"]}
    if "missing" in p.modifiers:
        missing = client.get(f"/{rtype}", params={f"{p.name}:missing": "false", "_count": "50"})
        assert missing.status_code == 200 and row["id"] in {e["resource"]["id"] for e in missing.json()["entry"]}


@pytest.mark.parametrize(("rtype", "p"), PARAMS, ids=IDS)
def test_parameter_is_in_the_capability_statement(client: TestClient, rtype: str, p: SearchParameter) -> None:
    cap = client.get("/metadata").json()
    entry = next(e for e in cap["rest"][0]["resource"] if e["type"] == rtype)
    listed = {sp["name"]: sp for sp in entry["searchParam"]}
    assert set(listed) == set(SEARCH_PARAMETERS[rtype])
    assert listed[p.name]["type"] == p.type
    for m in p.modifiers:
        assert (":[type]" if m == "type" else f":{m}") in listed[p.name]["documentation"]
    assert (p.name in entry["documentation"].split("sortable: ")[1].split(")")[0].split(", ")) == p.sortable


SORTABLE = [(i, t, p) for i, (t, p) in zip(IDS, PARAMS, strict=True) if p.sortable]


@pytest.mark.parametrize(("rtype", "p"), [(t, p) for _, t, p in SORTABLE], ids=[i for i, _, _ in SORTABLE])
def test_sortable_parameter_sorts(client: TestClient, rtype: str, p: SearchParameter) -> None:
    assert p.sort_column is not None
    rows = _rows(rtype)
    by_id = {r["id"]: r for r in rows}
    for desc in (False, True):
        r = client.get(f"/{rtype}", params={"_sort": ("-" if desc else "") + p.name, "_count": "50"})
        assert r.status_code == 200, r.text
        ids = [e["resource"]["id"] for e in r.json()["entry"] if e["search"]["mode"] == "match"]
        assert sorted(ids) == sorted(by_id)
        keys = [by_id[i][p.sort_column] for i in ids]
        present = [k for k in keys if k is not None]
        assert present == sorted(present, reverse=desc)
        nulls = [k is None for k in keys]  # PostgreSQL: NULLs last ascending, first descending
        assert nulls == sorted(nulls, reverse=desc)
