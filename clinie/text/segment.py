"""Split a whole note's word pieces into overlapping windows that fit the encoder.

Each window holds at most ``max_tokens - 2`` pieces (room for [CLS] and [SEP]). A window ends at a sentence or line
start when one lies in its second half, so the encoder rarely sees a cut sentence. Consecutive windows overlap by
``overlap`` pieces for context; every piece is *kept* (its representation used) in exactly one window — the one in
which it is farther from the edge — so the note-level sequence is the note's pieces in order, none lost, none doubled.
Nothing is truncated: a note of any length yields as many windows as it needs.

Word-piece tokenizers drop whitespace, so a model would not see where a line ends ("MEDICATIONS" above a list, one
list item after another). With ``line_break_id`` set, a marker piece is inserted before every piece that starts a
new line: the encoder sees it, but it is never *kept*, so the note-level sequence and the offsets are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clinie.document import Segment
from clinie.text.tokenize import NoteTokens


@dataclass(frozen=True)
class Window:
    token_start: int  # first piece in the window (inclusive)
    token_end: int  # exclusive
    keep_start: int  # pieces [keep_start, keep_end) are represented by this window
    keep_end: int


def plan_windows(tokens: NoteTokens, max_tokens: int, overlap: int) -> list[Window]:
    width = max_tokens - 2
    if width < 8:
        raise ValueError("max_tokens must leave room for at least 8 word pieces")
    overlap = max(0, min(overlap, width // 2))
    n = len(tokens)
    if n == 0:
        return [Window(0, 0, 0, 0)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + width, n)
        if end < n:
            # prefer to end where a sentence/line starts, if that keeps at least half the window
            lo = start + width // 2
            candidates = np.flatnonzero(tokens.sentence_start[lo + 1 : end + 1])
            if candidates.size:
                end = lo + 1 + int(candidates[-1])
        spans.append((start, end))
        if end >= n:
            break
        start = max(end - overlap, start + 1)
    windows = []
    for k, (s, e) in enumerate(spans):
        keep_s = 0 if k == 0 else (s + spans[k - 1][1]) // 2
        keep_e = n if k == len(spans) - 1 else (spans[k + 1][0] + e) // 2
        windows.append(Window(s, e, keep_s, keep_e))
    return windows


@dataclass(frozen=True)
class EncodedNote:
    """Model inputs for one note: windows as rows plus the mask of kept positions.

    ``input_ids``/``attention_mask``/``keep_mask`` have shape ``[num_windows, seq_len]``; the positions where
    ``keep_mask`` is 1, read row by row, are the note's pieces ``0..n-1`` in order. ``offsets`` maps piece -> chars.
    """

    input_ids: NDArray[np.int64]
    attention_mask: NDArray[np.int64]
    keep_mask: NDArray[np.int64]
    offsets: NDArray[np.int64]
    segments: tuple[Segment, ...]
    word_start: NDArray[np.bool_]

    @property
    def num_tokens(self) -> int:
        return int(self.offsets.shape[0])


def insert_line_breaks(tokens: NoteTokens, marker_id: int) -> tuple[NoteTokens, NDArray[np.bool_]]:
    """``tokens`` with a marker piece before each piece that starts a line (after the first), and the mask of the
    real pieces in the result. A marker has a zero-width offset at the start of the piece it precedes."""
    n = len(tokens)
    if n == 0:
        return tokens, np.ones(0, dtype=bool)
    breaks = tokens.line_start.copy()
    breaks[0] = False
    pos = np.arange(n) + np.cumsum(breaks)  # where real piece i lands
    total = n + int(breaks.sum())
    real = np.zeros(total, dtype=bool)
    real[pos] = True
    ids = np.full(total, marker_id, dtype=np.int64)
    ids[pos] = tokens.ids
    offsets = np.zeros((total, 2), dtype=np.int64)
    offsets[pos] = tokens.offsets
    marker_pos = pos[breaks] - 1
    offsets[marker_pos, 0] = offsets[marker_pos, 1] = tokens.offsets[breaks, 0]
    sentence_start = np.zeros(total, dtype=bool)
    sentence_start[pos] = tokens.sentence_start & ~breaks
    sentence_start[marker_pos] = True  # a window may start at the marker of a new line
    line_start = np.zeros(total, dtype=bool)
    line_start[marker_pos] = True
    word_start = np.ones(total, dtype=bool)
    word_start[pos] = tokens.word_start
    return NoteTokens(ids=ids, offsets=offsets, sentence_start=sentence_start, word_start=word_start,
                      line_start=line_start), real


def encode_note(
    tokens: NoteTokens, *, max_tokens: int, overlap: int, cls_id: int, sep_id: int, pad_id: int,
    line_break_id: int | None = None,
) -> EncodedNote:
    real_tokens = tokens
    real: NDArray[np.bool_] | None = None
    if line_break_id is not None:
        tokens, real = insert_line_breaks(tokens, line_break_id)
    windows = plan_windows(tokens, max_tokens, overlap)
    seq_len = max(w.token_end - w.token_start for w in windows) + 2
    rows = len(windows)
    input_ids = np.full((rows, seq_len), pad_id, dtype=np.int64)
    attention = np.zeros((rows, seq_len), dtype=np.int64)
    keep = np.zeros((rows, seq_len), dtype=np.int64)
    segments = []
    n = len(tokens)
    for r, w in enumerate(windows):
        length = w.token_end - w.token_start
        input_ids[r, 0] = cls_id
        input_ids[r, 1 : 1 + length] = tokens.ids[w.token_start : w.token_end]
        input_ids[r, 1 + length] = sep_id
        attention[r, : length + 2] = 1
        keep[r, 1 + (w.keep_start - w.token_start) : 1 + (w.keep_end - w.token_start)] = 1
        if real is not None:
            keep[r, 1 : 1 + length] &= real[w.token_start : w.token_end]
        if n:
            char_start = int(tokens.offsets[w.token_start, 0])
            char_end = int(tokens.offsets[w.token_end - 1, 1])
        else:
            char_start = char_end = 0
        segments.append(Segment(r, w.token_start, w.token_end, char_start, char_end))
    return EncodedNote(input_ids, attention, keep, real_tokens.offsets, tuple(segments), real_tokens.word_start)
