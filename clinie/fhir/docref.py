"""Parse and validate an incoming FHIR R4 ``DocumentReference`` into a :class:`SourceNote`.

Steps, each with its own permanent error code (``InvalidInputError``; messages never contain note text):

1. JSON (``bytes``/``str``) -> object ............................. ``NOT_JSON``
2. ``resourceType == "DocumentReference"`` ...................... ``NOT_DOCUMENT_REFERENCE``
3. validation with the fhir.resources R4B model, and an ``id`` ... ``INVALID_RESOURCE``
4. pick the attachment: among ``content[].attachment`` with inline ``data`` (``url``-only attachments are not
   fetched), the first ``text/plain``, else the first ``text/html`` . ``NO_TEXT`` (no data at all) /
   ``UNSUPPORTED_CONTENT_TYPE`` (data, but no supported type, or an unknown charset)
5. strict base64 decoding (whitespace allowed, nothing else) ..... ``BAD_BASE64``
6. decoding with the declared ``charset`` (default utf-8; a leading BOM is dropped; NUL is refused, as
   PostgreSQL cannot store it) ................................... ``BAD_ENCODING``
7. HTML only: conversion to plain text (``clinie.fhir.html_text``)
8. length check (characters of the final text) ................... ``NOTE_TOO_LARGE``
9. the text must not be empty or whitespace ...................... ``NO_TEXT``

**The note text** is the decoded attachment text as is for ``text/plain``, and the *extracted* text for
``text/html``. That text becomes ``Document.text``: every entity offset, every evidence extension offset and
``content_sha256`` refer to it, not to the HTML markup.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import ValidationError

from clinie.document import Document
from clinie.errors import ErrorCode, InvalidInputError
from clinie.fhir.html_text import html_to_text
from clinie.fhir.references import normalize_reference

SUPPORTED_TYPES = ("text/plain", "text/html")
DEFAULT_MAX_CHARS = 200_000
SOURCE = "fhir:DocumentReference"
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_WS_RE = re.compile(r"\s+")
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$&^_.+\-/]{1,64}|\(none\)")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # element names that may appear in error messages
# a character takes at most 4 bytes in any charset we decode; HTML markup may be much larger than its text
_MAX_BYTES_PER_CHAR = {"text/plain": 4, "text/html": 32}


@dataclass(frozen=True)
class SourceNote:
    """A validated clinical note: the text (as a :class:`Document`) and where it belongs."""

    document: Document  # id = DocumentReference.id, text = the note text (see module docstring)
    resource_id: str  # DocumentReference.id
    version: str  # meta.versionId, else the first 16 hex chars of content_sha256
    content_sha256: str  # sha256 (hex) of the note text, utf-8
    patient_ref: str | None  # "Patient/<id>" from subject, else None
    encounter_ref: str | None  # "Encounter/<id>": the first Encounter in context.encounter, else None
    date: datetime | None  # DocumentReference.date (an instant: always timezone-aware)
    content_type: str  # media type of the chosen attachment ("text/plain" or "text/html"), no parameters

    @property
    def text(self) -> str:
        return self.document.text


def parse_document_reference(
    payload: bytes | str | Mapping[str, Any], *, max_chars: int = DEFAULT_MAX_CHARS
) -> SourceNote:
    """Validate a DocumentReference (JSON bytes/str or parsed dict) and extract its note text."""
    data = _load_json(payload)
    resource = _validate(data)
    rid = str(resource.id)  # _validate guarantees an id
    content = data.get("content")
    assert isinstance(content, list)  # guaranteed by the model validation
    index, media_type, charset = _choose_attachment(rid, content)
    raw = _decode_base64(rid, content[index]["attachment"]["data"])
    if len(raw) > max_chars * _MAX_BYTES_PER_CHAR[media_type] + 4:
        raise InvalidInputError(
            ErrorCode.NOTE_TOO_LARGE, f"DocumentReference/{rid}: attachment of {len(raw)} bytes exceeds the limit"
        )
    text = _decode_text(rid, raw, charset)
    if media_type == "text/html":
        text = html_to_text(text)
    if len(text) > max_chars:
        raise InvalidInputError(
            ErrorCode.NOTE_TOO_LARGE, f"DocumentReference/{rid}: note of {len(text)} characters > {max_chars}"
        )
    if not text.strip():
        raise InvalidInputError(ErrorCode.NO_TEXT, f"DocumentReference/{rid}: the note text is empty")

    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    version = resource.meta.versionId if resource.meta is not None and resource.meta.versionId else sha[:16]
    encounter_ref = None
    if resource.context is not None:
        for ref in resource.context.encounter or ():
            encounter_ref = normalize_reference(ref.reference, "Encounter")
            if encounter_ref is not None:
                break
    patient_ref = normalize_reference(resource.subject.reference, "Patient") if resource.subject else None
    document = Document(id=rid, text=text, source=SOURCE, meta={"version": version, "content_type": media_type})
    return SourceNote(
        document=document,
        resource_id=rid,
        version=str(version),
        content_sha256=sha,
        patient_ref=patient_ref,
        encounter_ref=encounter_ref,
        date=resource.date,
        content_type=media_type,
    )


def _load_json(payload: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(payload, Mapping):
        data: object = dict(payload)
    else:
        try:
            data = json.loads(payload)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise InvalidInputError(ErrorCode.NOT_JSON, f"payload is not JSON ({type(exc).__name__})") from None
        except RecursionError:  # nested deeper than the interpreter's recursion limit: no FHIR resource is
            raise InvalidInputError(ErrorCode.NOT_JSON, "payload is not JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise InvalidInputError(ErrorCode.NOT_DOCUMENT_REFERENCE, "payload is not a JSON object")
    rtype = data.get("resourceType")
    if rtype != "DocumentReference":
        shown = rtype if isinstance(rtype, str) and _NAME_RE.fullmatch(rtype) else "(invalid)"
        raise InvalidInputError(
            ErrorCode.NOT_DOCUMENT_REFERENCE, f"resourceType is {shown!r}, expected 'DocumentReference'"
        )
    return data


def _validate(data: dict[str, Any]) -> DocumentReference:
    try:
        resource = DocumentReference.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # element paths and error types only: never the offending values (or odd keys), which may be PHI
        where = "; ".join(f"{_path(e['loc'])}: {e['type']}" for e in errors[:5])
        if all(e["type"] == "base64_decode" for e in errors):
            raise InvalidInputError(ErrorCode.BAD_BASE64, f"attachment data is not valid base64: {where}") from None
        raise InvalidInputError(
            ErrorCode.INVALID_RESOURCE, f"DocumentReference is not valid FHIR R4: {where}"
        ) from None
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: elements nested hundreds deep
        raise InvalidInputError(
            ErrorCode.INVALID_RESOURCE, f"DocumentReference is not valid FHIR R4 ({type(exc).__name__})"
        ) from None
    if not resource.id:
        raise InvalidInputError(ErrorCode.INVALID_RESOURCE, "DocumentReference has no id")
    return resource


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) if isinstance(p, int) or _NAME_RE.fullmatch(p) else "?" for p in loc)


def _safe(token: str) -> str:
    """A media type or charset fit to quote in a message (they come from the payload)."""
    return token if _TOKEN_RE.fullmatch(token) else "(invalid)"


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``"text/plain; charset=UTF-8"`` -> ``("text/plain", {"charset": "UTF-8"})`` (media type lower-cased)."""
    media, *params = value.split(";")
    out: dict[str, str] = {}
    for p in params:
        key, sep, val = p.partition("=")
        if sep:
            out[key.strip().lower()] = val.strip().strip('"').strip("'")
    return media.strip().lower(), out


