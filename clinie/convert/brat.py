"""brat standoff (``NAME.txt`` + ``NAME.ann``) to and from the clinie interchange format.

Reading (``read_brat_folder``):

- ``T`` lines are entities. A discontinuous span (``T3<TAB>Problem 10 17;26 39<TAB>...``) becomes one entity per
  fragment (``discontinuous = "split"``, the default: each fragment gets the label, the flags and the relations of
  the whole) or one entity from the first start to the last end (``"join"``). The text after the second tab must
  equal the note's text at the offsets (fragments joined by one space; runs of whitespace, Unicode spaces
  included, compare equal, as some MACCROBAT lines carry a stray tab), else E105.
- ``E`` lines (events) stand for their trigger entity: relations and attributes on an event apply to the trigger.
  Event arguments other than the trigger are not converted.
- ``R`` lines are relations: ``Arg1`` is the head, ``Arg2`` the tail; with the label map value ``"*"`` the label
  is ``<attribute>-Drug`` whichever end the Drug is at, and a relation that does not join an attribute to a Drug
  is left out.
- ``A``/``M`` lines are attributes (``A1<TAB>Negated T3`` or ``A1<TAB>POLARITY E2 NEG``) mapped to flags by the
  label map (defaults: Negated/Negation/POLARITY=NEG -> negated, Uncertain, Hypothetical, Historical,
  Subject=family/other). Flags on clinie labels other than Problem, Reason and ADE are left out (the schema
  negates findings, not drugs).
- ``#`` notes whose text starts with ``clinie `` carry the entity's codes and ingredient as JSON (what
  ``write_brat_folder`` writes); other notes, ``*`` equivalences and ``N`` normalisations are ignored.

Entities are numbered ``T1..Tn``: the entities kept by their label in ``.ann`` order, then the ``linked_entities``
in the order of the first relation that links them. The same label on the same span twice (two source types
mapped to one label, or two discontinuous spans sharing a fragment) is one entity with the flags of both, and a
relation is written once. Any other line is E104 with the file and line number.

Writing (``write_brat_folder``) is the reverse: ``T<k>`` for the k-th entity, relations as ``R`` lines, flags as
attributes, codes and ingredient as ``#`` notes, so interchange -> brat -> interchange is exact for documents
whose entity ids are ``T1..Tn`` in order (every shipped corpus). Scores are not written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clinie.convert.labelmap import ANY_DRUG_RELATION, LabelMap
from clinie.document import Document, Entity, Relation
from clinie.errors import ErrorCode, InvalidInputError
from clinie.schema import ATTRIBUTE_LABELS, ENTITY_LABELS, NEGATABLE_LABELS, relation_label

_SPANS = re.compile(r"^\d+ \d+(;\d+ \d+)*$")
NOTE_PREFIX = "clinie "
# clinie labels that carry no assertion flags (label schema: only Problem, Reason and ADE are negatable)
NOT_ASSERTABLE = frozenset(ENTITY_LABELS) - frozenset(NEGATABLE_LABELS)


@dataclass
class BratEntity:
    id: str
    type: str
    spans: list[tuple[int, int]]
    line: int


@dataclass
class BratRelation:
    id: str
    type: str
    arg1: str
    arg2: str
    line: int


@dataclass
class BratAttribute:
    name: str
    target: str
    value: str | None


@dataclass
class BratAnnotation:
    """The parsed ``.ann`` of one note (ids as written; events resolved to their trigger)."""

    entities: list[BratEntity] = field(default_factory=list)
    triggers: dict[str, str] = field(default_factory=dict)  # event id -> trigger entity id
    relations: list[BratRelation] = field(default_factory=list)
    attributes: list[BratAttribute] = field(default_factory=list)
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # entity id -> clinie note fields


def _bad(where: str, lineno: int, what: str) -> InvalidInputError:
    return InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}:{lineno}: {what}")


def parse_ann(ann: str, text: str, where: str = "<ann>") -> BratAnnotation:
    """Parse the standoff of ``text``; ``where`` names the file in errors (which never quote the note)."""
    out = BratAnnotation()
    event_lines: dict[str, int] = {}
    for lineno, raw in enumerate(ann.removeprefix("\ufeff").split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        kind = line[0]
        cols = line.split("\t")
        if kind == "T":
            if len(cols) < 3 or " " not in cols[1]:
                raise _bad(where, lineno, "expected 'T<n><TAB><type> <start> <end>[;<start> <end>]...<TAB><text>'")
            etype, _, offsets = cols[1].partition(" ")
            if not _SPANS.match(offsets):
                raise _bad(where, lineno, f"{cols[0]}: offsets are not '<start> <end>[;<start> <end>]...'")
            spans = [(int(a), int(b)) for a, b in (frag.split(" ") for frag in offsets.split(";"))]
            for start, end in spans:
                if not 0 <= start < end <= len(text):
                    raise InvalidInputError(ErrorCode.OFFSET_MISMATCH, f"{where}:{lineno}: {cols[0]} offsets "
                                            f"{start}..{end} are outside the note (0..{len(text)})")
            written = "\t".join(cols[2:])
            if " ".join(text[s:e] for s, e in spans).split() != written.split():  # whitespace-insensitive
                raise InvalidInputError(ErrorCode.OFFSET_MISMATCH, f"{where}:{lineno}: {cols[0]} text does not "
                                        f"match the note at {offsets} (is the .txt the one that was annotated?)")
            out.entities.append(BratEntity(cols[0], etype, spans, lineno))
        elif kind == "E":
            args = cols[1].split() if len(cols) > 1 else []
            if not args or ":" not in args[0]:
                raise _bad(where, lineno, "expected 'E<n><TAB><type>:<trigger id>[ <role>:<id>]...'")
            out.triggers[cols[0]] = args[0].split(":", 1)[1]
            event_lines[cols[0]] = lineno
        elif kind == "R":
            parts = cols[1].split() if len(cols) > 1 else []
            if len(parts) != 3 or not parts[1].startswith("Arg1:") or not parts[2].startswith("Arg2:"):
                raise _bad(where, lineno, "expected 'R<n><TAB><type> Arg1:<id> Arg2:<id>'")
            out.relations.append(BratRelation(cols[0], parts[0], parts[1][5:], parts[2][5:], lineno))
        elif kind in "AM":
            parts = cols[1].split() if len(cols) > 1 else []
            if len(parts) not in (2, 3):
                raise _bad(where, lineno, "expected 'A<n><TAB><name> <id>[ <value>]'")
            out.attributes.append(BratAttribute(parts[0], parts[1], parts[2] if len(parts) == 3 else None))
        elif kind == "#":
            parts = cols[1].split() if len(cols) > 1 else []
            if len(parts) != 2:
                raise _bad(where, lineno, "expected '#<n><TAB>AnnotatorNotes <id><TAB><note>'")
            note = "\t".join(cols[2:])
            if note.startswith(NOTE_PREFIX):
                try:
                    fields = json.loads(note[len(NOTE_PREFIX):])
                except json.JSONDecodeError:
                    raise _bad(where, lineno, "a 'clinie' note must be followed by a JSON object") from None
                if not isinstance(fields, dict):
                    raise _bad(where, lineno, "a 'clinie' note must be followed by a JSON object")
                out.notes[parts[1]] = fields
        elif kind in "*N":
            continue
        else:
            raise _bad(where, lineno, "not a brat standoff line (T, E, R, A, M, N, # or *)")
    known = {e.id for e in out.entities}
    for event, trigger in out.triggers.items():
        if trigger not in known:
            raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}:{event_lines[event]}: event {event} has no "
                                    f"trigger {trigger}")
    return out


def brat_to_document(doc_id: str, text: str, ann: BratAnnotation, label_map: LabelMap,
                     where: str = "<ann>") -> Document:
    """Apply the label map to one parsed note (see the module docstring for the rules)."""

    def resolve(ref: str) -> str:
        return ann.triggers.get(ref, ref)

    # entity id -> list of (label, start, end) pieces, split or joined
    pieces: dict[str, list[tuple[str, int, int]]] = {}
    linked_only: set[str] = set()
    order: list[str] = []
    for ent in ann.entities:
        label, linked = label_map.entity_label(ent.type)
        if label is None:
            continue
        if label_map.discontinuous == "join" or ann.notes.get(ent.id, {}).get("join"):
            spans = [(ent.spans[0][0], max(e for _, e in ent.spans))]
        else:
            spans = ent.spans
        pieces[ent.id] = [(label, s, e) for s, e in spans]
        if linked:
            linked_only.add(ent.id)
        else:
            order.append(ent.id)

    known = {e.id for e in ann.entities}
    rels: list[tuple[str, str, str]] = []  # (label, head source id, tail source id)
    for rel in ann.relations:
        head, tail = resolve(rel.arg1), resolve(rel.arg2)
        for ref in (head, tail):
            if ref not in known:
                raise InvalidInputError(ErrorCode.BAD_ANNOTATION, f"{where}:{rel.line}: {rel.id} points to "
                                        f"{ref}, which is not an entity or event")
        label = label_map.relation_label(rel.type)
        if label is None or head not in pieces or tail not in pieces:
            continue
        if label == ANY_DRUG_RELATION:
            head_label, tail_label = pieces[head][0][0], pieces[tail][0][0]
            if tail_label != "Drug" and head_label == "Drug":
                head, tail = tail, head
                head_label, tail_label = tail_label, head_label
            if tail_label != "Drug" or head_label not in ATTRIBUTE_LABELS:
                continue
            label = relation_label(head_label)
        if head in linked_only and tail in linked_only:
            continue
        rels.append((label, head, tail))
        for ref in (head, tail):
            if ref in linked_only and ref not in order:
                order.append(ref)

    flags: dict[str, dict[str, Any]] = {}
    for att in ann.attributes:
        flag = label_map.flag(att.name, att.value)
        target = resolve(att.target)
        if flag is None or target not in pieces or pieces[target][0][0] in NOT_ASSERTABLE:
            continue
        if flag.startswith("subject="):
            flags.setdefault(target, {})["subject"] = flag.split("=", 1)[1]
        else:
            flags.setdefault(target, {})[flag] = True

    new_ids: dict[str, list[str]] = {}
    by_span: dict[tuple[str, int, int], int] = {}  # the same label and span twice is one entity (flags merged)
    entities: list[Entity] = []
    for src in order:
        for label, start, end in pieces[src]:
            note = ann.notes.get(src, {})
            made = Entity(
                id=f"T{len(entities) + 1}", label=label, start=start, end=end, **flags.get(src, {}),
                codes=tuple(str(c) for c in note.get("codes", ())),
                ingredient=str(note["ingredient"]) if note.get("ingredient") is not None else None,
            )
            seen = by_span.get((label, start, end))
            if seen is None:
                by_span[(label, start, end)] = len(entities)
                entities.append(made)
            else:
                first = entities[seen]
                entities[seen] = replace(first, negated=first.negated or made.negated,
                                         uncertain=first.uncertain or made.uncertain,
                                         hypothetical=first.hypothetical or made.hypothetical,
                                         historical=first.historical or made.historical)
            new_ids.setdefault(src, []).append(entities[by_span[(label, start, end)]].id)
    relations: list[Relation] = []
    seen_rels: set[tuple[str, str, str]] = set()
    for label, head, tail in rels:
        for h in new_ids[head]:
            for t in new_ids[tail]:
                if (label, h, t) not in seen_rels:
                    seen_rels.add((label, h, t))
                    relations.append(Relation(label, h, t))
    return Document(id=doc_id, text=text, source=label_map.source, labels=label_map.labels,
                    entities=tuple(entities), relations=tuple(relations))


def read_text(path: Path) -> str:
    """A note exactly as stored (no newline translation: brat offsets count every character)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise InvalidInputError(ErrorCode.BAD_ENCODING, f"{path}: not UTF-8 (byte {exc.start})") from None


