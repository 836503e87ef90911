"""PHEE (Sun et al., EMNLP 2022; github.com/ZhaoyueSun/PHEE ``data/json``) to the clinie interchange format.

One PHEE line is a sentence (``id``, ``context``) with pharmacovigilance events (``annotations[0].events``). The
mapping (docs/label-schema.md) takes, event by event in file order:

- ``Treatment.Drug`` -> Drug; ``Treatment.{Dosage, Route, Freq, Duration}`` -> Dosage, Route, Frequency, Duration;
  ``Treatment.Disorder`` -> Reason; the ``Effect`` of an ``Adverse_event`` -> ADE.
- every attribute of a Treatment relates to every Drug of the same Treatment (``<attribute>-Drug``), and an
  Adverse_event's Effect relates (``ADE-Drug``) to the drugs of its Treatment.

A mention written in several pieces becomes one entity per piece. The same label on the same span in several
events is one entity; entities are numbered ``T1..Tn`` by the order of first mention (Drugs of an event, then its
attributes in the order above, then its Effect). Subject, Trigger, Severity, Speculated and Negated are not
converted (the schema has no slot for them). Offsets are checked against the sentence (E105); a record that is
not PHEE-shaped is E104 with its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clinie.document import Document, Entity, Relation
from clinie.errors import ErrorCode, InvalidInputError
from clinie.schema import relation_label

PHEE_LABELS: tuple[str, ...] = ("Drug", "Dosage", "Route", "Frequency", "Duration", "Reason", "ADE")
TREATMENT_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("Dosage", "Dosage"), ("Route", "Route"), ("Freq", "Frequency"), ("Duration", "Duration"), ("Disorder", "Reason"),
)


def _mentions(arg: Any, text: str, where: str) -> list[tuple[int, int]]:
    """The (start, end) pieces of one PHEE argument, checked against the sentence."""
    if not isinstance(arg, dict):
        return []
    try:
        texts, starts = arg["text"], arg["start"]
        pieces = [(str(t), int(s)) for tt, ss in zip(texts, starts, strict=True) for t, s in zip(tt, ss, strict=True)]
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}: an argument lacks matching text/start lists") \
            from None
    out = []
    for piece, start in pieces:
        end = start + len(piece)
        if text[start:end] != piece or not piece:
            raise InvalidInputError(ErrorCode.OFFSET_MISMATCH, f"{where}: an argument at {start}..{end} does not "
                                    "match the sentence")
        out.append((start, end))
    return out


def phee_to_document(data: dict[str, Any], where: str = "<phee>") -> Document:
    try:
        doc_id, text = str(data["id"]), data["context"]
        events = data["annotations"][0]["events"] if data.get("annotations") else []
    except (KeyError, IndexError, TypeError):
        raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}: not a PHEE record (id, context, "
                                "annotations[0].events)") from None
    if not isinstance(text, str):
        raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}: context is not a string")
    ids: dict[tuple[str, int, int], str] = {}
    entities: list[Entity] = []
    relations: list[Relation] = []
    seen: set[tuple[str, str, str]] = set()

    def add(label: str, start: int, end: int) -> str:
        key = (label, start, end)
        if key not in ids:
            ids[key] = f"T{len(entities) + 1}"
            entities.append(Entity(id=ids[key], label=label, start=start, end=end))
        return ids[key]

    def relate(label: str, head: str, tail: str) -> None:
        if (label, head, tail) not in seen:
            seen.add((label, head, tail))
            relations.append(Relation(label, head, tail))

    for ev in events:
        treatment = ev.get("Treatment") if isinstance(ev, dict) else None
        if not isinstance(treatment, dict):
            continue
        drugs = [add("Drug", s, e) for s, e in _mentions(treatment.get("Drug"), text, where)]
        for key, label in TREATMENT_ATTRIBUTES:
            for s, e in _mentions(treatment.get(key), text, where):
                head = add(label, s, e)
                for drug in drugs:
                    relate(relation_label(label), head, drug)
        if ev.get("event_type") == "Adverse_event":
            for s, e in _mentions(ev.get("Effect"), text, where):
                head = add("ADE", s, e)
                for drug in drugs:
                    relate(relation_label("ADE"), head, drug)
    return Document(id=doc_id, text=text, source="phee", labels=PHEE_LABELS, entities=tuple(entities),
                    relations=tuple(relations))


def read_phee(path: str | Path) -> Iterator[Document]:
    """Every sentence of a PHEE JSON-lines file (``data/json/{train,dev,test}.json``)."""
    if not Path(path).is_file():
        raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{path}: no such file")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{path}:{lineno}: not a JSON object")
            yield phee_to_document(data, f"{path}:{lineno}")
