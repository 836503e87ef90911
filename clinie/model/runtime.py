"""Run the network on encoded notes and decode its outputs; the one code path of every backend.

Both the in-process backend and Triton's ``model.py`` call :func:`run_notes`, so for the same weights they return
the same entities and relations (the parity test holds them to it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from clinie.model.decode import candidate_pairs, decode_entities, span_negation
from clinie.model.network import ClinieNet
from clinie.text.segment import EncodedNote


@dataclass(frozen=True)
class NoteInputs:
    """One note's windows: three ``[S, L]`` arrays (see ``clinie.text.segment.EncodedNote``)."""

    input_ids: NDArray[np.int64]
    attention_mask: NDArray[np.int64]
    keep_mask: NDArray[np.int64]

    @classmethod
    def of(cls, encoded: EncodedNote) -> NoteInputs:
        return cls(encoded.input_ids, encoded.attention_mask, encoded.keep_mask)


@dataclass(frozen=True)
class NoteOutput:
    """Piece-level predictions for one note.

    ``entities``: [E, 3] (piece start, piece end exclusive, label index); ``entity_scores``: [E, 2]
    (confidence, negation probability); ``relations``: [R, 2] (head entity row, tail entity row) for *every*
    candidate pair the network scored; ``relation_scores``: [R], their probabilities. No threshold is applied here:
    ``clinie.pipeline.postprocess`` applies the model version's thresholds (``ModelConfig``).
    """

    entities: NDArray[np.int64]
    entity_scores: NDArray[np.float32]
    relations: NDArray[np.int64]
    relation_scores: NDArray[np.float32]

    @classmethod
    def empty(cls) -> NoteOutput:
        return cls(np.zeros((0, 3), np.int64), np.zeros((0, 2), np.float32), np.zeros((0, 2), np.int64),
                   np.zeros(0, np.float32))


def stack_notes(notes: list[NoteInputs]) -> dict[str, torch.Tensor]:
    """Concatenate the windows of several notes, right-padding to the longest window."""
    seq_len = max(n.input_ids.shape[1] for n in notes)
    rows = sum(n.input_ids.shape[0] for n in notes)
    ids = np.zeros((rows, seq_len), dtype=np.int64)
    att = np.zeros((rows, seq_len), dtype=np.int64)
    keep = np.zeros((rows, seq_len), dtype=np.int64)
    note_index = np.zeros(rows, dtype=np.int64)
    r = 0
    for k, n in enumerate(notes):
        s, length = n.input_ids.shape
        ids[r : r + s, :length] = n.input_ids
        att[r : r + s, :length] = n.attention_mask
        keep[r : r + s, :length] = n.keep_mask
        note_index[r : r + s] = k
        r += s
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(att),
        "keep_mask": torch.from_numpy(keep),
        "note_index": torch.from_numpy(note_index),
    }


@torch.inference_mode()
def run_notes(net: ClinieNet, notes: list[NoteInputs], device: str | torch.device = "cpu") -> list[NoteOutput]:
    """Predict entities (with negation probabilities) and score every relation candidate for a batch of notes."""
    outputs: list[NoteOutput | None] = [None] * len(notes)
    live = [k for k, n in enumerate(notes) if int(n.keep_mask.sum()) > 0]
    for k in range(len(notes)):
        if k not in live:
            outputs[k] = NoteOutput.empty()
    if not live:
        return [o or NoteOutput.empty() for o in outputs]
    net.eval()
    batch = {key: v.to(device) for key, v in stack_notes([notes[k] for k in live]).items()}
    out = net(**batch)
    ner = out.ner_logits.float().cpu().numpy()
    neg = out.negation_logits.float().cpu().numpy()
    lengths = out.lengths.cpu().numpy()
    decoded = []
    pair_note, head_spans, tail_spans, head_labels = [], [], [], []
    for b in range(len(live)):
        length = int(lengths[b])
        spans, conf = decode_entities(ner[b, :length])
        negp = span_negation(neg[b, :length], spans)
        heads, tails = candidate_pairs(spans, net.schema, net.config.max_relation_distance)
        decoded.append((spans, conf, negp, heads, tails))
        pair_note.append(np.full(heads.shape[0], b, dtype=np.int64))
        head_spans.append(spans[heads, :2] if heads.size else np.zeros((0, 2), np.int64))
        tail_spans.append(spans[tails, :2] if tails.size else np.zeros((0, 2), np.int64))
        head_labels.append(spans[heads, 2] if heads.size else np.zeros(0, np.int64))
    logits = net.score_pairs(
        out.hidden,
        torch.from_numpy(np.concatenate(pair_note)).to(device),
        torch.from_numpy(np.concatenate(head_spans)).to(device),
        torch.from_numpy(np.concatenate(tail_spans)).to(device),
        torch.from_numpy(np.concatenate(head_labels)).to(device),
    )
    probs = torch.sigmoid(logits.float()).cpu().numpy()
    offset = 0
    for b, k in enumerate(live):
        spans, conf, negp, heads, tails = decoded[b]
        p = probs[offset : offset + heads.shape[0]]
        offset += heads.shape[0]
        outputs[k] = NoteOutput(
            entities=spans,
            entity_scores=(np.stack([conf, negp], axis=1).astype(np.float32) if spans.size
                           else np.zeros((0, 2), np.float32)),
            relations=np.stack([heads, tails], axis=1).astype(np.int64),
            relation_scores=p.astype(np.float32),
        )
    return [o if o is not None else NoteOutput.empty() for o in outputs]