def brat_pairs(folder: Path) -> Iterator[tuple[str, Path, Path]]:
    """(document id, .txt, .ann) for every .ann under ``folder``, sorted; the id is the path without suffix."""
    for ann_path in sorted(folder.rglob("*.ann")):
        txt_path = ann_path.with_suffix(".txt")
        if not txt_path.is_file():
            raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{ann_path}: no {txt_path.name} beside it")
        yield ann_path.relative_to(folder).with_suffix("").as_posix(), txt_path, ann_path


def read_brat_folder(folder: str | Path, label_map: LabelMap | None = None) -> Iterator[Document]:
    """Convert every ``.txt`` + ``.ann`` pair under ``folder`` (recursively, sorted by path)."""
    lmap = label_map or LabelMap()
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError(ErrorCode.INPUT_NOT_FOUND, f"{root}: not a folder")
    for doc_id, txt_path, ann_path in brat_pairs(root):
        text = read_text(txt_path)
        ann = parse_ann(read_text(ann_path), text, str(ann_path))
        yield brat_to_document(doc_id, text, ann, lmap, str(ann_path))


_FLAG_ATTRIBUTES = (("negated", "Negated"), ("uncertain", "Uncertain"), ("hypothetical", "Hypothetical"),
                    ("historical", "Historical"))


