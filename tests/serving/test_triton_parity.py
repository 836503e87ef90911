"""The exported model served by the real tritonserver predicts exactly what the in-process backend predicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.backends.torch_backend import TorchBackend
from clinie.backends.triton_backend import TritonBackend
from clinie.document import Document
from clinie.model.checkpoint import load_model_spec
from clinie.model.repository import version_dir
from clinie.pipeline import Annotator

from .parity import assert_same_predictions

pytestmark = pytest.mark.integration

TEXTS = [
    "Metformin 500 mg PO BID was started for diabetes.",
    "No chest pain. " * 40 + "Aspirin 81 mg daily for prevention.",
    "",
    "Rash after amoxicillin; stopped.",
]


def test_triton_and_torch_backends_agree(triton, tiny_repository: Path) -> None:  # type: ignore[no-untyped-def]
    vdir = version_dir(tiny_repository)
    config, schema, tokenizer = load_model_spec(vdir)
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]
    local = TorchBackend.from_dir(vdir)
    remote = TritonBackend(triton.http_url, "clinie_ie", schema)
    assert remote.resolve_version() == "1"
    ours = Annotator(local, tokenizer, config).annotate(docs)
    theirs = Annotator(remote, tokenizer, config).annotate(docs)
    remote.close()
    assert any(d.entities for d in ours)
    assert len(ours[1].segments) > 1, "the long note spans several windows in one request"
    assert_same_predictions(ours, theirs)
