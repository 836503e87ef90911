"""Read notes from what a user has: ``.txt`` files, folders of them, stdin, interchange JSONL, FHIR NDJSON/Bundles.

:func:`read_inputs` turns command-line arguments into :class:`NoteInput` items (and :class:`RecordError` items for
records that cannot be used, e.g. an invalid DocumentReference: they are reported, the others still processed).
Arguments that cannot be read at all (missing file, directory without notes, undecodable text file) raise a
:class:`~clinie.errors.ClinieError` before anything is written.

What a file is, is decided by its content, not only its name:

- ``.txt`` (and any file whose first non-blank character is not ``{`` or ``[``) -> one note, the whole file;
- otherwise JSON: one object per line (JSONL/NDJSON), or one JSON document (a ``.json`` file, pretty-printed or not);
  each object is a ``DocumentReference``, a ``Bundle`` (its DocumentReference entries are used) or an interchange
  line (``id`` and ``text``, see docs/label-schema.md).

Plain-text notes become FHIR ``DocumentReference`` resources with :func:`document_reference_from_text` when FHIR
output is wanted (or when ``clinie publish`` sends them), so they go through the same parsing as the service.
"""

from __future__ import annotations

import base64
import glob
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.documentreference import DocumentReference, DocumentReferenceContent
from fhir.resources.R4B.reference import Reference

from clinie.document import Document
from clinie.errors import ClinieError, ErrorCode, InvalidInputError
from clinie.fhir.docref import SourceNote, parse_document_reference
from clinie.io import document_from_json

TEXT_SUFFIXES = (".txt", ".text", ".md")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
DEFAULT_GLOB = "**/*.txt"
_GLOB_CHARS = re.compile(r"[*?\[]")
_FHIR_ID_BAD = re.compile(r"[^A-Za-z0-9\-.]+")


@dataclass(frozen=True)
class NoteInput:
    """One note to annotate. ``note`` is set when it came as a DocumentReference (then ``document.id`` is its id)."""

    document: Document
    origin: str  # "path", "path:line" or "-:line", for messages
    note: SourceNote | None = None
    raw: dict[str, Any] | None = None  # the DocumentReference as read (``clinie publish`` sends it as it is)

    def source_note(self, patient: str | None = None, encounter: str | None = None) -> SourceNote:
        """The note as the service would see it: a DocumentReference (plain text is wrapped into one first)."""
        if self.note is not None:
            return self.note
        resource = document_reference_from_text(self.document.text, fhir_id(self.document.id), patient=patient,
                                                encounter=encounter)
        return parse_document_reference(resource.model_dump_json(), max_chars=max(len(self.document.text), 1))


@dataclass(frozen=True)
class RecordError:
    """A record that could not be used (reported on stderr with its code; the other notes are still processed)."""

    origin: str
    error: ClinieError

    def __str__(self) -> str:
        return f"{self.origin}: [{self.error.code.value}] {self.error.message}"


def fhir_id(value: str) -> str:
    """A valid FHIR id (``[A-Za-z0-9-.]{1,64}``) for a note id: other characters become ``-``."""
    out = _FHIR_ID_BAD.sub("-", value).strip("-.")[:64]
    return out or "note"


def document_reference_from_text(
    text: str,
    doc_id: str,
    *,
    patient: str | None = None,
    encounter: str | None = None,
    date: datetime | None = None,
) -> DocumentReference:
    """A current ``text/plain; charset=utf-8`` DocumentReference holding ``text`` (base64) for ``Patient/<patient>``."""
    ref = _ref(patient, "Patient")
    data64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
    attachment = Attachment(contentType="text/plain; charset=utf-8", data=data64)
    data: dict[str, Any] = {"id": fhir_id(doc_id), "status": "current",
                            "content": [DocumentReferenceContent(attachment=attachment)]}
    if ref is not None:
        data["subject"] = Reference(reference=ref)
    if encounter:
        data["context"] = {"encounter": [{"reference": _ref(encounter, "Encounter")}]}
    if date is not None:
        data["date"] = date
    return DocumentReference(**data)


def _ref(value: str | None, rtype: str) -> str | None:
    if not value:
        return None
    return value if value.startswith(f"{rtype}/") else f"{rtype}/{value}"


# ---------------------------------------------------------------------------------------------- expanding arguments


