"""The *brief* annotation format: line-anchored, hand-writable annotations compiled to exact character offsets.

Annotators (people or LLM assistants) write one entity per line, anchored to a line of the note instead of to a
character offset, and relations by entity handle::

    # note: <note id>
    e1 | L5   | Problem | coronary artery disease |
    e2 | L12  | Drug    | Toprol                  | ing=metoprolol
    e3 | L12  | Dosage  | 25 mg                   |
    e4 | L14#2| Problem | chest pain              | neg
    R  | Dosage-Drug | e3 | e2

``L<k>`` is the 1-based line of the note; ``#<m>`` picks the m-th occurrence of the text in that line (default 1).
Flags (comma-separated): ``neg``, ``unc``, ``hyp``, ``hist`` (assertions), ``fam``/``other`` (subject),
``ing=<ingredient>`` (Drug). :func:`compile_brief` resolves every anchor to offsets, checks the annotation against
the label schema and ``annotation-guidelines.md`` (span edges, argument types) and returns an interchange record;
every problem is reported with its brief line number, nothing is guessed.

``python -m clinie.convert.brief show NOTES.jsonl NOTE_ID`` prints a note with line numbers;
``python -m clinie.convert.brief check NOTES.jsonl FILE.brief`` compiles one file and prints the note with the
annotated spans bracketed (or the errors); ``compile NOTES.jsonl DIR OUT.jsonl`` compiles a folder of them.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinie.schema import DEFAULT_SCHEMA, relation_label

FLAG_NAMES = {"neg": "negated", "unc": "uncertain", "hyp": "hypothetical", "hist": "historical"}
SUBJECT_FLAGS = {"fam": "family", "other": "other"}
_ANCHOR = re.compile(r"^L(\d+)(?:#(\d+))?$")
_EDGE = " \t\n.,;:!?"


@dataclass
class BriefResult:
    record: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)


def line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _inside_word(text: str, start: int, end: int) -> bool:
    """True when the span begins or ends in the middle of an alphanumeric word ("ace" in "pace")."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return (before.isalnum() and text[start].isalnum()) or (after.isalnum() and text[end - 1].isalnum())


def compile_brief(note_id: str, text: str, brief: str, source: str = "aci-bench") -> BriefResult:
    """Resolve a brief annotation of ``text`` into an interchange record (ids T1.. in order of start)."""
    starts = line_starts(text)
    lines = text.split("\n")
    errors: list[str] = []
    ents: dict[str, dict[str, Any]] = {}
    rels: list[tuple[int, str, str, str]] = []
    for n, raw in enumerate(brief.splitlines(), 1):
        row = raw.strip()
        if not row or row.startswith("#"):
            continue
        cols = [c.strip() for c in row.split("|")]
        if cols[0] == "R":
            if len(cols) != 4:
                errors.append(f"brief line {n}: a relation is 'R | Label-Drug | head | tail'")
                continue
            rels.append((n, cols[1], cols[2], cols[3]))
            continue
        if len(cols) < 4:
            errors.append(f"brief line {n}: an entity is 'eN | L<line>[#occ] | Label | text | flags'")
            continue
        handle, anchor, label, span = cols[:4]
        flags = [f.strip() for f in cols[4].split(",") if f.strip()] if len(cols) > 4 else []
        m = _ANCHOR.match(anchor)
        if not m:
            errors.append(f"brief line {n}: bad anchor {anchor!r}")
            continue
        line_no, occ = int(m.group(1)), int(m.group(2) or 1)
        if label not in DEFAULT_SCHEMA.entity_labels:
            errors.append(f"brief line {n}: unknown label {label!r}")
            continue
        if handle in ents:
            errors.append(f"brief line {n}: handle {handle} used twice")
            continue
        if not span or span[0] in _EDGE or span[-1] in _EDGE:
            errors.append(f"brief line {n}: span {span!r} is empty or starts/ends with space or punctuation")
            continue
        if not 1 <= line_no <= len(lines):
            errors.append(f"brief line {n}: the note has no line {line_no}")
            continue
        line = lines[line_no - 1]
        pos = -1
        for _ in range(occ):
            pos = line.find(span, pos + 1)
            if pos < 0:
                break
        if pos < 0:
            errors.append(f"brief line {n}: {span!r} (occurrence {occ}) not in line {line_no}: {line[:120]!r}")
            continue
        start = starts[line_no - 1] + pos
        if _inside_word(text, start, start + len(span)):
            errors.append(f"brief line {n}: {span!r} in line {line_no} is part of a longer word "
                          f"(occurrence {occ}); pick the right occurrence with #m")
            continue
        ent: dict[str, Any] = {"label": label, "start": start, "end": start + len(span), "text": span,
                               "negated": False}
        for f in flags:
            if f in FLAG_NAMES:
                if label not in DEFAULT_SCHEMA.negatable_labels:
                    errors.append(f"brief line {n}: flag {f} only applies to Problem, Reason, ADE")
                ent[FLAG_NAMES[f]] = True
            elif f in SUBJECT_FLAGS:
                ent["subject"] = SUBJECT_FLAGS[f]
            elif f.startswith("ing="):
                if label != "Drug":
                    errors.append(f"brief line {n}: ing= only applies to Drug")
                ent["ingredient"] = f[4:].strip().lower()
            else:
                errors.append(f"brief line {n}: unknown flag {f!r}")
        ents[handle] = ent
    seen: dict[tuple[int, int, str], str] = {}
    for h, e in ents.items():
        key = (e["start"], e["end"], e["label"])
        if key in seen:
            errors.append(f"{h} and {seen[key]} are the same span and label ({e['text']!r})")
        seen[key] = h
    reach: tuple[str, dict[str, Any]] | None = None  # the span seen so far that ends last
    for h, e in sorted(ents.items(), key=lambda kv: (kv[1]["start"], kv[1]["end"])):
        if reach is not None and e["start"] < reach[1]["end"] \
                and (e["start"], e["end"]) != (reach[1]["start"], reach[1]["end"]):
            errors.append(f"{reach[0]} {reach[1]['text']!r} and {h} {e['text']!r} overlap; "
                          "spans must not nest or overlap")
        if reach is None or e["end"] > reach[1]["end"]:
            reach = (h, e)
    relations: list[tuple[str, str, str]] = []
    for n, label, head, tail in rels:
        if head not in ents or tail not in ents:
            errors.append(f"brief line {n}: relation names an unknown handle")
            continue
        if ents[tail]["label"] != "Drug" or label != relation_label(ents[head]["label"]) \
                or ents[head]["label"] not in DEFAULT_SCHEMA.attribute_labels:
            errors.append(f"brief line {n}: {label} cannot link {ents[head]['label']} -> {ents[tail]['label']}")
            continue
        if (label, head, tail) in relations:
            errors.append(f"brief line {n}: duplicate relation")
            continue
        relations.append((label, head, tail))
    if errors:
        return BriefResult(None, errors)
    order = sorted(ents, key=lambda h: (ents[h]["start"], ents[h]["end"], ents[h]["label"]))
    ids = {h: f"T{i}" for i, h in enumerate(order, 1)}
    entities = [{"id": ids[h], **ents[h]} for h in order]
    record = {"id": note_id, "source": source, "text": text, "labels": list(DEFAULT_SCHEMA.entity_labels),
              "entities": entities,
              "relations": [{"label": lab, "head": ids[h], "tail": ids[t]} for lab, h, t in relations]}
    return BriefResult(record)


