"""ConText-style assertion rules: negated, uncertain, hypothetical, historical, subject (family/other).

Trigger phrases live in ``data/context_rules.tsv`` (category, direction). A trigger applies to a mention of
Problem/Reason/ADE in the same *scope*: the sentence or list item (bounded by ``. ! ? ;``, line breaks and
bullets), cut at terminate triggers ("but", "however", "which", ...). Forward triggers apply to mentions after
them, backward triggers to mentions before them. Sections matter: a mention under a family-history heading has
subject ``family``; under a past-medical/surgical-history heading it is not marked historical (chronic conditions
listed there are still present: the annotation guidelines). Pure functions of the text and the offsets.

Historical has three strengths: ``historical`` triggers (past-time cues: "in 2018", "status post", "prior") do not
reach a chronic condition (``data/chronic_conditions.tsv``: "hypertension in 2015" stays current); ``resolved``
triggers (an explicit resolution or a single past episode) reach any mention; ``event`` triggers ("history of")
reach only a mention naming a one-off event (``data/acute_events.tsv``: "history of a hip fracture"). A
``previous`` trigger opens a sentence and applies to the mentions of the sentence before it ("... a rash. This has
resolved.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from itertools import pairwise

from clinie.document import Document, Entity
from clinie.schema import NEGATABLE_LABELS

CATEGORIES = ("negated", "uncertain", "hypothetical", "historical", "resolved", "event", "family", "other",
              "pseudo", "terminate")
DIRECTIONS = ("forward", "backward", "both", "previous")
_SCOPE_BREAK = re.compile(r"[.!?;](?=\s|$)|\n|•|(?<=\s)-\s(?=[A-Z])|:\s")
_HEADER = re.compile(r"^[ \t]*([A-Z][A-Z /&,()-]{2,}[A-Z)])[ \t]*:?[ \t]*$", re.MULTILINE)
_FAMILY_SECTIONS = re.compile(r"FAMILY (MEDICAL )?HISTORY|FAMILY HX|\bFH\b")
_SECTION_ANY = re.compile(r"^[A-Z]")


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    category: str
    direction: str
    phrase: bool = False  # reaches only mentions with no comma between them and the trigger
    adjacent: bool = False  # reaches only a mention next to it (whitespace between)


@dataclass(frozen=True, slots=True)
class Assertion:
    negated: bool = False
    uncertain: bool = False
    hypothetical: bool = False
    historical: bool = False
    subject: str = "patient"


@lru_cache(maxsize=4)
def load_rules(name: str = "context_rules.tsv") -> tuple[Rule, ...]:
    return parse_rules(resources.files("clinie.normalize").joinpath(f"data/{name}").read_text())


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Rules from the TSV text of a trigger table (see ``data/context_rules.tsv`` for the columns)."""
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phrase, category, direction, reach = [*line.split("\t"), "", "", ""][:4]
        if (category not in CATEGORIES or direction not in DIRECTIONS
                or reach.strip() not in ("", "phrase", "adjacent")):
            raise ValueError(f"bad context rule: {line!r}")
        phrase = phrase.strip().replace(" ", r"\s+")
        rules.append(Rule(re.compile(rf"(?<![\w-]){phrase}(?![\w-])", re.IGNORECASE), category, direction,
                          reach.strip() == "phrase", reach.strip() == "adjacent"))
    return tuple(rules)


@lru_cache(maxsize=4)
def load_chronic(name: str = "chronic_conditions.tsv") -> re.Pattern[str]:
    """Conditions that stay present once diagnosed: a past-time cue alone does not make them historical."""
    text = resources.files("clinie.normalize").joinpath(f"data/{name}").read_text()
    alts: dict[bool, list[str]] = {True: [], False: []}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pat = line.split("\t")[0].strip()
            alts[pat.startswith("!")].append(pat.lstrip("!").replace(" ", r"\s+"))
    chronic = "|".join(alts[False])
    event = "|".join(alts[True]) or r"(?!)"
    # a chronic condition named as an event ("exacerbation of CHF", "asthma attack") is not exempt
    return re.compile(rf"^(?!.*(?<![\w-])(?:{event})(?![\w-])).*(?<![\w-])(?:{chronic})(?![\w-])",
                      re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4)
def load_events(name: str = "acute_events.tsv") -> re.Pattern[str]:
    """Words naming a one-off event (injury, fracture, anaphylaxis): "history of" such an event is historical."""
    text = resources.files("clinie.normalize").joinpath(f"data/{name}").read_text()
    alts = [line.split("\t")[0].strip().replace(" ", r"\s+") for line in text.splitlines()
            if line.strip() and not line.startswith("#")]
    return re.compile(rf"(?<![\w-])(?:{'|'.join(alts)})(?![\w-])", re.IGNORECASE)


def is_chronic(mention: str, chronic: re.Pattern[str] | None = None) -> bool:
    """Whether the mention names a chronic condition (``data/chronic_conditions.tsv``), not an event of one."""
    return (load_chronic() if chronic is None else chronic).search(mention) is not None


def _scopes(text: str) -> list[tuple[int, int]]:
    bounds = [0]
    for m in _SCOPE_BREAK.finditer(text):
        bounds.append(m.end())
    bounds.append(len(text))
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def _sections(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(1)) for m in _HEADER.finditer(text)]


