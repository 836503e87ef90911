"""Inline entity markup for the LLM paths: ``[Drug|e3 metoprolol]``.

``render`` writes a document (or a part of it) with every entity marked by its label and handle; ``parse`` reads an
LLM answer back into pieces (clinie.augment.pieces), so offsets are recomputed from the markers, never re-found in
the text; ``check_rewrite`` accepts an answer only if every entity and relation survives, naming the reasons when not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from clinie.augment.pieces import Piece, assemble, joined, merge_plain
from clinie.augment.validate import validate_document
from clinie.schema import ATTRIBUTE_LABELS, ENTITY_LABELS

# stable rejection reasons, in the order they are checked
REASONS = (
    "llm_error",  # the request failed (after retries)
    "empty_answer",
    "malformed_markup",  # a marker that does not parse ([Drug|e3 ..., unbalanced brackets)
    "invented_entity",  # a marker with a handle the source does not have (or no handle)
    "duplicated_entity",  # the same handle marked twice
    "changed_label",
    "changed_entity_text",
    "lost_entity",
    "shifted_offsets",  # a span that no longer sits on word boundaries, or JSON offsets that miss their text
    "invented_relation",
    "lost_relation",
    "split_relation",  # an attribute and its drug, on one line in the source, now on different lines
    "extra_text",  # more non-empty lines than the source (chatter after the rewrite, a repeated paragraph)
    "no_change",
    "validator",
)

_MARK = re.compile(r"\[([A-Za-z][A-Za-z_-]*(?:\+[a-z]+)*)(?:\|(e\d+))? ([^\[\]\n]+?)\]")
ASSERTION_FLAGS = ("negated", "uncertain", "hypothetical", "historical")
_MARK_OPEN = re.compile(r"\[(?:" + "|".join(ENTITY_LABELS) + r")\b[|\s]|\|e\d+[\s\]]")
_REL_HEADER = re.compile(r"^\s*#*\s*RELATIONS\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_REL_LINE = re.compile(r"^\s*[-•*]?\s*(e\d+)\s*(?:->|→|—>|=>)\s*(e\d+)\s*$")
_PREAMBLE = re.compile(r"^\s*(?:sure|here|okay|ok|certainly|of course)\b[^\n]*:[ \t]*\n", re.IGNORECASE)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\n(.*?)\n```\s*$", re.DOTALL)


def handle_name(index: int) -> str:
    return f"e{index + 1}"


def render(pieces: list[Piece]) -> str:
    """``pieces`` with every entity marked ``[Label|eN text]`` (N = source index + 1, so T3 is e3)."""
    out = []
    for p in pieces:
        if p.is_entity:
            name = handle_name(p.handle) if p.handle is not None else "e?"
            out.append(f"[{p.label}|{name} {p.text}]")
        else:
            out.append(p.text)
    return "".join(out)


def can_render(pieces: list[Piece]) -> bool:
    """False where the note's own text would be read as markup (brackets in an entity, a marker-like string)."""
    for p in pieces:
        if p.is_entity and re.search(r"[\[\]\n]", p.text):
            return False
        if not p.is_entity and (_MARK.search(p.text) or _MARK_OPEN.search(p.text)):
            return False
    return True


def render_relations(relations: list[tuple[int, int]]) -> str:
    """The RELATIONS block: one ``eHEAD -> eTAIL`` line per relation (head: the attribute, tail: the drug)."""
    if not relations:
        return ""
    return "RELATIONS:\n" + "\n".join(f"{handle_name(h)} -> {handle_name(t)}" for h, t in relations)


@dataclass
class Parsed:
    pieces: list[Piece] = field(default_factory=list)
    relations: list[tuple[str, str]] | None = None  # (head handle, tail handle) when the answer has a block
    errors: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)


def clean_answer(answer: str) -> str:
    """Strip a code fence and a chatty first line ("Here is the rewritten note:")."""
    m = _FENCE.match(answer)
    if m:
        answer = m.group(1)
    answer = _PREAMBLE.sub("", answer, count=1)
    return answer.strip("\n")


