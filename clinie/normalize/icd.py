"""ICD-10-CM term index and linker (conditions: Problem, Reason, ADE).

Terms come from three tiers, tried in this order for every match key (``clinie.normalize.text.keys``):

0. ``data/conditions.tsv`` — curated clinician forms (and the drug-induced code for ADE mentions), then
   ``data/conditions_silver.tsv`` — the condition forms of the silver train notes, coded (see its header);
1. the clinician forms of ``clinie/augment/data/problems.tsv`` (the vocabulary the synthetic notes use);
2. ICD-10-CM descriptions and inclusion terms of billable codes (``simple-icd-10-cm``), simplified.

A key that hits no term falls back to lexical retrieval: IDF-weighted Dice overlap between the key's words and
every term's words (an inverted index), which yields a score below the exact tiers. Candidates below the
threshold leave the mention text-only.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from clinie.fhir.systems import ICD10CM as ICD10CM_SYSTEM
from clinie.normalize.text import fold, keys, singular

INDEX_FORMAT = "clinie-icd10cm-index-1"
TIER_SCORES = (1.0, 0.95, 0.9)
KEY_STEP_PENALTY = 0.02
FUZZY_WEIGHT = 0.85


@dataclass(frozen=True, slots=True)
class Candidate:
    code: str  # dotted ICD-10-CM code, e.g. "E11.9"
    display: str
    score: float
    source: str  # "curated" | "vocab" | "icd10cm" | "lexical"; the normaliser adds "form" | "dense" | "sited"

    @property
    def coding(self) -> str:
        return f"{ICD10CM_SYSTEM}|{self.code}"


_ENCOUNTER = re.compile(r",?\s*(initial encounter|subsequent encounter|sequela)\b.*$", re.IGNORECASE)
_SIDE_WORDS = ("right", "left")


def _simplify(term: str) -> str:
    # the 7th character (initial/subsequent encounter, sequela) is dropped from the term, so the three codes share
    # one key and the initial encounter ("A", sorted first) wins: a visit note names the injury, not the encounter
    t = _ENCOUNTER.sub("", term)
    t = re.sub(r"\s*\([^)]*\)", "", t)
    t = re.sub(r",?\s*(unspecified|not elsewhere classified|NOS)\b", "", t, flags=re.IGNORECASE)
    t = re.sub(r"^\s*unspecified\s+", "", t, flags=re.IGNORECASE)
    t = re.sub(r"\bof unspecified (site|side|part|type)\b", "", t, flags=re.IGNORECASE)
    m = re.fullmatch(r"\s*pain in (right|left|unspecified) (\w+)\s*", t, flags=re.IGNORECASE)
    if m:
        t = f"{m.group(1)} {m.group(2)} pain" if m.group(1).lower() != "unspecified" else f"{m.group(2)} pain"
    return fold(t)


# curated tables, first wins: the hand-curated visit-note forms, then the forms coded from the silver train notes
CURATED_TABLES = ("data/conditions.tsv", "data/conditions_silver.tsv", "data/conditions_lexicon.tsv")


def _curated_rows(tables: tuple[str, ...] = CURATED_TABLES) -> Iterable[tuple[str, str, str]]:
    """(term, code, ADE code or '') from the curated ``tables`` (package data paths), in order."""
    for name in tables:
        text = resources.files("clinie.normalize").joinpath(name).read_text()
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cols = [*line.split("\t"), "", ""]
            code, terms, ade = cols[0].strip(), cols[1], cols[2].strip()
            for term in terms.split("|"):
                if term.strip():
                    yield term.strip(), code, ade


def _vocab_rows() -> Iterable[tuple[str, str]]:
    text = resources.files("clinie.augment").joinpath("data/problems.tsv").read_text()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = [*line.split("\t"), "", "", ""]
        for term in [*cols[2].split("|"), *cols[3].split("|")]:
            if term.strip():
                yield term.strip(), cols[0].strip()


def icd_version() -> str:
    import importlib.metadata

    return f"ICD-10-CM April 2026 (simple-icd-10-cm {importlib.metadata.version('simple-icd-10-cm')})"


def curated_version(tables: tuple[str, ...] = CURATED_TABLES) -> str:
    """A digest of the curated ``tables`` and the sited findings of ``clinie.normalize.sites``: recorded with the
    index, since they decide codes too."""
    import hashlib

    digest = hashlib.sha256()
    for name in (*tables, "data/sited_findings.tsv"):
        digest.update(resources.files("clinie.normalize").joinpath(name).read_bytes())
    return f"clinie curated tables {digest.hexdigest()[:12]}"


def build_index_data(tables: tuple[str, ...] = CURATED_TABLES) -> dict[str, object]:
    """The serialisable index: displays, terms per tier and the terminology version. ``tables`` (package data
    paths, first wins) make tier 0; an ablation passes a subset."""
    import simple_icd_10_cm as icd

    displays: dict[str, str] = {}
    icd_terms: dict[str, list[str]] = defaultdict(list)
    for raw in icd.get_all_codes(True):
        if not icd.is_leaf(raw) or icd.is_chapter_or_block(raw):
            continue
        code = icd.add_dot(raw) if "." not in raw else raw
        desc = icd.get_description(raw)
        displays[code] = desc
        for term in [desc, *icd.get_inclusion_term(raw)]:
            k = _simplify(term)
            if k and code not in icd_terms[k]:
                icd_terms[k].append(code)
    # several codes for one term: prefer an "unspecified" code, then the shorter (less specific) code
    for codes in icd_terms.values():
        codes.sort(key=lambda c: ("unspecified" not in displays[c].lower(), len(c), c))
    curated: dict[str, list[str]] = defaultdict(list)
    ade: dict[str, str] = {}
    for term, code, ade_code in _curated_rows(tables):
        for k in list(keys(term))[:1]:
            if code and code not in curated[k]:  # a row may give only the ADE code
                curated[k].append(code)
            if ade_code:
                ade.setdefault(k, ade_code)
    vocab: dict[str, list[str]] = defaultdict(list)
    for term, code in _vocab_rows():
        k = fold(term)
        if code not in vocab[k]:
            vocab[k].append(code)
    for code in {c for cs in (*curated.values(), *vocab.values()) for c in cs} | set(ade.values()):
        if code not in displays and icd.is_valid_item(code):
            displays[code] = icd.get_description(code)
    return {
        "format": INDEX_FORMAT,
        "version": f"{icd_version()}; {curated_version(tables)}",
        "displays": displays,
        "tiers": [dict(curated), dict(vocab), dict(icd_terms)],
        "ade": ade,
    }


class IcdIndex:
    """Lookup and lexical retrieval over the tiers of ``build_index_data``."""

    def __init__(self, data: dict[str, object]) -> None:
        if data.get("format") != INDEX_FORMAT:
            raise ValueError(f"not a {INDEX_FORMAT} index")
        self.version = str(data["version"])
        self.displays: dict[str, str] = dict(data["displays"])  # type: ignore[call-overload]
        self.tiers: list[dict[str, list[str]]] = [dict(t) for t in data["tiers"]]  # type: ignore[attr-defined]
        self.ade: dict[str, str] = dict(data["ade"])  # type: ignore[call-overload]
        self._postings: dict[str, list[tuple[int, str]]] | None = None
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        self._term_weight: dict[tuple[int, str], float] = {}

    # ------------------------------------------------------------------ io

    @classmethod
    def build(cls, tables: tuple[str, ...] = CURATED_TABLES) -> IcdIndex:
        return cls(build_index_data(tables))

    def save(self, path: str | Path) -> None:
        data = {"format": INDEX_FORMAT, "version": self.version, "displays": self.displays, "tiers": self.tiers,
                "ade": self.ade}
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(data, fh)

    @classmethod
    def load(cls, path: str | Path) -> IcdIndex:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    # ------------------------------------------------------------------ lookup

    def exact(self, text: str, *, ade: bool = False) -> Candidate | None:
        for step, k in enumerate(keys(text)):
            if ade and k in self.ade:
                return self._cand(self.ade[k], TIER_SCORES[0] - step * KEY_STEP_PENALTY, "curated")
            for tier, (table, source) in enumerate(zip(self.tiers, ("curated", "vocab", "icd10cm"), strict=True)):
                codes = table.get(k)
                if codes:
                    return self._cand(codes[0], TIER_SCORES[tier] - step * KEY_STEP_PENALTY, source)
        return None

    def link(self, text: str, *, ade: bool = False) -> Candidate | None:
        """The best candidate for ``text`` (exact tiers first, then lexical retrieval)."""
        hit = self.exact(text, ade=ade)
        if hit is not None:
            return hit
        return self.lexical(text)

    def _cand(self, code: str, score: float, source: str) -> Candidate:
        return Candidate(code, self.displays.get(code, ""), round(score, 4), source)

    def _build_postings(self) -> dict[str, list[tuple[int, str]]]:
        postings: dict[str, list[tuple[int, str]]] = defaultdict(list)
        n_terms = 0
        for tier, table in enumerate(self.tiers):
            for term in table:
                n_terms += 1
                for w in {singular(w) for w in term.split()}:
                    postings[w].append((tier, term))
        self._idf = {w: math.log(1 + n_terms / len(p)) for w, p in postings.items()}
        self._default_idf = max(self._idf.values()) if self._idf else 1.0
        # a term's own weight (sum of its words' idf), once per index: recomputing it for every candidate of every
        # mention was a third of the per-note time of the whole pipeline (benchmarks/results/model_profile.json)
        self._term_weight = {(tier, term): sum(self._idf[singular(w)] for w in set(term.split()))
                             for tier, table in enumerate(self.tiers) for term in table}
        return postings

    def lexical(self, text: str) -> Candidate | None:
        top = self.lexical_top(text, 1)
        return top[0] if top else None

    def lexical_top(self, text: str, k: int = 20) -> list[Candidate]:
        """The ``k`` best codes by IDF-weighted Dice overlap of the words (score = 0.85 × Dice), best first."""
        if self._postings is None:
            self._postings = self._build_postings()
        all_keys = list(keys(text, drop_side=False))
        if not all_keys:  # nothing but punctuation
            return []
        key = all_keys[-1]
        words = {singular(w) for w in key.split()}
        wq = sum(self._idf.get(w, self._default_idf) for w in words)
        if not words or wq <= 0:
            return []
        overlap: dict[tuple[int, str], float] = defaultdict(float)
        for w in words:
            for item in self._postings.get(w, ()):
                overlap[item] += self._idf[w]
        scored: list[tuple[float, int, str]] = []
        for (tier, term), ov in overlap.items():
            scored.append((2 * ov / (wq + self._term_weight[tier, term]), -tier, term))
        scored.sort(reverse=True)
        out: list[Candidate] = []
        seen: set[str] = set()
        for dice, neg_tier, term in scored:
            code = self.tiers[-neg_tier][term][0]
            if code not in seen:
                seen.add(code)
                out.append(self._cand(code, FUZZY_WEIGHT * dice, "lexical"))
                if len(out) >= k:
                    break
        return out


@lru_cache(maxsize=1)
def default_index() -> IcdIndex:
    return IcdIndex.build()


def _side_sibling(code: str, drop: str, add: str) -> str | None:
    """The sibling of ``code`` whose description is ``code``'s with the word ``drop`` replaced by ``add`` (the 7th
    character kept, the encounter wording ignored); None when ``code`` lacks ``drop`` or has no such sibling."""
    from collections import Counter

    import simple_icd_10_cm as icd

    if not icd.is_valid_item(code):
        return None
    base, seventh = (code[:-1], code[-1]) if len(code.replace(".", "")) == 7 else (code, "")
    if not icd.is_valid_item(base):
        return None
    words = Counter(fold(_ENCOUNTER.sub("", icd.get_description(code))).split())
    if drop not in words:
        return None
    parent = icd.get_parent(base)
    for sib in icd.get_children(parent) if parent else []:
        full = f"{sib}{seventh}"
        if full == code or not icd.is_valid_item(full):
            continue
        other = Counter(fold(_ENCOUNTER.sub("", icd.get_description(full))).split())
        if words - other == Counter({drop: 1}) and other - words == Counter({add: 1}):
            return full
    return None


@lru_cache(maxsize=4096)
def lateral_variant(code: str, side: str) -> str | None:
    """The sibling of an unspecified-side code for ``side`` ("right"/"left"): the code whose description is this
    one's with one "unspecified" replaced by the side ("M25.569" Pain in unspecified knee, left -> "M25.562");
    None when ``code`` names no unspecified side or has no such sibling. The 7th character is kept."""
    return _side_sibling(code, "unspecified", side) if side in _SIDE_WORDS else None


@lru_cache(maxsize=4096)
def unsided_variant(code: str) -> str:
    """The unspecified-side sibling of a right/left code ("M25.561" Pain in right knee -> "M25.569"); ``code``
    itself when it names no side or has no such sibling (the inverse of ``lateral_variant``)."""
    import simple_icd_10_cm as icd

    if not icd.is_valid_item(code):
        return code
    sides = [s for s in _SIDE_WORDS if s in fold(_ENCOUNTER.sub("", icd.get_description(code))).split()]
    return (_side_sibling(code, sides[0], "unspecified") or code) if len(sides) == 1 else code


@lru_cache(maxsize=4096)
def icd_display(code: str) -> str:
    """The ICD-10-CM description of ``code`` ("" when unknown)."""
    import simple_icd_10_cm as icd

    return str(icd.get_description(code)) if icd.is_valid_item(code) else ""
