"""Training and inference encode a note with the same step (``clinie.model.encode.preprocess``)."""

from __future__ import annotations

import numpy as np
import pytest

from clinie.document import Document, Entity
from clinie.model.config import ModelConfig
from clinie.model.encode import preprocess
from clinie.model.features import make_example
from clinie.schema import DEFAULT_SCHEMA
from clinie.text.tokenize import WordPieceTokenizer

TEXT = "MEDICATIONS\nMetformin 500 mg PO BID.\n" + "No chest pain. " * 20 + "\nAspirin 81 mg daily."


@pytest.mark.parametrize("line_break_token", [None, "[SEP]"])
def test_make_example_sees_exactly_the_inputs_inference_sends(tokenizer: WordPieceTokenizer,
                                                              line_break_token: str | None) -> None:
    config = ModelConfig(max_segment_tokens=32, segment_overlap=8, line_break_token=line_break_token)
    start = TEXT.index("Metformin")
    doc = Document(id="d", text=TEXT, labels=("Drug",), entities=(Entity("T1", "Drug", start, start + 9),))
    example = make_example(doc, tokenizer, config, DEFAULT_SCHEMA)
    prepared = preprocess(doc, tokenizer, config)
    assert prepared.encoded.input_ids.shape[0] > 1, "several windows"
    for name in ("input_ids", "attention_mask", "keep_mask"):
        assert np.array_equal(getattr(example.inputs, name), getattr(prepared.inputs, name)), name
    assert example.num_tokens == prepared.encoded.num_tokens == int(prepared.inputs.keep_mask.sum())
    assert example.num_windows == prepared.encoded.input_ids.shape[0]
    # the gold span is tagged at the pieces whose offsets cover it
    first, last = example.spans[0, 0], example.spans[0, 1] - 1
    assert prepared.encoded.offsets[first, 0] == start
    assert prepared.encoded.offsets[last, 1] == start + 9


def test_line_break_marker_is_seen_but_never_kept(tokenizer: WordPieceTokenizer) -> None:
    doc = Document(id="d", text=TEXT)
    plain = preprocess(doc, tokenizer, ModelConfig())
    marked = preprocess(doc, tokenizer, ModelConfig(line_break_token="[SEP]"))
    assert int(marked.inputs.attention_mask.sum()) > int(plain.inputs.attention_mask.sum())
    assert np.array_equal(marked.encoded.offsets, plain.encoded.offsets)
