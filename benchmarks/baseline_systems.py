"""The published baseline clinie is compared against: a dictionary drug tagger and ConText negation.

- :class:`DictionaryDrugTagger` wraps ``drug_named_entity_recognition.find_drugs`` (Fast Data Science's
  dictionary of DrugBank / MeSH / NHS / Wikipedia drug names, exact unigram and bigram lookup).
  ``find_drugs`` works on a list of tokens and reports token indices, so the text is tokenised here with a
  regex that records each token's character offsets, and the token indices are mapped back to exact offsets
  (never by searching for the string).
- :class:`ConTextNegation` runs medspaCy's ConText (default rules, PyRuSH sentence splitting, a blank English
  tokenizer: no model download) over given target spans, e.g. the gold Problem mentions, and decides
  ``negated``.

Both third-party packages are optional (``pip install clinie[baseline]``) and imported lazily, so this module
imports without them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from clinie.document import Document, Entity
from clinie.evaluate import Counts

DRUG = "Drug"

# a word, with hyphen-joined parts kept together ("5-fluorouracil", "heparin-induced"), or one punctuation
# mark; punctuation tokens stay in the sequence so that a bigram never spans "aspirin, heparin"
_TOKEN_RE = re.compile(r"\w+(?:-\w+)*|[^\w\s]")
_PART_RE = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Tokens of ``text[start:end]`` with their character offsets into ``text``."""
    return [
        Token(m.group(), m.start(), m.end())
        for m in _TOKEN_RE.finditer(text, start, len(text) if end is None else end)
    ]


def split_compound(token: Token, text: str) -> list[Token]:
    """The parts of a hyphenated token ("heparin-induced" -> "heparin", "-", "induced")."""
    out: list[Token] = []
    pos = token.start
    for m in _PART_RE.finditer(text, token.start, token.end):
        if m.start() > pos:
            out.append(Token(text[pos : m.start()], pos, m.start()))
        out.append(Token(m.group(), m.start(), m.end()))
        pos = m.end()
    return out


FindDrugs = Callable[[list[str]], list[tuple[dict[str, Any], int, int]]]


def _load_find_drugs(fuzzy: bool) -> FindDrugs:
    from drug_named_entity_recognition import find_drugs

    def run(words: list[str]) -> list[tuple[dict[str, Any], int, int]]:
        return list(find_drugs(words, is_fuzzy_match=fuzzy))

    return run


@dataclass(frozen=True, slots=True)
class DrugMatch:
    start: int
    end: int
    name: str  # the dictionary's canonical name


class DictionaryDrugTagger:
    """Drug mentions by dictionary lookup (``drug_named_entity_recognition``), at exact character offsets.

    A hyphenated token is looked up whole first ("5-fluorouracil"); when it is not a drug as a whole and
    ``split_hyphens`` is set, its parts are looked up ("heparin-induced" -> "heparin"). Overlapping matches
    are resolved longest first, then leftmost. ``fuzzy`` passes ``is_fuzzy_match=True`` to ``find_drugs``;
    note that drug-named-entity-recognition 2.0.9 raises ``UnboundLocalError`` in its fuzzy bigram branch.
    """

    def __init__(
        self, fuzzy: bool = False, split_hyphens: bool = True, find_drugs: FindDrugs | None = None
    ) -> None:
        self.fuzzy = fuzzy
        self.split_hyphens = split_hyphens
        self._find_drugs = find_drugs

    @property
    def find_drugs(self) -> FindDrugs:
        if self._find_drugs is None:
            self._find_drugs = _load_find_drugs(self.fuzzy)
        return self._find_drugs

    def _lookup(self, tokens: Sequence[Token]) -> list[DrugMatch]:
        if not tokens:
            return []
        out = []
        for data, i, j in self.find_drugs([t.text for t in tokens]):
            name = str(data.get("name") or data.get("matching_string") or "")
            out.append(DrugMatch(tokens[i].start, tokens[j - 1].end, name))
        return out

    def matches(self, text: str) -> list[DrugMatch]:
        tokens = tokenize(text)
        found = self._lookup(tokens)
        covered = [(m.start, m.end) for m in found]
        for tok in tokens if self.split_hyphens else ():
            if "-" not in tok.text or any(s <= tok.start and tok.end <= e for s, e in covered):
                continue
            found.extend(self._lookup(split_compound(tok, text)))
        return _resolve_overlaps(found)

    def entities(self, text: str, id_prefix: str = "T") -> list[Entity]:
        return [
            Entity(id=f"{id_prefix}{k}", label=DRUG, start=m.start, end=m.end)
            for k, m in enumerate(self.matches(text), 1)
        ]

    def __call__(self, doc: Document) -> Document:
        """The document with the Drug mentions found, and no other annotations."""
        return doc.without_annotations().with_annotations(entities=self.entities(doc.text))


def _resolve_overlaps(found: Iterable[DrugMatch]) -> list[DrugMatch]:
    kept: list[DrugMatch] = []
    seen: set[tuple[int, int]] = set()
    for m in sorted(found, key=lambda m: (-(m.end - m.start), m.start)):
        if (m.start, m.end) in seen or any(m.start < k.end and k.start < m.end for k in kept):
            continue  # the same span under another canonical name, or overlapping a longer match
        seen.add((m.start, m.end))
        kept.append(m)
    return sorted(kept, key=lambda m: m.start)