def document_to_ann(doc: Document) -> str:
    """The ``.ann`` of one document (entity k is ``T<k>``)."""
    ids = {e.id: f"T{k}" for k, e in enumerate(doc.entities, 1)}
    lines: list[str] = []
    atts: list[str] = []
    notes: list[str] = []
    for e in doc.entities:
        span_text = doc.text[e.start:e.end]
        if "\n" in span_text or "\r" in span_text:  # brat keeps one annotation per line: split at line breaks
            frags = [(m.start() + e.start, m.end() + e.start) for m in re.finditer(r"[^\r\n]+", span_text)]
            offsets = ";".join(f"{s} {t}" for s, t in frags)
            written = " ".join(doc.text[s:t] for s, t in frags)
        else:
            offsets, written, frags = f"{e.start} {e.end}", span_text, [(e.start, e.end)]
        lines.append(f"{ids[e.id]}\t{e.label} {offsets}\t{written}")
        for flag, name in _FLAG_ATTRIBUTES:
            if getattr(e, flag):
                atts.append(f"{name} {ids[e.id]}")
        if e.subject != "patient":
            atts.append(f"Subject {ids[e.id]} {e.subject}")
        extra: dict[str, Any] = {}
        if len(frags) > 1:  # one entity across a line break: read back as one span
            extra["join"] = True
        if e.codes:
            extra["codes"] = list(e.codes)
        if e.ingredient is not None:
            extra["ingredient"] = e.ingredient
        if extra:
            notes.append(f"AnnotatorNotes {ids[e.id]}\t{NOTE_PREFIX}{json.dumps(extra, ensure_ascii=False)}")
    lines += [f"R{k}\t{r.label} Arg1:{ids[r.head]} Arg2:{ids[r.tail]}" for k, r in enumerate(doc.relations, 1)]
    lines += [f"A{k}\t{a}" for k, a in enumerate(atts, 1)]
    lines += [f"#{k}\t{n}" for k, n in enumerate(notes, 1)]
    return "\n".join(lines) + ("\n" if lines else "")


def write_brat_folder(folder: str | Path, docs: Iterable[Document]) -> int:
    """Write ``<id>.txt`` and ``<id>.ann`` for every document; returns the number written."""
    root = Path(folder)
    n = 0
    for doc in docs:
        if not doc.id or doc.id.startswith(("/", "..")) or "/../" in doc.id:
            raise InvalidInputError(ErrorCode.BAD_INTERCHANGE, f"document id {doc.id!r} is not a safe file name")
        base = root / doc.id
        base.parent.mkdir(parents=True, exist_ok=True)
        with open(base.with_name(base.name + ".txt"), "w", encoding="utf-8", newline="") as fh:
            fh.write(doc.text)
        with open(base.with_name(base.name + ".ann"), "w", encoding="utf-8", newline="") as fh:
            fh.write(document_to_ann(doc))
        n += 1
    return n
