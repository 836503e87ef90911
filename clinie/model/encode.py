"""The one encode step of training and inference: a document -> windows of word pieces, per the model's config.

``clinie.model.features.make_example`` (training targets) and ``clinie.pipeline`` (inference) both call
:func:`preprocess`, so the pieces, windows, offsets and network inputs a model is trained on are built by the same
code as the ones it is served.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinie.document import Document
from clinie.model.config import ModelConfig
from clinie.model.runtime import NoteInputs
from clinie.text.segment import EncodedNote, encode_note
from clinie.text.tokenize import WordPieceTokenizer


@dataclass(frozen=True)
class Prepared:
    """A document with its encoding: piece offsets, word starts and segments, and the network's inputs."""

    doc: Document
    encoded: EncodedNote

    @property
    def inputs(self) -> NoteInputs:
        return NoteInputs.of(self.encoded)


def preprocess(doc: Document, tokenizer: WordPieceTokenizer, config: ModelConfig) -> Prepared:
    """Tokenise ``doc.text`` and cut it into the model's windows (size, overlap and line-break marker from
    ``config``)."""
    marker = tokenizer.token_id(config.line_break_token) if config.line_break_token else None
    encoded = encode_note(
        tokenizer(doc.text),
        max_tokens=config.max_segment_tokens,
        overlap=config.segment_overlap,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
        line_break_id=marker,
    )
    return Prepared(doc, encoded)