def parse(answer: str) -> Parsed:
    """Pieces of an inline-marked answer (or of a JSON answer ``{"text", "entities": [{handle,label,start,end}]}``)."""
    answer = clean_answer(answer)
    stripped = answer.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            return _parse_json(data)
    out = Parsed()
    body = answer
    blocks = list(_REL_HEADER.finditer(answer))
    if blocks:
        body = answer[: blocks[-1].start()].rstrip("\n")
        rels: list[tuple[str, str]] = []
        for line in answer[blocks[-1].end() :].splitlines():
            if not line.strip():
                continue
            m = _REL_LINE.match(line)
            if m:
                rels.append((m.group(1), m.group(2)))
            else:
                out.errors.append(("malformed_markup", "unreadable relation line"))
        out.relations = rels
    pos = 0
    for m in _MARK.finditer(body):
        plain = body[pos : m.start()]
        if _MARK_OPEN.search(plain):
            out.errors.append(("malformed_markup", "marker without its closing bracket"))
        if plain:
            out.pieces.append(Piece(plain))
        label, *flags = m.group(1).split("+")
        handle, text = m.group(2), m.group(3)
        attrs: dict[str, Any] = {f: True for f in flags if f in ASSERTION_FLAGS}
        if set(flags) - set(ASSERTION_FLAGS):
            out.errors.append(("malformed_markup", "unknown assertion flag"))
        out.pieces.append(Piece(text, _handle_index(handle), label, attrs))
        pos = m.end()
    tail = body[pos:]
    if _MARK_OPEN.search(tail):
        out.errors.append(("malformed_markup", "marker without its closing bracket"))
    if tail:
        out.pieces.append(Piece(tail))
    return out


def _handle_index(handle: str | None) -> int | None:
    return int(handle[1:]) - 1 if handle else None


def _parse_json(data: dict[str, Any]) -> Parsed:
    out = Parsed()
    text: str = data["text"]
    spans = []
    for e in data.get("entities", []):
        try:
            start, end = int(e["start"]), int(e["end"])
            spans.append((start, end, str(e.get("label")), str(e.get("handle") or e.get("id") or ""), e.get("text")))
        except (KeyError, TypeError, ValueError):
            out.errors.append(("malformed_markup", "entity without offsets"))
    spans.sort()
    pos = 0
    for start, end, label, handle, etext in spans:
        if not (pos <= start < end <= len(text)):
            out.errors.append(("shifted_offsets", f"{handle}: offsets {start}..{end} out of range or overlapping"))
            continue
        if etext is not None and text[start:end] != etext:
            out.errors.append(("shifted_offsets", f"{handle}: offsets do not point at its text"))
        if start > pos:
            out.pieces.append(Piece(text[pos:start]))
        out.pieces.append(Piece(text[start:end], _handle_index(handle) if re.fullmatch(r"e\d+", handle) else None,
                                label))
        pos = end
    if pos < len(text):
        out.pieces.append(Piece(text[pos:]))
    rels = data.get("relations")
    if isinstance(rels, list):
        out.relations = [(str(r.get("head")), str(r.get("tail"))) for r in rels if isinstance(r, dict)]
    return out