@dataclass(frozen=True)
class _Trigger:
    start: int
    end: int
    category: str
    direction: str
    phrase: bool = False
    adjacent: bool = False


def _triggers(text: str, start: int, end: int, rules: Sequence[Rule]) -> list[_Trigger]:
    found: list[_Trigger] = []
    chunk = text[start:end]
    for rule in rules:
        for m in rule.pattern.finditer(chunk):
            found.append(_Trigger(start + m.start(), start + m.end(), rule.category, rule.direction, rule.phrase,
                                  rule.adjacent))
    # longest trigger wins where triggers overlap (pseudo triggers mask the triggers they contain); a phrase that
    # two rules of different categories name exactly keeps both (e.g. negated and historical)
    found.sort(key=lambda t: (t.start, -(t.end - t.start)))
    kept: list[_Trigger] = []
    for t in found:
        if kept and t.start < kept[-1].end:
            same = (t.start, t.end) == (kept[-1].start, kept[-1].end) and "pseudo" not in (t.category,
                                                                                        kept[-1].category)
            if not same:
                continue
        kept.append(t)
    return [t for t in kept if t.category != "pseudo"]


def assert_mention(text: str, start: int, end: int, *, rules: Sequence[Rule] | None = None,
                   scopes: Sequence[tuple[int, int]] | None = None,
                   sections: Sequence[tuple[int, str]] | None = None) -> Assertion:
    """The assertion flags of the mention ``text[start:end]``."""
    rules = load_rules() if rules is None else rules
    scopes = _scopes(text) if scopes is None else scopes
    sections = _sections(text) if sections is None else sections
    k = next((i for i, (a, b) in enumerate(scopes) if a <= start < b), -1)
    s0, s1 = scopes[k] if k >= 0 else (0, len(text))
    trig = _triggers(text, s0, s1, [r for r in rules if r.direction != "previous"])
    # clause bounds: the nearest terminate triggers around the mention
    lo, hi = s0, s1
    for t in trig:
        if t.category == "terminate":
            if t.end <= start:
                lo = max(lo, t.end)
            elif t.start >= end:
                hi = min(hi, t.start)
    flags: dict[str, bool] = {}
    for t in trig:
        if t.category == "terminate" or t.start < lo or t.end > hi:
            continue
        if t.start < end and t.end > start:  # inside the mention ("no longer" in a longer span)
            continue
        before = t.end <= start
        between = text[t.end:start] if before else text[end:t.start]
        if (t.phrase and "," in between) or (t.adjacent and between.strip()):
            continue
        if (before and t.direction in ("forward", "both")) or (not before and t.direction in ("backward", "both")):
            flags[t.category] = True
    # "previous" triggers open the next sentence and speak of the one before ("... rash. This has resolved.")
    if 0 <= k < len(scopes) - 1 and any(r.direction == "previous" for r in rules):
        n0, n1 = scopes[k + 1]
        for t in _triggers(text, n0, n1, [r for r in rules if r.direction == "previous"]):
            if not text[n0:t.start].strip():
                flags[t.category] = True
    mention = text[start:end]
    chronic = flags.get("historical", False) and is_chronic(mention)
    event = flags.get("event", False) and not flags.get("negated", False) and load_events().search(mention) is not None
    section = next((name for pos, name in reversed(sections) if pos <= start), "")
    subject = "family" if flags.get("family") or _FAMILY_SECTIONS.search(section) else (
        "other" if flags.get("other") else "patient")
    return Assertion(
        negated=flags.get("negated", False),
        uncertain=flags.get("uncertain", False),
        hypothetical=flags.get("hypothetical", False),
        historical=flags.get("resolved", False) or event or (flags.get("historical", False) and not chronic),
        subject=subject,
    )


class AssertionTagger:
    """Pipeline stage: ``predict`` computes flags for Problem/Reason/ADE, ``set_annotations`` puts them on.

    ``negation``: also set ``negated`` from the rules (OR with what the model said); by default the model's
    negation is kept as it is.
    """

    def __init__(self, rules: Sequence[Rule] | None = None, *, negation: bool = False,
                 labels: Iterable[str] = NEGATABLE_LABELS) -> None:
        self.rules = tuple(rules) if rules is not None else load_rules()
        self.negation = negation
        self.labels = frozenset(labels)

    def predict(self, doc: Document) -> dict[str, Assertion]:
        scopes, sections = _scopes(doc.text), _sections(doc.text)
        return {
            e.id: assert_mention(doc.text, e.start, e.end, rules=self.rules, scopes=scopes, sections=sections)
            for e in doc.entities
            if e.label in self.labels
        }

    def set_annotations(self, doc: Document, assertions: dict[str, Assertion]) -> Document:
        out: list[Entity] = []
        for e in doc.entities:
            a = assertions.get(e.id)
            if a is None:
                out.append(e)
                continue
            out.append(replace(
                e,
                negated=(e.negated or a.negated) if self.negation else e.negated,
                uncertain=a.uncertain,
                hypothetical=a.hypothetical,
                historical=a.historical,
                subject=a.subject,
            ))
        return doc.with_annotations(entities=out)

    def __call__(self, doc: Document) -> Document:
        return self.set_annotations(doc, self.predict(doc))
