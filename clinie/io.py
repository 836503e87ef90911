"""Read and write the clinie interchange JSONL (docs/label-schema.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from clinie.document import Document, Entity, Relation
from clinie.errors import ErrorCode, InvalidInputError

SUBJECTS: tuple[str, ...] = ("patient", "family", "other")


def document_from_json(data: dict[str, Any]) -> Document:
    try:
        text = data["text"]
        doc_id = str(data["id"])
    except KeyError as exc:
        raise InvalidInputError(ErrorCode.BAD_INTERCHANGE, f"interchange line lacks {exc}") from None
    entities = []
    for e in data.get("entities", []):
        ent = Entity(
            id=str(e["id"]),
            label=str(e["label"]),
            start=int(e["start"]),
            end=int(e["end"]),
            negated=bool(e.get("negated", False)),
            score=e.get("score"),
            uncertain=bool(e.get("uncertain", False)),
            hypothetical=bool(e.get("hypothetical", False)),
            historical=bool(e.get("historical", False)),
            subject=str(e.get("subject", "patient")),
            codes=tuple(str(c) for c in e.get("codes") or ()),
            ingredient=str(e["ingredient"]) if e.get("ingredient") is not None else None,
        )
        if ent.subject not in SUBJECTS:
            raise InvalidInputError(
                ErrorCode.BAD_INTERCHANGE, f"document {doc_id}: entity {ent.id} has unknown subject {ent.subject!r}"
            )
        if "text" in e and text[ent.start : ent.end] != e["text"]:
            raise InvalidInputError(
                ErrorCode.BAD_INTERCHANGE, f"document {doc_id}: entity {ent.id} text does not match its offsets"
            )
        entities.append(ent)
    relations = [
        Relation(label=str(r["label"]), head=str(r["head"]), tail=str(r["tail"]), score=r.get("score"))
        for r in data.get("relations", [])
    ]
    labels = data.get("labels")
    return Document(
        id=doc_id,
        text=text,
        source=data.get("source"),
        labels=tuple(labels) if labels is not None else None,
        entities=tuple(entities),
        relations=tuple(relations),
    )


def document_to_json(doc: Document) -> dict[str, Any]:
    out: dict[str, Any] = {"id": doc.id}
    if doc.source is not None:
        out["source"] = doc.source
    out["text"] = doc.text
    if doc.labels is not None:
        out["labels"] = list(doc.labels)
    ents = []
    for e in doc.entities:
        item: dict[str, Any] = {
            "id": e.id,
            "label": e.label,
            "start": e.start,
            "end": e.end,
            "text": doc.text[e.start : e.end],
            "negated": e.negated,
        }
        for flag in ("uncertain", "hypothetical", "historical"):
            if getattr(e, flag):
                item[flag] = True
        if e.subject != "patient":
            item["subject"] = e.subject
        if e.codes:
            item["codes"] = list(e.codes)
        if e.ingredient is not None:
            item["ingredient"] = e.ingredient
        if e.score is not None:
            item["score"] = round(e.score, 4)
        ents.append(item)
    out["entities"] = ents
    rels = []
    for r in doc.relations:
        rel: dict[str, Any] = {"label": r.label, "head": r.head, "tail": r.tail}
        if r.score is not None:
            rel["score"] = round(r.score, 4)
        rels.append(rel)
    out["relations"] = rels
    return out


def iter_json_lines(path: str | Path, code: ErrorCode = ErrorCode.BAD_INTERCHANGE) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for each non-blank line of a JSON-lines file; a line that is not JSON raises
    :class:`InvalidInputError` with ``code`` and ``path:line`` (never the line's text)."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(code, f"{path}:{lineno}: not JSON ({exc.msg})") from None


def iter_documents(path: str | Path) -> Iterator[Document]:
    for _, data in iter_json_lines(path):
        yield document_from_json(data)


def read_documents(path: str | Path) -> list[Document]:
    return list(iter_documents(path))


def write_documents(path: str | Path, docs: Iterable[Document]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(document_to_json(doc), ensure_ascii=False) + "\n")
            n += 1
    return n
