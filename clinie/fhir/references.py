"""The one parser of FHIR literal references ("Patient/123", absolute URLs, bare ids) and FHIR ids.

Storage uses it to fill the reference search columns, the API to read reference search values, so both agree on
what a reference to a type is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# FHIR R4 ``id``: 1..64 characters of [A-Za-z0-9-.]
ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# relative ("Patient/1"), versioned ("Patient/1/_history/2") or absolute ("https://x/fhir/Patient/1")
_REF_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^?#]*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[^/?#]+)(?:/_history/[^/?#]+)?$"
)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``resource_type`` is None for a bare id."""

    resource_type: str | None
    id: str


def parse_reference(value: str) -> Reference | None:
    """``id``, ``Type/id``, ``Type/id/_history/v`` or an absolute URL ending in one of those; else None
    (conditional references such as ``Patient?identifier=...``, other paths, empty values)."""
    value = value.strip()
    m = _REF_RE.match(value)
    if m is not None:
        return Reference(m.group("type"), m.group("id"))
    if not value or "/" in value:
        return None
    return Reference(None, value)


def reference_id(reference: str | None, resource_type: str) -> str | None:
    """The bare id of a literal reference to ``resource_type`` ("Patient/1" -> "1"), else None.

    References to other types, bare ids, ids that are not FHIR ids and conditional references give None.
    """
    if not reference:
        return None
    ref = parse_reference(reference)
    if ref is None or ref.resource_type != resource_type or not ID_RE.match(ref.id):
        return None
    return ref.id


def normalize_reference(reference: str | None, resource_type: str) -> str | None:
    """``reference`` as a relative literal reference "Type/id", or None if it does not point to that type."""
    rid = reference_id(reference, resource_type)
    return None if rid is None else f"{resource_type}/{rid}"
