"""The one date helper of index and query: a FHIR date/dateTime/instant as the time range it denotes.

``2024`` is all of 2024, ``2024-03-01T10:00`` one minute, ``…T10:00:05.5`` a tenth of a second: the half-open
interval ``[low, high)`` at the value's precision, in UTC. Times without a zone are taken as UTC. Storage indexes
a value as ``low`` (instants) or ``[low, last]`` (periods, ``last`` = ``high`` - 1 µs); the API compares search
values' ranges with those columns.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")

_DATE_RE = re.compile(
    r"^(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
    r")?)?)?$",
    re.ASCII,
)
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class DateRange:
    """The half-open interval ``[low, high)`` (aware, UTC) that a FHIR date value denotes."""

    low: datetime
    high: datetime

    @property
    def last(self) -> datetime:
        """The last microsecond of the range (the inclusive end that period columns store)."""
        return self.high - _ONE_MICROSECOND


def _add_months(d: datetime, months: int) -> datetime:
    month0 = d.month - 1 + months
    return d.replace(year=d.year + month0 // 12, month=month0 % 12 + 1)


def date_range(value: str) -> DateRange:
    """``YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]`` -> its range.

    Raises ``ValueError`` for a malformed value and for one outside what a UTC datetime can hold (year 1 with a
    positive offset, year 9999 with a negative one)."""
    m = _DATE_RE.match(value)
    if m is None:
        raise ValueError("not a FHIR date/dateTime")
    g = m.groupdict()
    try:
        tz: timezone = UTC
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
            if hh > 14 or mm > 59:
                raise ValueError("offset out of range")
            tz = timezone(sign * timedelta(hours=hh, minutes=mm))
        year = int(g["year"])
        if year < 1:
            raise ValueError("year out of range")
        if g["month"] is not None:
            calendar.monthrange(year, int(g["month"]))  # month range check
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
            if int(g["hour"]) > 23:
                raise ValueError("hour out of range")
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
        return DateRange(low.astimezone(UTC), high.astimezone(UTC))
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 is before datetime.min in UTC
        raise ValueError("date out of range") from exc


def parse_date(value: object) -> DateRange | None:
    """``date_range`` for indexing: None for anything that is not a valid FHIR date string."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return date_range(value)
    except ValueError:
        return None
