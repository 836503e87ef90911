"""Whole-note word-piece tokenization with exact character offsets (no truncation, ever)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer


@dataclass(frozen=True)
class NoteTokens:
    """Word pieces of a whole note, without special tokens.

    ``offsets[i] = (start, end)`` is the character span of piece ``i`` in the note text.
    ``sentence_start[i]`` is True where piece ``i`` begins a sentence or a line: a preferred segment boundary.
    ``word_start[i]`` is True where piece ``i`` begins a word of the pre-tokenizer (whitespace and punctuation split
    words, so "insulin-induced" is three words); False for "##" continuation pieces.
    ``line_start[i]`` is True where a line break lies between piece ``i - 1`` and piece ``i`` (and for piece 0).
    """

    ids: NDArray[np.int64]
    offsets: NDArray[np.int64]
    sentence_start: NDArray[np.bool_]
    word_start: NDArray[np.bool_]
    line_start: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


_SENTENCE_END = {".", "?", "!", ";", ":"}


class WordPieceTokenizer:
    """Thin wrapper over a Hugging Face *fast* tokenizer file (``tokenizer.json``)."""

    def __init__(self, tokenizer_file: str | Path) -> None:
        tok = Tokenizer.from_file(str(tokenizer_file))
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        vocab = tok.get_vocab()
        self.cls_id = int(vocab["[CLS]"])
        self.sep_id = int(vocab["[SEP]"])
        self.pad_id = int(vocab["[PAD]"])
        self._vocab = vocab
        self.file = Path(tokenizer_file)

    def token_id(self, token: str) -> int:
        """The id of a whole vocabulary entry (e.g. a marker such as ``[SEP]``); KeyError if absent."""
        return int(self._vocab[token])

    @classmethod
    def from_dir(cls, directory: str | Path) -> WordPieceTokenizer:
        return cls(Path(directory) / "tokenizer.json")

    def __call__(self, text: str) -> NoteTokens:
        enc = self._tok.encode(text, add_special_tokens=False)
        n = len(enc.ids)
        ids = np.asarray(enc.ids, dtype=np.int64).reshape(n)
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(n, 2)
        starts = np.zeros(n, dtype=bool)
        lines = np.zeros(n, dtype=bool)
        if n:
            starts[0] = lines[0] = True
            prev_end = offsets[:-1, 1]
            nxt_start = offsets[1:, 0]
            for i in range(1, n):
                gap = text[prev_end[i - 1] : nxt_start[i - 1]]
                prev_piece = text[offsets[i - 1, 0] : offsets[i - 1, 1]]
                lines[i] = "\n" in gap
                starts[i] = lines[i] or (prev_piece in _SENTENCE_END and gap != "")
        word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64).reshape(n)
        word_start = np.ones(n, dtype=bool)
        if n:
            word_start[1:] = word_ids[1:] != word_ids[:-1]
        return NoteTokens(ids=ids, offsets=offsets, sentence_start=starts, word_start=word_start, line_start=lines)
