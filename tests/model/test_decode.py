from __future__ import annotations

import numpy as np
import pytest

from clinie.model.decode import B, I, O, candidate_pairs, decode_entities, span_negation
from clinie.schema import DEFAULT_SCHEMA

DRUG = DEFAULT_SCHEMA.index["Drug"]
DOSAGE = DEFAULT_SCHEMA.index["Dosage"]
PROBLEM = DEFAULT_SCHEMA.index["Problem"]


def _brute(spans: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
    attrs = {DEFAULT_SCHEMA.index[a] for a in DEFAULT_SCHEMA.attribute_labels}
    return [(h, t) for h in range(len(spans)) if spans[h, 2] in attrs for t in range(len(spans))
            if spans[t, 2] == DRUG and abs(spans[h, 0] - spans[t, 0]) <= max_distance
            and not (spans[h, 0] == spans[t, 0] and spans[h, 1] == spans[t, 1])]


def test_candidate_pairs_are_the_pairs_within_reach_in_attribute_order() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 30))
        starts = np.sort(rng.integers(0, 300, n))
        spans = np.stack([starts, starts + rng.integers(1, 4, n), rng.integers(0, 8, n)], 1).astype(np.int64)
        md = int(rng.integers(0, 120))
        heads, tails = candidate_pairs(spans, DEFAULT_SCHEMA, md)
        assert list(zip(heads.tolist(), tails.tolist(), strict=True)) == _brute(spans, md)


def test_candidate_pairs_scale_with_pairs_kept_not_attributes_times_drugs() -> None:
    # a huge note: 40,000 drugs and 40,000 dosages, each dosage next to one drug (A x D would be 1.6e9 pairs)
    n = 40_000
    starts = np.arange(2 * n) * 1000
    labels = np.where(np.arange(2 * n) % 2 == 0, DRUG, DOSAGE)
    spans = np.stack([starts, starts + 1, labels], 1).astype(np.int64)
    heads, _ = candidate_pairs(spans, DEFAULT_SCHEMA, 1000)
    assert heads.size == 2 * n - 1


def logits(tags: list[str], n_labels: int = 2, label: int = 0, strength: float = 5.0) -> np.ndarray:
    """Hand-made O/B/I logits ``[T, n_labels, 3]``: ``tags`` for ``label``, O for every other label."""
    out = np.zeros((len(tags), n_labels, 3), dtype=np.float32)
    out[:, :, O] = strength
    for i, tag in enumerate(tags):
        out[i, label] = 0.0
        out[i, label, {"O": O, "B": B, "I": I}[tag]] = strength
    return out


def decoded(x: np.ndarray) -> list[tuple[int, int, int]]:
    spans, conf = decode_entities(x)
    assert spans.shape[0] == conf.shape[0]
    return [tuple(s) for s in spans.tolist()]  # type: ignore[misc]


def test_bio_spans_from_hand_made_logits() -> None:
    assert decoded(logits(["O", "B", "I", "I", "O", "B", "O"])) == [(1, 4, 0), (5, 6, 0)]
    assert decoded(logits(["B", "B", "I"])) == [(0, 1, 0), (1, 3, 0)], "B right after a span starts a new one"
    assert decoded(logits(["O", "I", "I", "O"])) == [(1, 3, 0)], "I after O starts a span (as CoNLL does)"
    assert decoded(logits(["O", "O", "B", "I"])) == [(2, 4, 0)], "a span running to the end is closed"
    assert decoded(logits(["O", "O"])) == []
    assert decoded(np.zeros((0, 2, 3), dtype=np.float32)) == []


def test_labels_may_overlap_and_spans_are_ordered_by_start_then_label() -> None:
    x = logits(["O", "B", "I", "O"], label=1)
    x[[2, 3], 0] = 0.0
    x[2, 0, B] = x[3, 0, I] = 5.0  # label 0: pieces 2..3
    assert decoded(x) == [(1, 3, 1), (2, 4, 0)]
    x[1, 0] = 0.0
    x[1, 0, B] = 5.0  # label 0 also at piece 1: same start, label 0 first
    x[2, 0] = 0.0
    x[2, 0, O] = 5.0
    assert decoded(x) == [(1, 2, 0), (1, 3, 1), (3, 4, 0)]


def test_confidence_is_the_mean_max_probability_over_the_span() -> None:
    x = logits(["B", "I"], strength=0.0)
    x[0, 0, B] = np.log(3.0)  # softmax([0, ln 3, 0]) -> B with probability 3/5
    x[1, 0, I] = np.log(8.0)  # -> I with probability 8/10
    x[:, 1, O] = 5.0
    spans, conf = decode_entities(x)
    assert spans.tolist() == [[0, 2, 0]]
    assert conf[0] == pytest.approx((0.6 + 0.8) / 2, abs=1e-6)


def test_span_negation_is_the_sigmoid_of_the_mean_logit() -> None:
    neg = np.array([2.0, -2.0, 4.0, 0.0], dtype=np.float32)
    p = span_negation(neg, np.array([[0, 2, 0], [2, 3, 0], [3, 4, 0]], dtype=np.int64))
    assert p.tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-4.0)), 0.5])
    assert span_negation(neg, np.zeros((0, 3), dtype=np.int64)).shape == (0,)


def test_candidate_pairs_by_hand() -> None:
    spans = np.array([
        [0, 1, DRUG],      # 0
        [2, 4, DOSAGE],    # 1: near drug 0 and drug 3
        [5, 6, PROBLEM],   # 2: not an attribute, never a head
        [8, 9, DRUG],      # 3
        [50, 52, DOSAGE],  # 4: too far from every drug
        [8, 9, DOSAGE],    # 5: same span as drug 3: not paired with it
    ], dtype=np.int64)
    heads, tails = candidate_pairs(spans, DEFAULT_SCHEMA, max_distance=10)
    assert list(zip(heads.tolist(), tails.tolist(), strict=True)) == [(1, 0), (1, 3), (5, 0)]
    none_h, none_t = candidate_pairs(spans[[0, 3]], DEFAULT_SCHEMA, 10)
    assert none_h.size == none_t.size == 0, "no attributes, no pairs"
