"""No value of any search parameter makes the API fail (issue 12, defect 6): malformed or out-of-range values are a
400 OperationOutcome, never a 5xx. Explicit regressions for the edge dates that gave 500 ``OverflowError``, and a
property-based test (hypothesis) over every parameter and modifier in the search-parameter registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinie.fhir.search import DATE_PREFIXES, SEARCH_PARAMETERS

EDGE_DATES = [
    "ge0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00+01:00",
    "0001-01-01T00:00:00+00:01",
    "le9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59-00:01",
    "sa9999-12-31T23:59:59.999999-01:00",
    "eb0001-01-01",
    "0000-01-01",
    "2020-13-01",
    "2020-02-30",
    "2020-01-01T24:00:00Z",
    "2020-01-01T10:00:00+15:00",
]
DATE_PARAMS = [
    (rtype, name) for rtype, params in SEARCH_PARAMETERS.items() for name, p in params.items() if p.type == "date"
]


def _ok(r: Any) -> None:
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 400), r.text
    body = r.json()
    if r.status_code == 400:
        assert body["resourceType"] == "OperationOutcome"
        assert "Traceback" not in r.text and "Overflow" not in r.text


@pytest.mark.parametrize(("rtype", "name"), DATE_PARAMS)
@pytest.mark.parametrize("value", EDGE_DATES)
def test_edge_dates_are_400_not_500(client: TestClient, rtype: str, name: str, value: str) -> None:
    r = client.get(f"/{rtype}", params={name: value})
    _ok(r)
    bare = value[2:] if value[:2].isalpha() else value
    if bare.startswith(("0001-01-01T00:00+01", "0001-01-01T00:00:00+14", "0000", "2020-13", "2020-02-30")):
        assert r.status_code == 400


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00+01:00", "9999-12-31T23:59-05:00"])
def test_export_since_edge_dates_are_400(client: TestClient, value: str) -> None:
    r = client.get("/$export", params={"_since": value}, headers={"Prefer": "respond-async"})
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


# ------------------------------------------------------------------------------------------------ property


_MIN, _MAX = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)
_INSTANTS = st.one_of(
    st.datetimes(min_value=_MIN, max_value=datetime(1, 1, 2)),  # near the lower bound of a datetime
    st.datetimes(min_value=datetime(9999, 12, 30), max_value=_MAX),  # near the upper bound
    st.datetimes(),
)


_FORMATS = ["%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f"]


@st.composite
def fhir_dates(draw: st.DrawFn) -> str:
    """Date values at every precision and zone offset, biased to the edges of the datetime range, sometimes with
    one character replaced (malformed), with every prefix (also unsupported ones)."""
    dt = draw(_INSTANTS)
    precision = draw(st.integers(0, 5))  # year, month, day, minute, second, fraction
    text = dt.strftime(_FORMATS[precision])
    text = text.zfill(len(text) + max(0, 4 - len(text.split("-")[0])))  # strftime does not pad years < 1000
    if precision >= 3:
        minutes = draw(st.integers(-15 * 60, 15 * 60))
        sign = "-" if minutes < 0 else "+"
        text += draw(st.sampled_from(["", "Z", f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"]))
    if draw(st.booleans()) and draw(st.booleans()):
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from("0123456789-:T+Z.x ")) + text[i + 1 :]
    return draw(st.sampled_from(["", *DATE_PREFIXES, "ap", "xx"])) + text


_REFS = st.builds(
    lambda base, t, i: f"{base}{t}/{i}",
    st.sampled_from(["", "http://x/fhir/", "https://h/", "urn:x/", "//"]),
    st.sampled_from(["Patient", "Encounter", "DocumentReference", "Condition", "patient", ""]),
    st.text(max_size=12),
)
_TOKENS = st.builds(lambda s, c: f"{s}|{c}", st.text(max_size=12), st.text(max_size=12))
VALUES = st.one_of(fhir_dates(), _REFS, _TOKENS, st.text(max_size=40), st.sampled_from(["true", "false", "", ","]))
KEYS = [
    (rtype, name + ("" if m is None else ":" + ("Patient" if m == "type" else m)))
    for rtype, params in SEARCH_PARAMETERS.items()
    for name, p in params.items()
    for m in (None, *p.modifiers)
]


DATE_KEYS = [(rtype, name) for rtype, name in KEYS if SEARCH_PARAMETERS[rtype][name.split(":")[0]].type == "date"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(KEYS), values=st.lists(VALUES, min_size=1, max_size=3))
def test_no_search_value_gives_a_5xx(client: TestClient, key: tuple[str, str], values: list[str]) -> None:
    rtype, name = key
    _ok(client.get(f"/{rtype}", params=[(name, v) for v in values]))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(DATE_KEYS), values=st.lists(fhir_dates(), min_size=1, max_size=3))
def test_no_date_value_gives_a_5xx(client: TestClient, key: tuple[str, str], values: list[str]) -> None:
    rtype, name = key
    _ok(client.get(f"/{rtype}", params=[(name, v) for v in values]))