def render(record: dict[str, Any]) -> str:
    """The note with every entity bracketed as ``[Label text]{flags}`` (for review)."""
    text = record["text"]
    marks: list[tuple[int, int, str]] = []
    for e in record["entities"]:
        fl = [k for k in ("negated", "uncertain", "hypothetical", "historical") if e.get(k)]
        extra = ("{" + ",".join(fl) + "}") if fl else ""
        marks.append((e["start"], 0, f"[{e['label']} "))
        marks.append((e["end"], 1, f"]{extra}"))
    out = []
    pos = 0
    for off, _, tag in sorted(marks, key=lambda m: (m[0], -m[1])):
        out.append(text[pos:off])
        out.append(tag)
        pos = off
    out.append(text[pos:])
    return "".join(out)


def _notes(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as fh:
        return {str(d["id"]): d["text"] for d in map(json.loads, fh) if d}


def _note_id(brief: str) -> str:
    for line in brief.splitlines():
        if line.startswith("# note:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit("the brief file lacks a '# note: <id>' line")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in {"show", "check", "compile"}:
        print(__doc__)
        return 2
    notes = _notes(argv[1])
    if argv[0] == "show":
        for i, line in enumerate(notes[argv[2]].split("\n"), 1):
            print(f"L{i}: {line}")
        return 0
    if argv[0] == "check":
        brief = Path(argv[2]).read_text(encoding="utf-8")
        nid = _note_id(brief)
        res = compile_brief(nid, notes[nid], brief)
        if res.errors:
            print("\n".join(res.errors))
            return 1
        assert res.record is not None
        print(render(res.record))
        print(f"\nOK: {len(res.record['entities'])} entities, {len(res.record['relations'])} relations")
        return 0
    records, failed = [], 0
    for f in sorted(Path(argv[2]).glob("*.brief")):
        brief = f.read_text(encoding="utf-8")
        nid = _note_id(brief)
        res = compile_brief(nid, notes[nid], brief)
        if res.errors:
            failed += 1
            print(f"{f.name}: " + "; ".join(res.errors), file=sys.stderr)
        elif res.record is not None:
            records.append(res.record)
    with open(argv[3], "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"compiled {len(records)} notes, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