@dataclass
class Rejections:
    """The reasons an LLM answer is rejected, each counted once, with one detail line per occurrence."""

    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def fail(self, reason: str, detail: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.details.append(f"{reason}: {detail}")


@dataclass
class Verdict:
    accepted: bool
    reasons: list[str]
    details: list[str]
    pieces: list[Piece] | None = None


def _source_relations(doc: dict[str, Any], handles: set[int]) -> set[tuple[int, int]]:
    index = {e["id"]: i for i, e in enumerate(doc.get("entities", []))}
    out = set()
    for r in doc.get("relations", []):
        h, t = index.get(r["head"]), index.get(r["tail"])
        if h in handles and t in handles and h is not None and t is not None:
            out.add((h, t))
    return out


def check_rewrite(
    doc: dict[str, Any],
    source: list[Piece],
    answer: str,
    *,
    allow_entity_changes: bool = False,
) -> Verdict:
    """Accept the LLM's rewrite of ``source`` (pieces of ``doc``, possibly one part of it) only if every entity
    survives with its label (and its text, unless type-consistent changes are allowed), no entity or relation is
    invented or lost, spans sit on word boundaries and the text changed; the validator runs on the whole document."""
    rejections = Rejections()
    reasons, details, fail = rejections.reasons, rejections.details, rejections.fail

    if not answer.strip():
        fail("empty_answer", "")
        return Verdict(False, reasons, details)
    parsed = parse(answer)
    for reason, detail in parsed.errors:
        fail(reason, detail)
    src = {p.handle: p for p in source if p.is_entity and p.handle is not None}
    seen: set[int] = set()
    for p in parsed.pieces:
        if not p.is_entity:
            continue
        if p.handle is None or p.handle not in src:
            fail("invented_entity", f"{p.label} marker with unknown handle")
            continue
        if p.handle in seen:
            fail("duplicated_entity", handle_name(p.handle))
        seen.add(p.handle)
        want = src[p.handle]
        if p.label != want.label:
            fail("changed_label", f"{handle_name(p.handle)}: {want.label} -> {p.label}")
        elif p.text != want.text and (not allow_entity_changes or p.text != p.text.strip() or not p.text.strip()):
            fail("changed_entity_text", handle_name(p.handle))
    lost = sorted(set(src) - seen)
    if lost:
        fail("lost_entity", ", ".join(handle_name(h) for h in lost))
    # spans on word boundaries
    text = joined(parsed.pieces)
    pos = 0
    for p in parsed.pieces:
        end = pos + len(p.text)
        if p.is_entity and p.handle in src:
            before = text[pos - 1] if pos > 0 else " "
            after = text[end] if end < len(text) else " "
            if (before.isalnum() and p.text[:1].isalnum()) or (after.isalnum() and p.text[-1:].isalnum()):
                fail("shifted_offsets", f"{handle_name(p.handle)}: span cuts a word")
        pos = end
    # relations
    source_rels = _source_relations(doc, set(src))
    if parsed.relations is not None:
        got = set()
        for h, t in parsed.relations:
            hi, ti = _handle_index(h), _handle_index(t)
            if hi is None or ti is None or (hi, ti) not in source_rels:
                fail("invented_relation", f"{h} -> {t}")
            else:
                got.add((hi, ti))
        missing = source_rels - got
        if missing:
            fail("lost_relation", ", ".join(f"{handle_name(a)} -> {handle_name(d)}" for a, d in sorted(missing)))
    if not reasons:
        line_of = _line_numbers(parsed.pieces)
        src_line = _line_numbers(source)
        for a, d in sorted(source_rels):
            if src_line[a] == src_line[d] and line_of.get(a) != line_of.get(d):
                fail("split_relation", f"{handle_name(a)} -> {handle_name(d)}")
    n_src = sum(1 for line in joined(source).split("\n") if line.strip())
    n_new = sum(1 for line in joined(parsed.pieces).split("\n") if line.strip())
    if n_new > n_src:
        fail("extra_text", f"{n_new} lines for {n_src}")
    if not reasons and joined(parsed.pieces) == joined(source):
        fail("no_change", "")
    return Verdict(not reasons, reasons, details, None if reasons else merge_plain(parsed.pieces))


def _line_numbers(pieces: list[Piece]) -> dict[int, int]:
    out: dict[int, int] = {}
    line = 0
    for p in pieces:
        if p.is_entity and p.handle is not None:
            out[p.handle] = line
        line += p.text.count("\n")
    return out


def _trim_plain(pieces: list[Piece], lead: int, trail: int) -> list[Piece]:
    """Drop ``lead`` leading and ``trail`` trailing whitespace characters (always in plain pieces)."""
    out = list(pieces)
    if lead and out and not out[0].is_entity:
        out[0] = Piece(out[0].text[lead:])
    if trail and out and not out[-1].is_entity:
        out[-1] = Piece(out[-1].text[: len(out[-1].text) - trail])
    return out


# ---------------------------------------------------------------- annotation (the JMIR path)


def parse_annotation(text: str, answer: str) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """An interchange document from an LLM annotation of ``text`` (inline markers, handles optional, and an optional
    RELATIONS block ``eH -> eT``): rejected (None, reasons, details) unless the answer's text is exactly ``text``,
    markers parse, relations join an attribute to a Drug, and the validator passes."""
    rejections = Rejections()
    reasons, details, fail = rejections.reasons, rejections.details, rejections.fail

    if not answer.strip():
        return None, ["empty_answer"], []
    parsed = parse(answer)
    for reason, detail in parsed.errors:
        fail(reason, detail)
    pieces = merge_plain(parsed.pieces)
    body = joined(pieces)
    if body.strip() != text.strip():
        fail("changed_text", "the annotated text differs from the note")
    else:  # the answer was stripped: give the note its own leading and trailing whitespace back
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
        body_lead = len(body) - len(body.lstrip())
        body_trail = len(body) - len(body.rstrip())
        if body_lead or body_trail:
            pieces = _trim_plain(pieces, body_lead, body_trail)
        pieces = merge_plain([Piece(lead), *pieces, Piece(trail)])
    names: dict[str, int] = {}
    for n, p in enumerate(pieces):
        if not p.is_entity:
            continue
        if p.label not in ENTITY_LABELS:
            fail("changed_label", f"unknown label {p.label}")
        if p.handle is not None:
            names[handle_name(p.handle)] = n
        p.handle = None  # new entities: attributes come from the markup only
    rels: list[tuple[int, int]] = []
    for h, t in parsed.relations or []:
        hn, tn = names.get(h), names.get(t)
        if hn is None or tn is None:
            fail("invented_relation", f"{h} -> {t}: no such entity")
            continue
        if pieces[hn].label not in ATTRIBUTE_LABELS or pieces[tn].label != "Drug":
            fail("invented_relation", f"{h} -> {t}: {pieces[hn].label} -> {pieces[tn].label}")
            continue
        if (hn, tn) not in rels:
            rels.append((hn, tn))
    if reasons:
        return None, reasons, details
    doc = {"id": "", "text": text, "labels": list(ENTITY_LABELS), "entities": [], "relations": []}
    out = assemble(doc, pieces, relations=rels)
    errors = validate_document(out)
    if errors:
        return None, ["validator"], [f"validator: {e}" for e in errors[:5]]
    return out, [], []
