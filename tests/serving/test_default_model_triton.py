"""The shipped default model, served by the real tritonserver, predicts what the in-process backend predicts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clinie.backends.torch_backend import TorchBackend
from clinie.backends.triton_backend import TritonBackend
from clinie.document import Document
from clinie.model.checkpoint import load_model_spec
from clinie.model.repository import default_repository, version_dir, versions
from clinie.pipeline import Annotator

from .parity import assert_same_predictions

pytestmark = pytest.mark.integration

NOTE = (
    "CHIEF COMPLAINT\n\nFollow-up of hypertension.\n\nMEDICATIONS\n\n"
    "Lisinopril 20 mg PO daily.\nMetformin 500 mg by mouth twice a day for type 2 diabetes.\n\n"
    "REVIEW OF SYSTEMS\n\n• Cardiovascular: Denies chest pain.\n\nASSESSMENT AND PLAN\n\n"
    "Hypertension: continue lisinopril. Ondansetron 4 mg IV q6h PRN nausea.\n"
)


@pytest.fixture(scope="module")
def default_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from services.stack.triton import TritonServer

    server = TritonServer(default_repository(), tmp_path_factory.mktemp("triton-default"))
    server.start()
    yield server.http_url
    server.stop()


def test_default_model_on_triton_matches_the_in_process_backend(default_triton: str) -> None:
    repo = default_repository()
    vdir = version_dir(repo)
    config, schema, tokenizer = load_model_spec(vdir)
    remote = TritonBackend(default_triton, "clinie_ie", schema)
    assert remote.resolve_version() == str(versions(repo)[-1]), "Triton serves the latest shipped version"
    docs = [Document(id="n1", text=NOTE), Document(id="n2", text=NOTE * 6)]
    ours = Annotator(TorchBackend.from_dir(vdir), tokenizer, config).annotate(docs)
    theirs = Annotator(remote, tokenizer, config).annotate(docs)
    remote.close()
    assert len(ours[1].segments) > 1
    assert_same_predictions(ours, theirs)
    labels = {e.label for e in ours[0].entities}
    assert {"Drug", "Dosage", "Frequency", "Problem"} <= labels, labels