class ConTextNegation:
    """medspaCy ConText over given target spans: decides ``negated`` for each (``assertions``: every ConText
    attribute, mapped to clinie's flags).

    The pipeline is medspaCy's default without its target matcher: blank English tokenizer, PyRuSH sentences
    and ConText with its default rules, reading the targets from a span group, so targets may overlap.
    """

    SPAN_GROUP = "clinie_targets"

    def __init__(self, quiet: bool = True) -> None:
        self.quiet = quiet  # silence PyRuSH's per-token DEBUG logging (loguru), which also costs time
        self._nlp: Any = None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            import medspacy

            if self.quiet:
                try:
                    from loguru import logger

                    logger.disable("PyRuSH")
                except ImportError:
                    pass
            nlp = medspacy.load(medspacy_enable=["medspacy_pyrush"])
            nlp.add_pipe(
                "medspacy_context", config={"input_span_type": "group", "span_group_name": self.SPAN_GROUP}
            )
            self._nlp = nlp
        return self._nlp

    def negated(self, text: str, spans: Sequence[tuple[int, int]]) -> list[bool | None]:
        """For each (start, end) span of ``text``: whether ConText negates it (None: no token aligns)."""
        return [None if a is None else a["negated"] for a in self.assertions(text, spans)]

    def assertions(self, text: str, spans: Sequence[tuple[int, int]]) -> list[dict[str, bool] | None]:
        """For each (start, end) span of ``text``: ConText's attributes as clinie's flags (``negated``,
        ``uncertain`` = is_uncertain, ``hypothetical``, ``historical``, ``family``); None where no token aligns."""
        nlp = self.nlp
        doc = nlp.make_doc(text)
        for name, proc in nlp.pipeline:
            if name == "medspacy_context":
                break
            doc = proc(doc)
        targets: list[Any] = []
        index: list[int | None] = []
        for start, end in spans:
            span = doc.char_span(start, end, label="Problem", alignment_mode="expand")
            if span is None or len(span) == 0:
                index.append(None)
                continue
            index.append(len(targets))
            targets.append(span)
        doc.spans[self.SPAN_GROUP] = targets
        doc = nlp.get_pipe("medspacy_context")(doc)
        group = doc.spans[self.SPAN_GROUP]
        out: list[dict[str, bool] | None] = []
        for k in index:
            if k is None:
                out.append(None)
                continue
            ext = group[k]._
            out.append({"negated": bool(ext.is_negated), "uncertain": bool(ext.is_uncertain),
                        "hypothetical": bool(ext.is_hypothetical), "historical": bool(ext.is_historical),
                        "family": bool(ext.is_family)})
        return out

    def _decide(self, doc: Document, labels: Iterable[str]) -> dict[str, dict[str, bool] | None]:
        """ConText's attributes for each entity of ``labels`` (by id; None where no token aligns)."""
        wanted = set(labels)
        targets = [e for e in doc.entities if e.label in wanted]
        return dict(zip((e.id for e in targets), self.assertions(doc.text, [(e.start, e.end) for e in targets]),
                        strict=True))

    def annotate_flags(self, doc: Document, labels: Iterable[str]) -> Document:
        """The document with the four assertion flags of its ``labels`` entities set by ConText (others unchanged;
        ``family`` is not used: the subject stays the patient, so both systems are scored on the same mentions)."""
        decided = self._decide(doc, labels)
        ents = []
        for e in doc.entities:
            a = decided.get(e.id)
            ents.append(e if a is None else replace(e, negated=a["negated"], uncertain=a["uncertain"],
                                                    hypothetical=a["hypothetical"], historical=a["historical"]))
        return doc.with_annotations(entities=ents)

    def annotate(self, doc: Document, label: str = "Problem") -> Document:
        """The document with ``negated`` of its ``label`` entities set by ConText (others unchanged; a mention no
        token aligns with is not negated)."""
        decided = self._decide(doc, [label])
        ents = [replace(e, negated=bool((a := decided[e.id]) and a["negated"])) if e.id in decided else e
                for e in doc.entities]
        return doc.with_annotations(entities=ents)


@dataclass
class NegationCounts(Counts):
    """Binary confusion counts for the negated class over gold mentions (P/R/F1 from ``Counts``)."""

    tn: int = 0

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mentions": self.total,
            "gold_negated": self.tp + self.fn,
            "pred_negated": self.tp + self.fp,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "accuracy": round(self.accuracy, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def score_negation(
    gold_docs: Iterable[Document], pred_docs: Iterable[Document], label: str = "Problem"
) -> NegationCounts:
    """Compare ``negated`` of the ``label`` entities, matched by id (predictions annotate gold mentions)."""
    preds = {d.id: {e.id: e for e in d.entities} for d in pred_docs}
    counts = NegationCounts()
    for gold in gold_docs:
        pents = preds.get(gold.id, {})
        for e in gold.entities:
            if e.label != label:
                continue
            p = pents.get(e.id)
            pn = bool(p.negated) if p is not None else False
            if e.negated and pn:
                counts.tp += 1
            elif pn:
                counts.fp += 1
            elif e.negated:
                counts.fn += 1
            else:
                counts.tn += 1
    return counts
