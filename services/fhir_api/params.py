"""Parsing of FHIR search parameter values: escaping, dates with precision, tokens, references.

Everything here is pure (no SQL); malformed input raises ``FhirError(400)`` with a message that names the
parameter but never echoes its value (values may be PHI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clinie.fhir.references import Reference
from clinie.fhir.references import parse_reference as _parse_reference
from clinie.fhir.search import DATE_PREFIXES, date_range
from services.fhir_api.errors import FhirError


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
class DateParam:
    """A date search value: its prefix and the half-open interval [low, high) it denotes (``clinie.fhir.search``)."""

    prefix: str
    low: datetime
    high: datetime


def parse_date(name: str, raw: str) -> DateParam:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]``. A malformed or out-of-range value is a 400."""
    prefix = "eq"
    value = raw
    if len(raw) >= 2 and raw[:2].isalpha():
        prefix, value = raw[:2], raw[2:]
        if prefix == "ap":
            raise bad_request(f"date prefix 'ap' is not supported (parameter '{name}')")
        if prefix not in DATE_PREFIXES:
            raise bad_request(f"unknown date prefix in parameter '{name}'")
    try:
        rng = date_range(value)
    except ValueError as exc:
        raise bad_request(f"parameter '{name}' is not a valid FHIR date/dateTime (or out of range)") from exc
    return DateParam(prefix, rng.low, rng.high)


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


def parse_reference(name: str, raw: str, type_modifier: str | None = None) -> Reference:
    """``id``, ``Type/id``, ``Type/id/_history/v`` or an absolute URL ending in ``Type/id``
    (``clinie.fhir.references.parse_reference``)."""
    ref = _parse_reference(unescape(raw))
    if ref is None:
        raise bad_request(f"parameter '{name}' is not a valid reference")
    if type_modifier is not None:
        if ref.resource_type is not None and ref.resource_type != type_modifier:
            raise bad_request(f"parameter '{name}': reference type does not match the type modifier")
        ref = Reference(type_modifier, ref.id)
    return ref
