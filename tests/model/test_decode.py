from __future__ import annotations

import numpy as np

from clinie.model.decode import candidate_pairs
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
