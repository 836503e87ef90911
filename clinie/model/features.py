"""Training targets for one gold document, aligned to its word pieces.

Per label, an O/B/I tag sequence (labels may overlap, so each has its own head). Labels the document is not
annotated for are masked out of the loss: a PHEE sentence says nothing about Problems. Relation targets cover every
(attribute, Drug) candidate pair among the gold entities within the model's distance limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clinie.document import Document
from clinie.model.config import ModelConfig
from clinie.model.decode import B, I, candidate_pairs
from clinie.model.encode import preprocess
from clinie.model.runtime import NoteInputs
from clinie.schema import LabelSchema
from clinie.text.tokenize import WordPieceTokenizer


@dataclass(frozen=True)
class TrainExample:
    doc_id: str
    inputs: NoteInputs
    ner_tags: NDArray[np.int64]  # [T, num_labels]
    label_mask: NDArray[np.bool_]  # [num_labels] label annotated in this document
    negation: NDArray[np.float32]  # [T]
    negation_mask: NDArray[np.bool_]  # [T] pieces inside a gold negatable entity
    spans: NDArray[np.int64]  # [G, 3] gold spans in pieces
    pair_heads: NDArray[np.int64]  # [P] rows of spans
    pair_tails: NDArray[np.int64]
    pair_targets: NDArray[np.float32]  # [P]
    num_windows: int
    num_tokens: int
    lost_relations: int  # gold relations outside candidate pairs (too far apart)


def piece_span(offsets: NDArray[np.int64], start: int, end: int) -> tuple[int, int] | None:
    """Pieces overlapping characters [start, end): (first, last + 1), or None."""
    hit = np.flatnonzero((offsets[:, 0] < end) & (offsets[:, 1] > start))
    if hit.size == 0:
        return None
    return int(hit[0]), int(hit[-1]) + 1


def make_example(doc: Document, tokenizer: WordPieceTokenizer, config: ModelConfig,
                 schema: LabelSchema) -> TrainExample:
    prepared = preprocess(doc, tokenizer, config)  # the same encode step as inference
    enc = prepared.encoded
    t = enc.num_tokens
    n_labels = len(schema.entity_labels)
    tags = np.zeros((t, n_labels), dtype=np.int64)
    label_mask = np.array([doc.annotated(lab) for lab in schema.entity_labels], dtype=bool)
    neg = np.zeros(t, dtype=np.float32)
    neg_mask = np.zeros(t, dtype=bool)
    spans: list[tuple[int, int, int]] = []
    span_of: dict[str, int] = {}
    for e in sorted(doc.entities, key=lambda e: (e.start, -e.end)):
        if e.label not in schema.index:
            continue
        ps = piece_span(enc.offsets, e.start, e.end)
        if ps is None:
            continue
        lab = schema.index[e.label]
        s, en = ps
        tags[s, lab] = B
        tags[s + 1 : en, lab] = I
        if e.label in schema.negatable_labels:
            neg[s:en] = float(e.negated)
            neg_mask[s:en] = True
        span_of[e.id] = len(spans)
        spans.append((s, en, lab))
    span_arr = np.asarray(spans, dtype=np.int64).reshape(-1, 3)
    heads, tails = candidate_pairs(span_arr, schema, config.max_relation_distance)
    gold_pairs = {(span_of[r.head], span_of[r.tail]) for r in doc.relations if r.head in span_of and r.tail in span_of}
    targets = np.array([(h, tl) in gold_pairs for h, tl in zip(heads.tolist(), tails.tolist(), strict=True)],
                       dtype=np.float32)
    annotated_heads = label_mask[span_arr[heads, 2]] if heads.size else np.zeros(0, dtype=bool)
    heads, tails, targets = heads[annotated_heads], tails[annotated_heads], targets[annotated_heads]
    lost = len(gold_pairs) - int(targets.sum())
    return TrainExample(
        doc_id=doc.id,
        inputs=prepared.inputs,
        ner_tags=tags,
        label_mask=label_mask,
        negation=neg,
        negation_mask=neg_mask,
        spans=span_arr,
        pair_heads=heads,
        pair_tails=tails,
        pair_targets=targets,
        num_windows=int(enc.input_ids.shape[0]),
        num_tokens=t,
        lost_relations=lost,
    )