def expand_paths(args: list[str], pattern: str = DEFAULT_GLOB) -> list[str]:
    """Files named by ``args``: ``-`` stays, a folder gives its files matching ``pattern`` (recursive by default),
    a quoted glob such as ``'notes/**/*.txt'`` is expanded. Raises ``E301`` for a missing path, ``E303`` when a
    folder or glob names no file."""
    out: list[str] = []
    for arg in args:
        if arg == "-":
            out.append(arg)
            continue
        path = Path(arg)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob(pattern) if p.is_file())
            if not found:
                raise ClinieError(ErrorCode.NO_INPUT, f"{arg}: no files matching {pattern!r} in this folder")
            out.extend(found)
        elif path.exists():
            out.append(arg)
        elif _GLOB_CHARS.search(arg):
            found = sorted(p for p in glob.glob(arg, recursive=True) if Path(p).is_file())
            if not found:
                raise ClinieError(ErrorCode.NO_INPUT, f"{arg}: the pattern matches no file")
            out.extend(found)
        else:
            raise ClinieError(ErrorCode.INPUT_NOT_FOUND, f"{arg}: no such file or folder")
    if not out:
        raise ClinieError(ErrorCode.NO_INPUT, "no input given")
    return out


def read_inputs(args: list[str], pattern: str = DEFAULT_GLOB, *, stdin: BinaryIO | None = None
                ) -> list[NoteInput | RecordError]:
    """Every note in ``args`` (see the module docstring), in order. Fatal problems raise before anything is read."""
    paths = expand_paths(args, pattern)
    roots = [Path(a) for a in args if a != "-" and Path(a).is_dir()]
    items: list[NoteInput | RecordError] = []
    for p in paths:
        if p == "-":
            raw = (stdin or sys.stdin.buffer).read()
            items.extend(_read_bytes(raw, "-", "stdin"))
            continue
        path = Path(p)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ClinieError(ErrorCode.INPUT_UNREADABLE, f"{p}: cannot read ({exc.strerror or type(exc).__name__})"
                              ) from None
        items.extend(_read_bytes(raw, p, _note_id(path, roots), text_only=path.suffix.lower() in TEXT_SUFFIXES))
    return items


def _note_id(path: Path, roots: list[Path]) -> str:
    """The id of a plain-text note: its path below the folder given (without suffix), else the file name stem."""
    for root in roots:
        try:
            return path.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            continue
    return path.stem


def _decode(raw: bytes, origin: str) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ClinieError(ErrorCode.INPUT_UNREADABLE,
                          f"{origin}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def _read_bytes(raw: bytes, origin: str, text_id: str, *, text_only: bool = False) -> list[NoteInput | RecordError]:
    text = _decode(raw, origin)
    head = text.lstrip()[:1]
    if text_only or head not in ("{", "["):
        if not text.strip():
            return [RecordError(origin, InvalidInputError(ErrorCode.NO_TEXT, "the note is empty"))]
        return [NoteInput(Document(id=text_id, text=text, source="text"), origin)]
    return list(_read_json_text(text, origin))


def _read_json_text(text: str, origin: str) -> Iterator[NoteInput | RecordError]:
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    try:
        json.loads(lines[first])
        as_lines = True
    except ValueError:
        as_lines = False  # one (pretty-printed) JSON document
    if not as_lines:
        try:
            data = json.loads(text)
        except ValueError as exc:
            yield RecordError(origin, InvalidInputError(ErrorCode.NOT_JSON, f"not JSON ({type(exc).__name__}: "
                                                                            f"line {getattr(exc, 'lineno', '?')})"))
            return
        objs = data if isinstance(data, list) else [data]
        for i, obj in enumerate(objs, 1):
            yield from _from_object(obj, origin if len(objs) == 1 else f"{origin}[{i}]")
        return
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{origin}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError:
            yield RecordError(where, InvalidInputError(ErrorCode.NOT_JSON, "line is not JSON"))
            continue
        yield from _from_object(obj, where)


def _from_object(obj: Any, origin: str) -> Iterator[NoteInput | RecordError]:
    if not isinstance(obj, dict):
        yield RecordError(origin, InvalidInputError(ErrorCode.BAD_INTERCHANGE, "not a JSON object"))
        return
    rtype = obj.get("resourceType")
    try:
        if rtype == "Bundle":
            docrefs = [e.get("resource") for e in obj.get("entry") or [] if isinstance(e, dict)
                       and isinstance(e.get("resource"), dict)
                       and e["resource"].get("resourceType") == "DocumentReference"]
            if not docrefs:
                raise InvalidInputError(ErrorCode.NOT_DOCUMENT_REFERENCE, "Bundle holds no DocumentReference")
            for i, res in enumerate(docrefs, 1):
                yield from _from_object(res, f"{origin}#entry{i}")
        elif rtype is not None:
            note = parse_document_reference(obj)
            yield NoteInput(note.document, origin, note, raw=obj)
        else:
            doc = document_from_json(obj).without_annotations()
            yield NoteInput(replace(doc, source=doc.source or "interchange"), origin)
    except ClinieError as err:
        yield RecordError(origin, err)
    except (KeyError, TypeError, ValueError) as exc:
        yield RecordError(origin, InvalidInputError(ErrorCode.BAD_INTERCHANGE,
                                                    f"not an interchange line ({type(exc).__name__})"))
