"""Parsing of FHIR search parameter values: escaping, dates with precision, tokens, references.

Everything here is pure (no SQL); malformed input raises ``FhirError(400)`` with a message that names the
parameter but never echoes its value (values may be PHI).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from services.fhir_api.errors import FhirError

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")

_DATE_RE = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
    r")?)?)?$"
)
_ABSOLUTE_REF = re.compile(r"^https?://[^?#]*?/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/?#]+)(?:/_history/[^/?#]+)?$")
_RELATIVE_REF = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/]+)(?:/_history/[^/]+)?$")


def bad_request(diagnostics: str) -> FhirError:
    return FhirError(400, diagnostics)


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash escape; escapes are kept for a later ``unescape``."""
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            buf.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def unescape(value: str) -> str:
    r"""Undo the FHIR search escapes ``\,`` ``\|`` ``\$`` ``\\``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",|$\\":
            out.append(value[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def check_value(name: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise bad_request(f"value of parameter '{name}' is too long (at most {max_length} characters)")
    if any(ord(ch) < 0x20 for ch in value):
        raise bad_request(f"value of parameter '{name}' contains control characters")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise bad_request(f"value of parameter '{name}' is not valid Unicode")


def or_values(name: str, raw: str) -> list[str]:
    """Comma-separated alternatives (OR) of one parameter occurrence, still escaped."""
    values = split_unescaped(raw, ",")
    if any(v == "" for v in values):
        raise bad_request(f"parameter '{name}' has an empty value")
    return values


# ---------------------------------------------------------------------------------------------------- dates


@dataclass(frozen=True)
class DateRange:
    """The half-open interval [low, high) that a FHIR date/dateTime value denotes at its precision."""

    prefix: str
    low: datetime
    high: datetime


def _add_months(d: datetime, months: int) -> datetime:
    month0 = d.month - 1 + months
    year = d.year + month0 // 12
    return d.replace(year=year, month=month0 % 12 + 1)


def parse_date(name: str, raw: str) -> DateRange:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]`` -> range. Times without zone are taken as UTC."""
    prefix = "eq"
    value = raw
    if len(raw) >= 2 and raw[:2].isalpha():
        prefix, value = raw[:2], raw[2:]
        if prefix == "ap":
            raise bad_request(f"date prefix 'ap' is not supported (parameter '{name}')")
        if prefix not in DATE_PREFIXES:
            raise bad_request(f"unknown date prefix in parameter '{name}'")
    m = _DATE_RE.match(value)
    if m is None:
        raise bad_request(f"parameter '{name}' is not a valid FHIR date/dateTime")
    g = m.groupdict()
    try:
        tz: timezone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
            if hh > 14 or mm > 59:
                raise ValueError("offset")
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        year = int(g["year"])
        if year < 1:
            raise ValueError("year")
        if g["month"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = low.replace(year=year + 1) if year < 9999 else datetime.max.replace(tzinfo=tz)
        elif g["day"] is None:
            low = datetime(year, int(g["month"]), 1, tzinfo=tz)
            high = _add_months(low, 1) if (year, low.month) != (9999, 12) else datetime.max.replace(tzinfo=tz)
        elif g["hour"] is None:
            low = datetime(year, int(g["month"]), int(g["day"]), tzinfo=tz)
            high = low + timedelta(days=1)
        else:
            if g["hour"] == "24" or int(g["hour"]) > 23:
                raise ValueError("hour")
            second = int(g["second"]) if g["second"] is not None else 0
            frac = g["fraction"]
            micro = int((frac + "000000")[:6]) if frac else 0
            low = datetime(year, int(g["month"]), int(g["day"]), int(g["hour"]), int(g["minute"]), second, micro, tz)
            if g["second"] is None:
                step = timedelta(minutes=1)
            elif not frac:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=10 ** max(0, 6 - len(frac)))
            high = low + step
        if g["month"] is not None:
            calendar.monthrange(year, int(g["month"]))  # month range check
    except (ValueError, OverflowError) as exc:
        raise bad_request(f"parameter '{name}' is not a valid FHIR date/dateTime") from exc
    return DateRange(prefix, low.astimezone(UTC), high.astimezone(UTC))


# ---------------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    """``system|code`` (system given), ``|code`` (system empty string), ``code`` (system None), ``system|``."""

    system: str | None
    code: str | None


def parse_token(name: str, raw: str) -> Token:
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        code = unescape(parts[0])
        if not code:
            raise bad_request(f"parameter '{name}' has an empty token")
        return Token(None, code)
    if len(parts) != 2:
        raise bad_request(f"parameter '{name}' is not a valid token (system|code)")
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise bad_request(f"parameter '{name}' has an empty token")
    return Token(system, code or None)


# ---------------------------------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    resource_type: str | None
    id: str


def parse_reference(name: str, raw: str, type_modifier: str | None = None) -> Reference:
    """``id``, ``Type/id``, ``Type/id/_history/v`` or an absolute URL ending in ``Type/id``."""
    value = unescape(raw)
    m = _ABSOLUTE_REF.match(value) or _RELATIVE_REF.match(value)
    if m is not None:
        rtype, rid = m.group("type"), m.group("id")
    elif "/" in value:
        raise bad_request(f"parameter '{name}' is not a valid reference")
    else:
        rtype, rid = None, value
    if type_modifier is not None:
        if rtype is not None and rtype != type_modifier:
            raise bad_request(f"parameter '{name}': reference type does not match the type modifier")
        rtype = type_modifier
    if not rid:
        raise bad_request(f"parameter '{name}' has an empty reference")
    return Reference(rtype, rid)
