"""The baseline's token -> character offset mapping (benchmarks/baseline_systems.py).

The tokenizer tests need nothing extra; the tests that run the real dictionary or medspaCy are skipped where
the optional baseline packages (``pip install -e '.[baseline]'``) are not installed.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.baseline_systems import (
    DictionaryDrugTagger,
    NegationCounts,
    Token,
    score_negation,
    split_compound,
    tokenize,
)
from clinie.document import Document, Entity

TEXT = "Started metformin 500 mg and aspirin.\nHeparin-induced rash after 5-fluorouracil, mitomycin C."


def test_tokens_carry_exact_offsets() -> None:
    toks = tokenize(TEXT)
    assert toks and all(TEXT[t.start : t.end] == t.text for t in toks)
    words = [t.text for t in toks]
    assert words[:7] == ["Started", "metformin", "500", "mg", "and", "aspirin", "."]
    assert "Heparin-induced" in words and "5-fluorouracil" in words
    comp = next(t for t in toks if t.text == "Heparin-induced")
    parts = split_compound(comp, TEXT)
    assert [p.text for p in parts] == ["Heparin", "-", "induced"]
    assert parts and all(TEXT[p.start : p.end] == p.text for p in parts)


def _fake_find_drugs(words: list[str]) -> list[tuple[dict[str, Any], int, int]]:
    """find_drugs' contract: (data, first token index, end token index) for unigrams and bigrams."""
    lexicon = {"metformin", "aspirin", "heparin", "5-fluorouracil", "mitomycin c"}
    out = []
    for i in range(len(words)):
        for n in (2, 1):
            cand = " ".join(words[i : i + n]).lower()
            if len(words[i : i + n]) == n and cand in lexicon:
                out.append(({"name": cand}, i, i + n))
    return out


def test_token_indices_map_to_character_offsets() -> None:
    tagger = DictionaryDrugTagger(find_drugs=_fake_find_drugs)
    found = [(TEXT[m.start : m.end], m.start) for m in tagger.matches(TEXT)]
    assert found == [
        ("metformin", 8),
        ("aspirin", 29),
        ("Heparin", 38),
        ("5-fluorouracil", 65),
        ("mitomycin C", 81),
    ]
    doc = tagger(Document(id="d", text=TEXT))
    assert [e.label for e in doc.entities] == ["Drug"] * 5
    assert len({e.id for e in doc.entities}) == 5
    assert not doc.relations


def test_whole_tokens_only_does_not_split_hyphens() -> None:
    tagger = DictionaryDrugTagger(find_drugs=_fake_find_drugs, split_hyphens=False)
    assert "Heparin" not in [TEXT[m.start : m.end] for m in tagger.matches(TEXT)]


def test_negation_counts() -> None:
    gold = Document(
        id="d",
        text="no fever, cough",
        entities=(Entity("T1", "Problem", 3, 8, negated=True), Entity("T2", "Problem", 10, 15)),
    )
    pred = gold.with_annotations(
        entities=[Entity("T1", "Problem", 3, 8, negated=True), Entity("T2", "Problem", 10, 15, negated=True)]
    )
    c = score_negation([gold], [pred])
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 0, 0)
    assert c.accuracy == 0.5 and c.recall == 1.0
    assert NegationCounts().f1 == 0.0


def test_real_dictionary_offsets() -> None:
    pytest.importorskip("drug_named_entity_recognition")
    doc = DictionaryDrugTagger()(Document(id="d", text=TEXT))
    spans = [TEXT[e.start : e.end] for e in doc.entities]
    assert "metformin" in spans and "aspirin" in spans and "5-fluorouracil" in spans
    assert "Heparin" in spans  # found inside "Heparin-induced"
    assert all(isinstance(t, Token) for t in tokenize(TEXT))


def test_real_context_negation() -> None:
    pytest.importorskip("medspacy")
    from benchmarks.baseline_systems import ConTextNegation

    text = "The patient denies chest pain. She has fever.\nNo evidence of pneumonia."
    spans = [(19, 29), (39, 44), (61, 70)]
    assert [text[a:b] for a, b in spans] == ["chest pain", "fever", "pneumonia"]
    assert ConTextNegation().negated(text, spans) == [True, False, True]


def test_real_context_assertion_flags() -> None:
    pytest.importorskip("medspacy")
    from benchmarks.baseline_systems import ConTextNegation

    text = "Denies chest pain. History of stroke. Possible pneumonia. Call if fever develops."
    words = ("chest pain", "stroke", "pneumonia", "fever")
    ents = [Entity(id=f"T{i + 1}", label="Problem", start=text.index(w), end=text.index(w) + len(w))
            for i, w in enumerate(words)]
    doc = ConTextNegation().annotate_flags(Document(id="c", text=text, entities=tuple(ents)), ["Problem"])
    flags = {text[e.start:e.end]: (e.negated, e.historical, e.uncertain, e.hypothetical) for e in doc.entities}
    assert flags["chest pain"][0] and flags["stroke"][1] and flags["pneumonia"][2] and flags["fever"][3]
