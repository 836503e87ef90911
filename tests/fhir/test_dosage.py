"""Dose, route, frequency and duration parsing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clinie.fhir.dosage import parse_dose, parse_duration, parse_frequency, parse_route

D = Decimal


@pytest.mark.parametrize(
    ("text", "value", "unit", "code", "high"),
    [
        ("500 mg", D(500), "mg", "mg", None),
        ("500mg", D(500), "mg", "mg", None),
        ("1,000 mg", D(1000), "mg", "mg", None),
        ("0.5 g", D("0.5"), "g", "g", None),
        ("100 mcg", D(100), "mcg", "ug", None),
        ("100 µg", D(100), "mcg", "ug", None),
        ("5 mL", D(5), "mL", "mL", None),
        ("10 units", D(10), "units", "[U]", None),
        ("40 IU", D(40), "IU", "[iU]", None),
        ("20 mEq", D(20), "mEq", "meq", None),
        ("10 mg/kg", D(10), "mg/kg", "mg/kg", None),
        ("500 mg tablets", D(500), "mg", "mg", None),
        ("81 mg.", D(81), "mg", "mg", None),
        ("2 puffs", D(2), "puff", None, None),
        ("1-2 tablets", D(1), "tablet", None, D(2)),
        ("500 to 1000 mg", D(500), "mg", "mg", D(1000)),
    ],
)
def test_parse_dose(text: str, value: Decimal, unit: str, code: str | None, high: Decimal | None) -> None:
    spec = parse_dose(text)
    assert spec is not None
    assert (spec.value, spec.unit, spec.code, spec.high) == (value, unit, code, high)


@pytest.mark.parametrize("text", ["2300 mg in 3 days", "high dose", "mg", "", "two tablets of 5 mg", "10-5 mg"])
def test_parse_dose_rejects(text: str) -> None:
    assert parse_dose(text) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("oral", "26643006"),
        ("PO", "26643006"),
        ("p.o.", "26643006"),
        ("by mouth", "26643006"),
        ("orally", "26643006"),
        ("IV", "47625008"),
        ("i.v.", "47625008"),
        ("intravenously", "47625008"),
        ("intravenous infusion", "47625008"),
        ("SC", "34206005"),
        ("subcutaneous", "34206005"),
        ("subq", "34206005"),
        ("IM", "78421000"),
        ("intramuscular", "78421000"),
        ("topical", "6064005"),
        ("inhaled", "447694001"),
        ("by inhalation", "447694001"),
    ],
)
def test_parse_route(text: str, code: str) -> None:
    route = parse_route(text)
    assert route is not None and route.code == code and route.system == "http://snomed.info/sct"


@pytest.mark.parametrize("text", ["parenteral", "rectal", "", "oral and IV"])
def test_parse_route_unknown(text: str) -> None:
    assert parse_route(text) is None


@pytest.mark.parametrize(
    ("text", "frequency", "period", "unit", "period_max", "when", "prn"),
    [
        ("BID", 2, D(1), "d", None, (), False),
        ("b.i.d.", 2, D(1), "d", None, (), False),
        ("TID", 3, D(1), "d", None, (), False),
        ("QID", 4, D(1), "d", None, (), False),
        ("QD", 1, D(1), "d", None, (), False),
        ("daily", 1, D(1), "d", None, (), False),
        ("once daily", 1, D(1), "d", None, (), False),
        ("twice daily", 2, D(1), "d", None, (), False),
        ("twice a day", 2, D(1), "d", None, (), False),
        ("three times a day", 3, D(1), "d", None, (), False),
        ("4 times per day", 4, D(1), "d", None, (), False),
        ("2x/day", 2, D(1), "d", None, (), False),
        ("every 6 hours", 1, D(6), "h", None, (), False),
        ("q6h", 1, D(6), "h", None, (), False),
        ("q 8 hrs", 1, D(8), "h", None, (), False),
        ("q4-6h", 1, D(4), "h", D(6), (), False),
        ("every 4 to 6 hours", 1, D(4), "h", D(6), (), False),
        ("every 1.5 hours", 1, D("1.5"), "h", None, (), False),
        ("hourly", 1, D(1), "h", None, (), False),
        ("every other day", 1, D(2), "d", None, (), False),
        ("every 3 days", 1, D(3), "d", None, (), False),
        ("weekly", 1, D(1), "wk", None, (), False),
        ("twice weekly", 2, D(1), "wk", None, (), False),
        ("3 times a week", 3, D(1), "wk", None, (), False),
        ("monthly", 1, D(1), "mo", None, (), False),
        ("qhs", 1, D(1), "d", None, ("HS",), False),
        ("at bedtime", 1, D(1), "d", None, ("HS",), False),
        ("every morning", 1, D(1), "d", None, ("MORN",), False),
        ("q6h prn", 1, D(6), "h", None, (), True),
        ("BID as needed", 2, D(1), "d", None, (), True),
        ("PRN", None, None, None, None, (), True),
        ("as needed", None, None, None, None, (), True),
    ],
)
def test_parse_frequency(
    text: str,
    frequency: int | None,
    period: Decimal | None,
    unit: str | None,
    period_max: Decimal | None,
    when: tuple[str, ...],
    prn: bool,
) -> None:
    spec = parse_frequency(text)
    assert spec is not None
    assert (spec.frequency, spec.period, spec.period_unit, spec.period_max, spec.when, spec.as_needed) == (
        frequency,
        period,
        unit,
        period_max,
        when,
        prn,
    )


@pytest.mark.parametrize("text", ["sometimes", "", "with meals", "0 times a day", "every 6-4 hours"])
def test_parse_frequency_unknown(text: str) -> None:
    assert parse_frequency(text) is None


@pytest.mark.parametrize(
    ("text", "value", "unit", "high"),
    [
        ("for 3 days", D(3), "d", None),
        ("6 weeks", D(6), "wk", None),
        ("x 5 days", D(5), "d", None),
        ("x5d", D(5), "d", None),
        ("for two weeks", D(2), "wk", None),
        ("for a week", D(1), "wk", None),
        ("5-7 days", D(5), "d", D(7)),
        ("10-day course", D(10), "d", None),
        ("for 1 month", D(1), "mo", None),
        ("for 2 years", D(2), "a", None),
        ("over 30 minutes", D(30), "min", None),
        ("for 48 hours", D(48), "h", None),
        ("for a total of 14 days", D(14), "d", None),
        ("for 3 days.", D(3), "d", None),
    ],
)
def test_parse_duration(text: str, value: Decimal, unit: str, high: Decimal | None) -> None:
    spec = parse_duration(text)
    assert spec is not None
    assert (spec.value, spec.unit, spec.high) == (value, unit, high)


@pytest.mark.parametrize("text", ["several weeks", "long-term", "", "until symptoms resolve", "for 0 days"])
def test_parse_duration_unknown(text: str) -> None:
    assert parse_duration(text) is None
