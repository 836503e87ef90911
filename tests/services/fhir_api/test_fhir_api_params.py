"""Pure parsing of search values: date precision, escapes, tokens, references, cursors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.fhir_api.errors import FhirError
from services.fhir_api.paging import SortKey, decode_cursor, encode_cursor
from services.fhir_api.params import parse_date, parse_reference, parse_token, split_unescaped, unescape
from services.fhir_api.query import column


@pytest.mark.parametrize(
    ("raw", "prefix", "low", "high"),
    [
        ("2020", "eq", datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)),
        ("ge2020-02", "ge", datetime(2020, 2, 1, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC)),
        ("lt2020-12", "lt", datetime(2020, 12, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)),
        ("2020-02-29", "eq", datetime(2020, 2, 29, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC)),
        ("2020-05-01T10:00", "eq", datetime(2020, 5, 1, 10, tzinfo=UTC), datetime(2020, 5, 1, 10, 1, tzinfo=UTC)),
        (
            "2020-05-01T10:00:05Z",
            "eq",
            datetime(2020, 5, 1, 10, 0, 5, tzinfo=UTC),
            datetime(2020, 5, 1, 10, 0, 6, tzinfo=UTC),
        ),
        (
            "2020-05-01T10:00:05.5+02:00",
            "eq",
            datetime(2020, 5, 1, 8, 0, 5, 500000, tzinfo=UTC),
            datetime(2020, 5, 1, 8, 0, 5, 600000, tzinfo=UTC),
        ),
        ("sa9999", "sa", datetime(9999, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_date_ranges(raw: str, prefix: str, low: datetime, high: datetime) -> None:
    r = parse_date("d", raw)
    assert (r.prefix, r.low, r.high) == (prefix, low, high)


@pytest.mark.parametrize(
    "raw",
    [
        "2019-02-29",
        "2020-00",
        "2020-1",
        "T10:00",
        "2020-05-01T10",
        "ap2020",
        "zz2020",
        "2020-05-01T10:00:60Z",
        "2020-05-01 10:00",
        "0000",
    ],
)
def test_bad_dates(raw: str) -> None:
    with pytest.raises(FhirError) as exc:
        parse_date("d", raw)
    assert exc.value.status == 400 and raw not in exc.value.diagnostics


def test_escapes_and_tokens() -> None:
    assert split_unescaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert unescape(r"a\,b\|c\$d\\e") == "a,b|c$d\\e"
    assert parse_token("t", r"http://s|a\|b") == parse_token("t", r"http://s|a\|b")
    tok = parse_token("t", r"http://s|a\|b")
    assert (tok.system, tok.code) == ("http://s", "a|b")
    assert (parse_token("t", "|x").system, parse_token("t", "x").system) == ("", None)
    assert parse_token("t", "http://s|").code is None


def test_references() -> None:
    assert parse_reference("p", "x").resource_type is None
    ref = parse_reference("p", "https://h/fhir/Patient/x/_history/2")
    assert (ref.resource_type, ref.id) == ("Patient", "x")
    assert parse_reference("p", "x", "Patient").resource_type == "Patient"
    with pytest.raises(FhirError):
        parse_reference("p", "Encounter/x", "Patient")


def test_cursor_round_trip() -> None:
    keys = [SortKey("recorded-date", column("recorded_date"), "datetime", True), SortKey("_id", column("id"), "str")]
    dt = datetime(2020, 1, 1, tzinfo=UTC)
    token = encode_cursor("next", "-recorded-date,_id", [dt, "c1"])
    cur = decode_cursor(token, "-recorded-date,_id", keys)
    assert cur.direction == "next" and cur.values == [dt, "c1"]
    assert decode_cursor(
        encode_cursor("prev", "-recorded-date,_id", [None, "c"]), "-recorded-date,_id", keys
    ).values == [None, "c"]
    with pytest.raises(FhirError):
        decode_cursor(token, "recorded-date,_id", keys)
    with pytest.raises(FhirError):
        decode_cursor(encode_cursor("next", "-recorded-date,_id", ["c1", "c1"]), "-recorded-date,_id", keys)
