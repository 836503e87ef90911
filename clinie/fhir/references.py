"""Small helpers for FHIR literal references ("Patient/123") and ids."""

from __future__ import annotations

import re

# FHIR R4 ``id``: 1..64 characters of [A-Za-z0-9-.]
_ID = r"[A-Za-z0-9\-.]{1,64}"
ID_RE = re.compile(rf"^{_ID}$")
# relative ("Patient/1"), versioned ("Patient/1/_history/2") or absolute ("https://x/fhir/Patient/1")
_REF_RE = re.compile(rf"^(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/{_ID})?$")


def reference_id(reference: str | None, resource_type: str) -> str | None:
    """The bare id of a literal reference to ``resource_type`` ("Patient/1" -> "1"), else None.

    Conditional references ("Patient?identifier=...") and references to other types give None.
    """
    if not reference:
        return None
    m = _REF_RE.match(reference.strip())
    if m is None or m.group("type") != resource_type:
        return None
    return m.group("id")


def normalize_reference(reference: str | None, resource_type: str) -> str | None:
    """``reference`` as a relative literal reference "Type/id", or None if it does not point to that type."""
    rid = reference_id(reference, resource_type)
    return None if rid is None else f"{resource_type}/{rid}"


def is_fhir_id(value: str) -> bool:
    return bool(ID_RE.match(value))
