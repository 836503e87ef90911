"""The one encode step of training and inference: note text -> windows of word pieces, per the model's config."""

from __future__ import annotations

from clinie.model.config import ModelConfig
from clinie.text.segment import EncodedNote, encode_note
from clinie.text.tokenize import WordPieceTokenizer


def encode_text(text: str, tokenizer: WordPieceTokenizer, config: ModelConfig) -> EncodedNote:
    marker = tokenizer.token_id(config.line_break_token) if config.line_break_token else None
    return encode_note(
        tokenizer(text),
        max_tokens=config.max_segment_tokens,
        overlap=config.segment_overlap,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
        line_break_id=marker,
    )
