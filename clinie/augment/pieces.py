"""A document as a sequence of plain-text and entity pieces: augmenters edit pieces, ``assemble`` recomputes offsets.

Every augmenter (offline and LLM) works on pieces, never on character offsets: an entity piece carries the handle of
its source entity (its index in the source document's ``entities``), so offsets, ids (T1.. in order of start) and
relations (by handle) are recomputed exactly when the pieces are joined again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from clinie.schema import relation_label


@dataclass(slots=True)
class Piece:
    text: str
    handle: int | None = None  # index of the source entity; None for plain text or a new entity
    label: str | None = None  # set on entity pieces
    attrs: dict[str, Any] = field(default_factory=dict)  # overrides of the entity's attributes (ingredient, codes...)

    @property
    def is_entity(self) -> bool:
        return self.label is not None


def to_pieces(doc: dict[str, Any]) -> list[Piece]:
    """Split ``doc`` into pieces (entities must not overlap, which the validator guarantees)."""
    text: str = doc["text"]
    pieces: list[Piece] = []
    pos = 0
    order = sorted(range(len(doc.get("entities", []))), key=lambda i: (doc["entities"][i]["start"], i))
    for i in order:
        e = doc["entities"][i]
        if e["start"] < pos:
            raise ValueError(f"document {doc.get('id')}: entities overlap")
        if e["start"] > pos:
            pieces.append(Piece(text[pos : e["start"]]))
        pieces.append(Piece(text[e["start"] : e["end"]], i, e["label"]))
        pos = e["end"]
    if pos < len(text):
        pieces.append(Piece(text[pos:]))
    return pieces


def merge_plain(pieces: list[Piece]) -> list[Piece]:
    """Join adjacent plain pieces and drop empty ones."""
    out: list[Piece] = []
    for p in pieces:
        if not p.is_entity and not p.text:
            continue
        if out and not p.is_entity and not out[-1].is_entity:
            out[-1] = Piece(out[-1].text + p.text)
        else:
            out.append(p)
    return out


def split_plain_at(pieces: list[Piece], offsets: set[int]) -> list[Piece]:
    """Split plain pieces at the given character offsets (of the current joined text); entity pieces stay whole."""
    out: list[Piece] = []
    pos = 0
    for p in pieces:
        end = pos + len(p.text)
        if p.is_entity:
            out.append(p)
        else:
            cuts = sorted(o for o in offsets if pos < o < end)
            last = pos
            for c in cuts:
                out.append(Piece(p.text[last - pos : c - pos]))
                last = c
            out.append(Piece(p.text[last - pos :]))
        pos = end
    return [p for p in out if p.is_entity or p.text]


def joined(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)


def assemble(
    doc: dict[str, Any],
    pieces: list[Piece],
    *,
    doc_id: str | None = None,
    relations: list[tuple[int, int]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The interchange document of ``pieces``: source attributes kept by handle, offsets/ids/relations recomputed.

    ``relations`` (pairs of piece indices: attribute, drug) replaces the source relations; by default the source
    relations are carried over by handle (a relation whose entity is gone is dropped).
    """
    text = joined(pieces)
    source_ents: list[dict[str, Any]] = doc.get("entities", [])
    spans: list[tuple[int, int, int]] = []  # (start, end, piece index)
    pos = 0
    for n, p in enumerate(pieces):
        if p.is_entity:
            spans.append((pos, pos + len(p.text), n))
        pos += len(p.text)
    spans.sort()
    ids: dict[int, str] = {n: f"T{k}" for k, (_, _, n) in enumerate(spans, 1)}
    entities: list[dict[str, Any]] = []
    for start, end, n in spans:
        p = pieces[n]
        base = copy.deepcopy(source_ents[p.handle]) if p.handle is not None else {"negated": False}
        for key in ("id", "label", "start", "end", "text", "score"):
            base.pop(key, None)
        base.update(p.attrs)
        item: dict[str, Any] = {"id": ids[n], "label": p.label, "start": start, "end": end, "text": text[start:end]}
        item["negated"] = bool(base.pop("negated", False))
        item.update({k: v for k, v in base.items() if v is not None})
        entities.append(item)
    rels: list[dict[str, Any]] = []
    if relations is None:
        by_handle = {p.handle: n for n, p in enumerate(pieces) if p.is_entity and p.handle is not None}
        source_index = {e["id"]: i for i, e in enumerate(source_ents)}
        for r in doc.get("relations", []):
            h, t = by_handle.get(source_index.get(r["head"], -1)), by_handle.get(source_index.get(r["tail"], -1))
            if h is not None and t is not None:
                rels.append({"label": relation_label(str(pieces[h].label)), "head": ids[h], "tail": ids[t]})
    else:
        for h, t in relations:
            rels.append({"label": relation_label(str(pieces[h].label)), "head": ids[h], "tail": ids[t]})
    out: dict[str, Any] = {k: v for k, v in doc.items() if k not in ("text", "entities", "relations", "meta")}
    out["id"] = doc_id if doc_id is not None else doc.get("id")
    out["text"] = text
    out["entities"] = entities
    out["relations"] = rels
    if meta is not None:
        out["meta"] = meta
    return out