def _choose_attachment(rid: str, content: list[Any]) -> tuple[int, str, str]:
    """(index in content, media type, charset) of the attachment to read."""
    with_data: list[tuple[int, str, dict[str, str]]] = []
    for i, item in enumerate(content):
        att = item.get("attachment") if isinstance(item, dict) else None
        if not isinstance(att, dict) or not isinstance(att.get("data"), str) or not att["data"].strip():
            continue
        media, params = parse_content_type(str(att.get("contentType") or ""))
        with_data.append((i, media, params))
    if not with_data:
        raise InvalidInputError(ErrorCode.NO_TEXT, f"DocumentReference/{rid}: no attachment with inline data")
    for wanted in SUPPORTED_TYPES:
        for i, media, params in with_data:
            if media == wanted:
                charset = params.get("charset", "utf-8")
                try:
                    if not getattr(codecs.lookup(charset), "_is_text_encoding", True):
                        raise LookupError(charset)  # bytes-to-bytes codecs such as "zlib" or "base64"
                except LookupError:
                    raise InvalidInputError(
                        ErrorCode.UNSUPPORTED_CONTENT_TYPE,
                        f"DocumentReference/{rid}: unknown charset {_safe(charset)!r}",
                    ) from None
                return i, media, charset
    found = sorted({media or "(none)" for _, media, _ in with_data})
    raise InvalidInputError(
        ErrorCode.UNSUPPORTED_CONTENT_TYPE,
        f"DocumentReference/{rid}: content types {', '.join(_safe(t) for t in found)} (supported: "
        f"{', '.join(SUPPORTED_TYPES)})",
    )


def _decode_base64(rid: str, data: str) -> bytes:
    compact = _WS_RE.sub("", data)
    if not _B64_RE.fullmatch(compact):
        raise InvalidInputError(ErrorCode.BAD_BASE64, f"DocumentReference/{rid}: attachment data is not base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            ErrorCode.BAD_BASE64, f"DocumentReference/{rid}: attachment data is not valid base64 (length/padding)"
        ) from None


def _decode_text(rid: str, raw: bytes, charset: str) -> str:
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            ErrorCode.BAD_ENCODING, f"DocumentReference/{rid}: bytes are not valid {_safe(charset)} at {exc.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise InvalidInputError(ErrorCode.BAD_ENCODING, f"DocumentReference/{rid}: text contains NUL characters")
    return text
