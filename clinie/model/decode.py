"""Numpy post-processing shared by every backend: logits -> piece-level entity spans and relation candidates."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from clinie.schema import LabelSchema

O, B, I = 0, 1, 2  # noqa: E741


def decode_entities(ner_logits: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Decode per-label O/B/I logits ``[T, num_labels, 3]`` into spans ``[E, 3]`` = (start, end, label).

    An ``I`` after ``O`` starts a span (as the CoNLL evaluator does). Confidence is the mean max-probability
    over the span. Spans are ordered by start, then label.
    """
    t, n_labels, _ = ner_logits.shape
    z = ner_logits - ner_logits.max(axis=-1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=-1, keepdims=True)
    tags = probs.argmax(axis=-1)  # [T, L]
    conf = probs.max(axis=-1)
    spans: list[tuple[int, int, int]] = []
    scores: list[float] = []
    for lab in range(n_labels):
        col = tags[:, lab]
        start = -1
        for i in range(t + 1):
            tag = col[i] if i < t else O
            if start >= 0 and tag != I:
                spans.append((start, i, lab))
                scores.append(float(conf[start:i, lab].mean()))
                start = -1
            if tag == B or (tag == I and start < 0):
                start = i
    if not spans:
        return np.zeros((0, 3), dtype=np.int64), np.zeros((0,), dtype=np.float32)
    order = sorted(range(len(spans)), key=lambda k: (spans[k][0], spans[k][2], spans[k][1]))
    return (
        np.asarray([spans[k] for k in order], dtype=np.int64),
        np.asarray([scores[k] for k in order], dtype=np.float32),
    )


def span_negation(neg_logits: NDArray[np.float32], spans: NDArray[np.int64]) -> NDArray[np.float32]:
    """Probability that each span is negated: sigmoid of the mean negation logit over the span."""
    if spans.shape[0] == 0:
        return np.zeros((0,), dtype=np.float32)
    cs = np.concatenate([[0.0], np.cumsum(neg_logits, dtype=np.float64)])
    mean = (cs[spans[:, 1]] - cs[spans[:, 0]]) / np.maximum(spans[:, 1] - spans[:, 0], 1)
    return (1.0 / (1.0 + np.exp(-mean))).astype(np.float32)


def candidate_pairs(
    spans: NDArray[np.int64], schema: LabelSchema, max_distance: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All (attribute, Drug) span index pairs whose starts lie within ``max_distance`` pieces, in any window."""
    drug = schema.index["Drug"]
    attr_ids = {schema.index[a] for a in schema.attribute_labels}
    drugs = np.flatnonzero(spans[:, 2] == drug) if spans.size else np.zeros(0, dtype=np.int64)
    attrs = (
        np.flatnonzero(np.isin(spans[:, 2], list(attr_ids))) if spans.size else np.zeros(0, dtype=np.int64)
    )
    if drugs.size == 0 or attrs.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # only drugs whose start lies within max_distance of the attribute's: linear in the pairs kept, never A x D
    order = np.argsort(spans[drugs, 0], kind="stable")
    drugs = drugs[order]
    drug_starts = spans[drugs, 0]
    lo = np.searchsorted(drug_starts, spans[attrs, 0] - max_distance, side="left")
    hi = np.searchsorted(drug_starts, spans[attrs, 0] + max_distance, side="right")
    counts = hi - lo
    hh = np.repeat(attrs, counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    tt = drugs[np.repeat(lo, counts) + offsets]
    not_same = ~((spans[hh, 0] == spans[tt, 0]) & (spans[hh, 1] == spans[tt, 1]))
    return hh[not_same].astype(np.int64), tt[not_same].astype(np.int64)
