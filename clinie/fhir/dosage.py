"""Parse Dosage, Route, Frequency and Duration mentions into structured values (pure Python, no FHIR types).

Every parser takes the mention text and returns ``None`` when it does not recognise it with confidence: the
mapping then keeps only the text (``Dosage.text``, ``route.text``, ``timing.code.text``). Recognised:

- dose: a number or range with a unit, optionally followed by a form: ``"500 mg"``, ``"1,000mg"``, ``"0.5 g"``,
  ``"100 mcg"``, ``"10 units"``, ``"5 mL"``, ``"1-2 tablets"``, ``"2 puffs"``, ``"10 mg/kg"``. A dose with more
  after it (``"2300 mg in 3 days"``: a total, not a dose) is not parsed.
- route: oral, intravenous, subcutaneous, intramuscular, topical, inhalation (with common abbreviations),
  mapped to SNOMED CT route codes.
- frequency: QD/daily/once daily, BID/twice daily, TID, QID, "N times a day/week", q6h/"every 6 hours"/
  "every 4-6 hours", hourly, every other day, weekly, monthly, qhs/at bedtime, qam/every morning, and PRN/
  "as needed" (alone or combined).
- duration: ``"for 3 days"``, ``"6 weeks"``, ``"x 5 days"``, ``"for two weeks"``, ``"5-7 days"``,
  ``"10-day course"``, as UCUM time units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from clinie.fhir.systems import SNOMED

_WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "twenty": 20, "thirty": 30,
}  # fmt: skip
_NUM = r"(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
_WNUM = rf"(?:{_NUM}|{'|'.join(sorted(_WORD_NUMBERS, key=len, reverse=True))})"
_RANGE_SEP = r"\s*(?:-|–|to)\s*"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _number(token: str) -> Decimal | None:
    token = token.strip().lower().replace(",", "")
    if token in _WORD_NUMBERS:
        return Decimal(_WORD_NUMBERS[token])
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


# ---------------------------------------------------------------- dose


@dataclass(frozen=True, slots=True)
class DoseSpec:
    """A dose: ``value`` (and ``high`` for a range ``value``-``high``) in ``unit``; ``code`` is UCUM or None."""

    value: Decimal
    unit: str
    code: str | None
    high: Decimal | None = None


# written unit -> (display unit, UCUM code or None)
_DOSE_UNITS: dict[str, tuple[str, str | None]] = {
    "mg": ("mg", "mg"), "milligram": ("mg", "mg"), "milligrams": ("mg", "mg"),
    "g": ("g", "g"), "gm": ("g", "g"), "gram": ("g", "g"), "grams": ("g", "g"),
    "mcg": ("mcg", "ug"), "µg": ("mcg", "ug"), "μg": ("mcg", "ug"), "ug": ("mcg", "ug"),
    "microgram": ("mcg", "ug"), "micrograms": ("mcg", "ug"),
    "ng": ("ng", "ng"), "kg": ("kg", "kg"),
    "ml": ("mL", "mL"), "milliliter": ("mL", "mL"), "milliliters": ("mL", "mL"), "cc": ("mL", "mL"),
    "l": ("L", "L"), "liter": ("L", "L"), "liters": ("L", "L"),
    "unit": ("units", "[U]"), "units": ("units", "[U]"), "u": ("units", "[U]"),
    "iu": ("IU", "[iU]"), "international units": ("IU", "[iU]"),
    "meq": ("mEq", "meq"), "mmol": ("mmol", "mmol"),
    "mg/kg": ("mg/kg", "mg/kg"), "mcg/kg": ("mcg/kg", "ug/kg"), "ug/kg": ("mcg/kg", "ug/kg"),
    "units/kg": ("units/kg", "[U]/kg"), "mg/m2": ("mg/m2", "mg/m2"),
    "tablet": ("tablet", None), "tablets": ("tablet", None), "tab": ("tablet", None), "tabs": ("tablet", None),
    "capsule": ("capsule", None), "capsules": ("capsule", None), "cap": ("capsule", None),
    "caps": ("capsule", None), "puff": ("puff", None), "puffs": ("puff", None),
    "drop": ("drop", None), "drops": ("drop", None), "patch": ("patch", None), "patches": ("patch", None),
    "spray": ("spray", None), "sprays": ("spray", None),
}  # fmt: skip
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_DOSE_UNITS, key=len, reverse=True))
_FORMS = r"(?:\s+(?:tablets?|tabs?|capsules?|caps?|pills?|injections?|doses?|vials?|ampoules?))?"
_DOSE_RE = re.compile(
    rf"^(?:about |approximately |~)?(?P<v>{_NUM})(?:{_RANGE_SEP}(?P<h>{_NUM}))?\s*(?P<u>{_UNIT_ALT})\.?"
    rf"{_FORMS}$"
)


def parse_dose(text: str) -> DoseSpec | None:
    """``"500 mg"`` -> ``DoseSpec(500, "mg", "mg")``; ``"1-2 tablets"`` -> a range; anything else -> None."""
    m = _DOSE_RE.match(_norm(text))
    if m is None:
        return None
    value, high = _number(m.group("v")), _number(m.group("h")) if m.group("h") else None
    if value is None or (high is not None and high < value):
        return None
    unit, code = _DOSE_UNITS[m.group("u")]
    return DoseSpec(value=value, unit=unit, code=code, high=high)


# ---------------------------------------------------------------- route


@dataclass(frozen=True, slots=True)
class RouteCode:
    system: str
    code: str
    display: str


_ROUTES: tuple[tuple[RouteCode, str], ...] = (
    (RouteCode(SNOMED, "26643006", "Oral route"), r"oral(?:ly)?|p\.?o\.?|by mouth|per os|enteral(?:ly)?"),
    (RouteCode(SNOMED, "47625008", "Intravenous route"), r"intravenous(?:ly)?|i\.?v\.?|ivpb|iv push|iv bolus"),
    (
        RouteCode(SNOMED, "34206005", "Subcutaneous route"),
        r"subcutaneous(?:ly)?|s\.?c\.?|s\.?q\.?|sub-?q|subcut|sub-?cutaneous(?:ly)?",
    ),
    (RouteCode(SNOMED, "78421000", "Intramuscular route"), r"intramuscular(?:ly)?|i\.?m\.?"),
    (RouteCode(SNOMED, "6064005", "Topical route"), r"topical(?:ly)?|cutaneous(?:ly)?|transdermal(?:ly)?"),
    (
        RouteCode(SNOMED, "447694001", "Respiratory tract route"),
        r"inhal(?:ed|ation|er)|by inhalation|via inhaler|nebuli[sz]ed|nebuli[sz]er|neb",
    ),
)
_ROUTE_RES = tuple(
    (code, re.compile(rf"^(?:via |by |per )?(?:the )?(?:{pat})(?: (?:route|infusion|injection|bolus|drip|push))?$"))
    for code, pat in _ROUTES
)


def parse_route(text: str) -> RouteCode | None:
    """The SNOMED CT route for a route mention (``"PO"`` -> oral route), or None."""
    norm = _norm(text)
    for code, rx in _ROUTE_RES:
        if rx.match(norm):
            return code
    return None


# ---------------------------------------------------------------- frequency


@dataclass(frozen=True, slots=True)
class FrequencySpec:
    """``frequency`` times per ``period`` (up to ``period_max``) ``period_unit`` (UCUM: h, d, wk, mo), plus
    ``when`` (FHIR event-timing codes such as "HS") and ``as_needed``. Fields are None when not stated."""

    frequency: int | None = None
    period: Decimal | None = None
    period_unit: str | None = None
    period_max: Decimal | None = None
    when: tuple[str, ...] = ()
    as_needed: bool = False

    @property
    def has_repeat(self) -> bool:
        return self.frequency is not None or bool(self.when)


_UNIT_WORDS = {
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "hourly": "h",
    "d": "d", "day": "d", "days": "d", "daily": "d",
    "w": "wk", "wk": "wk", "wks": "wk", "week": "wk", "weeks": "wk", "weekly": "wk",
    "mo": "mo", "month": "mo", "months": "mo", "monthly": "mo",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "y": "a", "yr": "a", "yrs": "a", "year": "a", "years": "a",
}  # fmt: skip
_LATIN = {"qd": 1, "od": 1, "qday": 1, "bid": 2, "bd": 2, "tid": 3, "tds": 3, "qid": 4}
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
_WHEN = {
    "qhs": "HS", "hs": "HS", "at bedtime": "HS", "at night": "NIGHT", "nightly": "HS", "every night": "NIGHT",
    "qam": "MORN", "every morning": "MORN", "in the morning": "MORN", "qpm": "EVE", "every evening": "EVE",
    "in the evening": "EVE",
}  # fmt: skip
_PRN_RE = re.compile(r"(?:^|\s)(?:p\.?r\.?n\.?|as needed|as required|when needed|if needed)(?=\s|$)")
_PER = r"(?:a|per|each|every|/|in a)"
_PERIOD_UNIT = r"(?P<unit>day|week|month|hour|d|wk)"
_FREQ_PATTERNS: tuple[re.Pattern[str], ...] = (
    # "q6h", "q 6 hrs", "q4-6h", "every 6 hours", "every 4 to 6 hours", "every 2 days", "every week"
    re.compile(
        rf"^(?:q|every|each)\s*(?P<n>{_WNUM})?(?:{_RANGE_SEP}(?P<m>{_WNUM}))?\s*"
        r"(?P<unit>hours?|hrs?|h|days?|d|weeks?|wks?|w|months?|mo|minutes?|mins?)$"
    ),
    # "2 times a day", "three times daily", "twice a week", "once daily", "2x/day", "x2 per day"
    re.compile(
        rf"^(?:(?P<n>{_WNUM})\s*(?:times|x)|x\s*(?P<n2>{_WNUM})|(?P<t>once|twice|thrice))\s*"
        rf"(?:{_PER}\s*)?(?:{_PERIOD_UNIT}|(?P<adv>daily|weekly|monthly|hourly))$"
    ),
)


def _unit_of(word: str) -> str | None:
    return _UNIT_WORDS.get(word) or _UNIT_WORDS.get(word.rstrip("s"))


def _drop_dots(s: str) -> str:
    """Remove abbreviation dots ("b.i.d." -> "bid") but keep decimal points ("1.5")."""
    return re.sub(r"(?<!\d)\.|\.(?!\d)", "", s)


def _core_frequency(s: str) -> FrequencySpec | None:
    """Frequency of a normalised mention without PRN words (None: not recognised)."""
    s = _drop_dots(s).strip(" ,;")
    if s in _LATIN:
        return FrequencySpec(_LATIN[s], Decimal(1), "d")
    if s in ("daily", "once a day", "every day", "each day", "a day", "per day", "qday"):
        return FrequencySpec(1, Decimal(1), "d")
    if s in ("hourly", "every hour", "qh", "q1h"):
        return FrequencySpec(1, Decimal(1), "h")
    if s in ("every other day", "qod", "alternate days", "on alternate days"):
        return FrequencySpec(1, Decimal(2), "d")
    if s in ("weekly", "once a week", "every week", "qw", "qwk", "once weekly"):
        return FrequencySpec(1, Decimal(1), "wk")
    if s in ("monthly", "once a month", "every month"):
        return FrequencySpec(1, Decimal(1), "mo")
    if s in _WHEN:
        return FrequencySpec(1, Decimal(1), "d", when=(_WHEN[s],))
    m = _FREQ_PATTERNS[0].match(s)
    if m is not None:
        unit = _unit_of(m.group("unit"))
        n = _number(m.group("n")) if m.group("n") else Decimal(1)
        hi = _number(m.group("m")) if m.group("m") else None
        if unit is None or n is None or n <= 0 or (hi is not None and hi < n):
            return None
        return FrequencySpec(1, n, unit, period_max=hi)
    m = _FREQ_PATTERNS[1].match(s)
    if m is not None:
        if m.group("t"):
            times: Decimal | None = Decimal(_TIMES[m.group("t")])
        else:
            times = _number(m.group("n") or m.group("n2"))
        unit = _unit_of(m.group("unit") or m.group("adv"))
        if times is None or unit is None or times <= 0 or times != times.to_integral_value():
            return None
        return FrequencySpec(int(times), Decimal(1), unit)
    return None


def parse_frequency(text: str) -> FrequencySpec | None:
    """``"BID"`` -> 2 per 1 d; ``"q6h prn"`` -> 1 per 6 h, as needed; ``"prn"`` -> as needed only; else None."""
    s = _norm(text)
    prn = bool(_PRN_RE.search(s))
    core = _PRN_RE.sub(" ", s).strip() if prn else s
    if not core:
        return FrequencySpec(as_needed=True) if prn else None
    spec = _core_frequency(core)
    if spec is None:
        return None
    return FrequencySpec(spec.frequency, spec.period, spec.period_unit, spec.period_max, spec.when, prn)


# ---------------------------------------------------------------- duration


@dataclass(frozen=True, slots=True)
class DurationSpec:
    """``value`` (to ``high`` for a range) ``unit``; ``unit`` is a UCUM time code (min, h, d, wk, mo, a)."""

    value: Decimal
    unit: str
    high: Decimal | None = None

    @property
    def unit_display(self) -> str:
        return _DURATION_DISPLAY[self.unit]


_DURATION_DISPLAY = {"min": "minutes", "h": "hours", "d": "days", "wk": "weeks", "mo": "months", "a": "years"}
_DURATION_RE = re.compile(
    rf"^(?:for|over|x|×|during|lasting|duration of|for a total of|for another|for an additional)?\s*"
    rf"(?:a period of |the next |the following |about |approximately )?"
    rf"(?P<v>{_WNUM})(?:{_RANGE_SEP}(?P<h>{_WNUM}))?\s*-?\s*"
    r"(?P<u>minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?|mo|years?|yrs?|y)"
    r"(?:\s*(?:course|treatment|therapy|supply))?(?:\s+(?:of treatment|of therapy))?$"
)


def parse_duration(text: str) -> DurationSpec | None:
    """``"for 3 days"`` -> 3 d; ``"6 weeks"`` -> 6 wk; ``"5-7 days"`` -> 5..7 d; else None."""
    m = _DURATION_RE.match(_norm(text).rstrip(" .,;"))
    if m is None:
        return None
    unit = _unit_of(m.group("u"))
    value = _number(m.group("v"))
    high = _number(m.group("h")) if m.group("h") else None
    if unit is None or value is None or value <= 0 or (high is not None and high < value):
        return None
    return DurationSpec(value=value, unit=unit, high=high)
