"""Offline, entity-preserving augmenters (no LLM): type-consistent substitution, sig-style rewriting,
abbreviation/casing variants, list-item and sentence reordering.

Each augmenter edits the pieces of a document (clinie.augment.pieces): an entity keeps its handle, label, flags
and relations while its text may change within its type, and whole list items or sentences move with their
entities; ``assemble`` then recomputes offsets exactly. Deterministic by seed (``random.Random`` seeded by a
string, independent of PYTHONHASHSEED).
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from clinie.augment.pieces import Piece, assemble, joined, merge_plain, split_plain_at, to_pieces
from clinie.augment.validate import validate_document
from clinie.augment.vocab import DATA_DIR
from clinie.fhir.systems import ICD10CM

Augmenter = Callable[[list[Piece], dict[str, Any], random.Random], tuple[list[Piece], int]]


# ---------------------------------------------------------------- tables

# symptoms and exam findings are bound to their organ system in the text ("Respiratory: denies ..."), so only
# diagnoses are substituted
SUBSTITUTABLE_KINDS = ("chronic",)


@dataclass(frozen=True)
class AbbrevRow:
    forms: tuple[str, ...]  # short form first
    labels: frozenset[str]


@lru_cache(maxsize=1)
def abbreviation_table() -> dict[str, list[AbbrevRow]]:
    """lower-case form -> rows it belongs to (data/abbreviations.tsv)."""
    with open(DATA_DIR / "abbreviations.tsv", encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip() and not line.startswith("#")]
    index: dict[str, list[AbbrevRow]] = {}
    for row in csv.reader(lines, delimiter="\t"):
        short, longs, labels = (cell.strip() for cell in row[:3])
        forms = (short, *(x.strip() for x in longs.split("|") if x.strip()))
        entry = AbbrevRow(forms, frozenset(x.strip() for x in labels.split("|")))
        for f in forms:
            index.setdefault(f.lower(), []).append(entry)
    return index


@lru_cache(maxsize=1)
def sig_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / "sig_variants.json").read_text(encoding="utf-8"))
    groups: dict[str, dict[str, list[list[str]]]] = {}
    for label in ("Frequency", "Route", "Duration"):
        index: dict[str, list[list[str]]] = {}
        for group in data[label]:
            for form in group:
                index.setdefault(form.lower(), []).append(group)
        groups[label] = index
    data["index"] = groups
    return data


def _alternatives(label: str, text: str) -> list[str]:
    """Other written forms of a sig entity (same label, same meaning), empty when unknown."""
    table = sig_table()
    if label == "Dosage":
        return _dosage_variants(text, table)
    out: list[str] = []
    for group in table["index"].get(label, {}).get(text.lower(), []):
        out.extend(f for f in group if f != text and f not in out)
    return out


_DOSE = re.compile(
    r"(?P<num>\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten)(?P<sp>\s?)(?P<unit>[A-Za-z]+)"
)


def _dosage_variants(text: str, table: dict[str, Any]) -> list[str]:
    m = _DOSE.fullmatch(text)
    if not m:
        return []
    num, unit = m.group("num"), m.group("unit")
    words: dict[str, str] = table["number_words"]
    digits = {v: k for k, v in words.items()}
    nums = {num, words.get(num, num), digits.get(num, num)}
    out: list[str] = []
    for group in (*table["units"].values(), *table["dose_forms"].values()):
        if unit in group or unit.lower() in group:
            for n in sorted(nums):
                for u in group:
                    if n.isalpha() and u in ("mg", "mcg", "g", "mL", "ml", "U"):
                        continue  # "two mg" is not how clinicians write
                    for sp in (" ", "") if not n.isalpha() and len(u) <= 3 else (" ",):
                        cand = f"{n}{sp}{u}"
                        if cand != text and cand not in out:
                            out.append(cand)
    return out


@dataclass(frozen=True)
class _Lexicon:
    drugs: dict[str, Any]  # lower name -> DrugInfo
    drug_names: dict[str, tuple[str, ...]]  # generic -> written names (generic, variants, brands)
    problems: dict[str, Any]  # lower form -> ProblemInfo
    by_kind: dict[str, list[Any]]


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    from clinie.augment.vocab import load_vocab

    vocab = load_vocab()
    drugs: dict[str, Any] = {}
    names: dict[str, tuple[str, ...]] = {}
    for d in vocab.drugs:
        written = (d.generic, *d.variants, *d.brands)
        names[d.generic] = written
        for w in written:
            drugs.setdefault(w.lower(), d)
    problems: dict[str, Any] = {}
    by_kind: dict[str, list[Any]] = {}
    for p in vocab.problems.values():
        for f in (*p.curated, *p.abbrevs):
            problems.setdefault(f.lower(), p)
        if p.sex is None:
            by_kind.setdefault(p.kind, []).append(p)
    return _Lexicon(drugs, names, problems, by_kind)


def _match_case(template: str, new: str) -> str:
    """Write ``new`` in the casing style of ``template`` (acronyms and brand names keep their own case)."""
    if template.isupper() and len(template) > 3:
        return new.upper()
    if any(c.isupper() for c in new[1:]) or new.isupper():
        return new  # an acronym or a mixed-case name
    if template[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


# ---------------------------------------------------------------- augmenters


def substitute_entities(pieces: list[Piece], doc: dict[str, Any], rng: random.Random) -> tuple[list[Piece], int]:
    """Type-consistent substitution: drugs by drugs sharing an indication (ingredient and dosage strengths follow),
    problems/reasons by problems of the same kind, from the packaged vocabularies; consistent within a note."""
    lex = _lexicon()
    changes = 0
    drug_map: dict[str, Any] = {}
    problem_map: dict[str, Any] = {}
    ents = [p for p in pieces if p.is_entity]
    drug_keys = sorted({p.text.lower() for p in ents if p.label == "Drug" and p.text.lower() in lex.drugs})
    prob_keys = sorted(
        {
            p.text.lower()
            for p in ents
            if p.label in ("Problem", "Reason")
            and p.text.lower() in lex.problems
            and lex.problems[p.text.lower()].kind in SUBSTITUTABLE_KINDS
        }
    )
    taken = {p.text.lower() for p in ents}  # a replacement never collides with another mention of the note
    # a problem named as the reason for a drug is kept (its replacement would not be an indication of the drug);
    # a drug given for a known reason is replaced only by a drug with that indication
    reason_keys = {p.text.lower() for p in ents if p.label == "Reason"}
    prob_keys = [k for k in prob_keys if k not in reason_keys]
    needs: dict[str, set[str]] = {}
    by_id = {e["id"]: e for e in doc.get("entities", [])}
    for r in doc.get("relations", []):
        if r["label"] == "Reason-Drug" and r["head"] in by_id and r["tail"] in by_id:
            reason = lex.problems.get(by_id[r["head"]]["text"].lower())
            needs.setdefault(by_id[r["tail"]]["text"].lower(), set()).add(reason.code if reason else "?")
    for key in drug_keys:
        if rng.random() < 0.6:
            old = lex.drugs[key]
            peers = sorted(
                (
                    d
                    for d in set(lex.drugs.values())
                    if d.generic != old.generic
                    and set(d.indications) & set(old.indications)
                    and needs.get(key, set()) <= set(d.indications)
                    and not {w.lower() for w in lex.drug_names[d.generic]} & taken
                ),
                key=lambda d: d.generic,
            )
            if peers:
                drug_map[key] = rng.choice(peers)
                taken.update(w.lower() for w in lex.drug_names[drug_map[key].generic])
    for key in prob_keys:
        if rng.random() < 0.35:
            old = lex.problems[key]
            peers = sorted(
                (
                    p
                    for p in lex.by_kind.get(old.kind, [])
                    if p.code != old.code and not {f.lower() for f in (*p.curated, *p.abbrevs)} & taken
                ),
                key=lambda p: p.code,
            )
            if peers:
                problem_map[key] = rng.choice(peers)
                taken.update(f.lower() for f in (*problem_map[key].curated, *problem_map[key].abbrevs))
    substituted: dict[int, Any] = {}  # piece index -> new DrugInfo
    for n, p in enumerate(pieces):
        if not p.is_entity:
            continue
        key = p.text.lower()
        if p.label == "Drug" and key in drug_map:
            new = drug_map[key]
            old = lex.drugs[key]
            is_brand = p.text in old.brands
            text = new.brands[0] if is_brand and new.brands else new.generic
            if not is_brand:
                text = _match_case(p.text, text)
            pieces[n] = Piece(text, p.handle, p.label, {**p.attrs, "ingredient": new.ingredient})
            substituted[n] = new
            changes += 1
        elif p.label in ("Problem", "Reason") and key in problem_map:
            new = problem_map[key]
            old = lex.problems[key]
            use_abbrev = p.text in old.abbrevs and bool(new.abbrevs)
            text = new.abbrevs[0] if use_abbrev else _match_case(p.text, new.curated[0])
            attrs = dict(p.attrs)
            if p.handle is not None and "codes" in doc["entities"][p.handle]:
                attrs["codes"] = [f"{ICD10CM}|{new.code}"]
            pieces[n] = Piece(text, p.handle, p.label, attrs)
            changes += 1
    if substituted:
        changes += _follow_strengths(pieces, doc, substituted, rng)
    return pieces, changes


def _follow_strengths(pieces: list[Piece], doc: dict[str, Any], substituted: dict[int, Any], rng: random.Random) -> int:
    """Dosage amounts of a substituted drug take a strength of the new drug (same unit)."""
    handle_to_piece = {p.handle: n for n, p in enumerate(pieces) if p.is_entity and p.handle is not None}
    index = {e["id"]: i for i, e in enumerate(doc.get("entities", []))}
    changes = 0
    for r in doc.get("relations", []):
        if r["label"] != "Dosage-Drug":
            continue
        d_n, a_n = handle_to_piece.get(index.get(r["tail"], -1)), handle_to_piece.get(index.get(r["head"], -1))
        if d_n is None or a_n is None or d_n not in substituted:
            continue
        new = substituted[d_n]
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(\s?)(mg|mcg|g|units)", pieces[a_n].text)
        if m and m.group(3) == new.unit and new.strengths:
            a = pieces[a_n]
            amount = f"{rng.choice(list(new.strengths))}{m.group(2)}{m.group(3)}"
            pieces[a_n] = Piece(amount, a.handle, a.label, a.attrs)
            changes += 1
    return changes


def rewrite_sigs(pieces: list[Piece], doc: dict[str, Any], rng: random.Random) -> tuple[list[Piece], int]:
    """Sig-style rewriting: Dosage/Route/Frequency/Duration entities take another written form of the same meaning
    ("25 mg PO daily" -> "25mg by mouth once a day"); spans are the new forms, relations stay."""
    changes = 0
    for n, p in enumerate(pieces):
        if p.label in ("Dosage", "Route", "Frequency", "Duration") and rng.random() < 0.7:
            after = joined(pieces[n + 1 : n + 3])
            nxt = re.match(r" ?([A-Za-z]+)", after)
            if p.label in ("Frequency", "Route") and nxt and nxt.group(1).lower() not in _FOLLOW_OK:
                continue  # attributive ("daily aspirin", "IV antibiotics"): other forms would not read
            alts = _alternatives(p.label, p.text)
            if alts:
                pieces[n] = Piece(rng.choice(alts), p.handle, p.label, p.attrs)
                changes += 1
    return pieces, changes


_FOLLOW_OK = {
    "for", "with", "as", "and", "or", "to", "at", "in", "on", "x", "until", "then", "but", "if", "while", "before",
    "after", "starting", "since", "when", "by", "per", "of", "is", "was", "has", "which", "that", "she", "he", "we",
    "the", "prn", "as-needed", "every", "daily", "twice", "once", "po", "orally",
}
_CASE_LABELS = ("Drug", "Frequency", "Route")


def vary_abbreviations(pieces: list[Piece], doc: dict[str, Any], rng: random.Random) -> tuple[list[Piece], int]:
    """Abbreviation variants from the curated table (HTN <-> hypertension, HCTZ <-> hydrochlorothiazide, Tylenol
    <-> APAP) and casing variants of drug names and sig words (Lisinopril, LISINOPRIL, po, bid)."""
    table = abbreviation_table()
    changes = 0
    chosen: dict[str, str] = {}  # consistent within a note
    for n, p in enumerate(pieces):
        if not p.is_entity:
            continue
        key = p.text.lower()
        rows = [r for r in table.get(key, []) if p.label in r.labels]
        if rows and (key in chosen or rng.random() < 0.6):
            if key not in chosen:
                forms = sorted({f for r in rows for f in r.forms if f.lower() != key})
                chosen[key] = rng.choice(forms)
            new = chosen[key]
            if not new[:1].isupper() or new.islower():
                new = _match_case(p.text, new)
            pieces[n] = Piece(new, p.handle, p.label, p.attrs)
            changes += 1
        elif p.label in _CASE_LABELS and rng.random() < 0.25:
            options = [p.text.lower(), p.text.upper(), p.text[:1].upper() + p.text[1:].lower()]
            options = [o for o in dict.fromkeys(options) if o != p.text]
            if options:
                pieces[n] = Piece(rng.choice(options), p.handle, p.label, p.attrs)
                changes += 1
    return pieces, changes


_BULLET = re.compile(r"[ \t]*(?:[•\-*]|\d{1,2}[.)])[ \t]+")
_ABBREV_BEFORE_DOT = re.compile(r"\b(?:Mr|Ms|Mrs|Dr|St|vs|approx|e\.g|i\.e|No|Jr|Sr|[A-Z])\.$")
_DEPENDENT_START = re.compile(
    r"(?:She|He|It|This|That|These|Those|They|Her|His|Their|Its|However|Also|Then|Therefore|Thus|But|And|So|"
    r"Otherwise|Additionally|Furthermore|Since|After|Before|At that time|There|Now|Both|Which|Because|As)\b"
)


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def _inside_entity(pieces: list[Piece]) -> Callable[[int], bool]:
    inside: list[tuple[int, int]] = []
    pos = 0
    for p in pieces:
        if p.is_entity:
            inside.append((pos, pos + len(p.text)))
        pos += len(p.text)
    return lambda o: any(s < o < e for s, e in inside)


def _permute_blocks(
    pieces: list[Piece], blocks: list[list[tuple[int, int]]], rng: random.Random
) -> tuple[list[Piece], int]:
    """Permute character ranges within each group of ranges (ranges never cut an entity), moving their pieces."""
    cuts = {o for group in blocks for s, e in group for o in (s, e)}
    pieces = split_plain_at(merge_plain(pieces), cuts)
    starts: list[int] = []
    pos = 0
    for p in pieces:
        starts.append(pos)
        pos += len(p.text)
    moved: dict[tuple[int, int], tuple[int, int]] = {}
    changes = 0
    for group in blocks:
        order = list(range(len(group)))
        rng.shuffle(order)
        if order == sorted(order):
            continue
        changes += 1
        for slot, src in zip(group, order, strict=True):
            moved[slot] = group[src]

    def pieces_in(rng_: tuple[int, int]) -> list[Piece]:
        return [p for p, s in zip(pieces, starts, strict=True) if rng_[0] <= s < rng_[1]]

    out: list[Piece] = []
    slot_starts = {s: (s, e) for s, e in moved}
    skip_until = -1
    for p, s in zip(pieces, starts, strict=True):
        if s < skip_until:
            continue
        if s in slot_starts:
            slot = slot_starts[s]
            out.extend(pieces_in(moved[slot]))
            skip_until = slot[1]
            continue
        out.append(p)
    return merge_plain(out), changes


def reorder_list_items(pieces: list[Piece], doc: dict[str, Any], rng: random.Random) -> tuple[list[Piece], int]:
    """Shuffle the items of bulleted/numbered lists (the bullet or number stays in place, the item moves whole)."""
    text = joined(pieces)
    groups: list[list[tuple[int, int]]] = []
    run: list[tuple[int, int]] = []
    for s, e in _line_spans(text):
        m = _BULLET.match(text, s, e)
        if m and m.end() < e:
            run.append((m.end(), e))
            continue
        if len(run) >= 2:
            groups.append(run)
        run = []
    if len(run) >= 2:
        groups.append(run)
    groups = [g for g in groups if rng.random() < 0.7]
    if not groups:
        return pieces, 0
    return _permute_blocks(pieces, groups, rng)


def reorder_sentences(pieces: list[Piece], doc: dict[str, Any], rng: random.Random) -> tuple[list[Piece], int]:
    """Shuffle sentences within a paragraph line, after its first sentence. A sentence that leans on the one before
    (starts with a pronoun or connective) travels with it, and so do sentences joined by a relation."""
    text = joined(pieces)
    inside = _inside_entity(pieces)
    rel_spans = _relation_spans(pieces, doc)
    groups: list[list[tuple[int, int]]] = []
    for s, e in _line_spans(text):
        line = text[s:e]
        bounds = [s]
        for m in re.finditer(r"(?<=[.!?])[ ]+(?=[A-Z])", line):
            cut = s + m.end()
            if inside(cut) or _ABBREV_BEFORE_DOT.search(text[s : s + m.start()]):
                continue
            if _DEPENDENT_START.match(text, cut):
                continue
            if any(a < cut < b for a, b in rel_spans):
                continue
            bounds.append(cut)
        if len(bounds) < 3:
            continue
        units = []
        ends = [*bounds[1:], e]
        for b0, b1 in zip(bounds, ends, strict=True):
            chunk = text[b0:b1].rstrip(" ")
            units.append((b0, b0 + len(chunk)))
        tail = units[1:]
        if text[tail[-1][0] : tail[-1][1]][-1:] not in ".!?":
            continue  # the last sentence is unterminated: moving it would glue sentences together
        if rng.random() < 0.6:
            groups.append(tail)
    if not groups:
        return pieces, 0
    return _permute_blocks(pieces, groups, rng)


def _relation_spans(pieces: list[Piece], doc: dict[str, Any]) -> list[tuple[int, int]]:
    pos_of: dict[int, tuple[int, int]] = {}
    pos = 0
    for p in pieces:
        if p.is_entity and p.handle is not None:
            pos_of[p.handle] = (pos, pos + len(p.text))
        pos += len(p.text)
    index = {e["id"]: i for i, e in enumerate(doc.get("entities", []))}
    out = []
    for r in doc.get("relations", []):
        h, t = pos_of.get(index.get(r["head"], -1)), pos_of.get(index.get(r["tail"], -1))
        if h and t:
            out.append((min(h[0], t[0]), max(h[1], t[1])))
    return out


AUGMENTERS: dict[str, Augmenter] = {
    "substitute": substitute_entities,
    "sig": rewrite_sigs,
    "abbrev": vary_abbreviations,
    "reorder_lists": reorder_list_items,
    "reorder_sentences": reorder_sentences,
}


# ---------------------------------------------------------------- driver


@dataclass
class AugmentStats:
    documents: int = 0
    produced: int = 0
    attempts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "produced": self.produced,
            "attempts": self.attempts,
            "rejected": dict(self.rejected),
            "changes_by_method": dict(self.changes),
        }


def augment_document(
    doc: dict[str, Any], rng: random.Random, methods: Iterable[str] = tuple(AUGMENTERS), variant: int = 1
) -> tuple[dict[str, Any] | None, Counter[str]]:
    """One augmented variant of ``doc`` (None when no method changed anything)."""
    pieces = to_pieces(doc)
    applied: Counter[str] = Counter()
    for name in methods:
        pieces, n = AUGMENTERS[name](pieces, doc, rng)
        if n:
            applied[name] += n
    pieces = merge_plain(pieces)
    if not applied or joined(pieces) == doc["text"]:
        return None, applied
    meta = {"augmented_from": doc.get("id"), "methods": sorted(applied), "variant": variant}
    return assemble(doc, pieces, doc_id=f"{doc.get('id')}-aug{variant}", meta=meta), applied


def augment_offline(
    docs: Iterable[dict[str, Any]],
    n: int = 1,
    seed: int = 13,
    methods: Iterable[str] = tuple(AUGMENTERS),
    stats: AugmentStats | None = None,
    max_attempts: int = 5,
) -> Iterator[dict[str, Any]]:
    """``n`` validated variants of each document; an attempt that fails the validator is retried with the next
    sub-seed (counted in ``stats.rejected``), so every output passes the validator."""
    methods = tuple(methods)
    unknown = set(methods) - set(AUGMENTERS)
    if unknown:
        raise ValueError(f"unknown augmenters {sorted(unknown)}; known: {sorted(AUGMENTERS)}")
    stats = stats if stats is not None else AugmentStats()
    for doc in docs:
        stats.documents += 1
        if validate_document(doc):
            stats.rejected["invalid_source"] += 1
            continue
        for variant in range(1, n + 1):
            for attempt in range(max_attempts):
                stats.attempts += 1
                rng = random.Random(f"{seed}:{doc.get('id')}:{variant}:{attempt}")
                out, applied = augment_document(doc, rng, methods, variant)
                if out is None:
                    stats.rejected["no_change"] += 1
                    continue
                if validate_document(out):
                    stats.rejected["validator"] += 1
                    continue
                stats.produced += 1
                stats.changes.update(applied)
                yield out
                break
