"""HTTP and gRPC to the real tritonserver give identical predictions, in clear and over mutual TLS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinie.backends.triton_backend import TritonBackend, TritonTls
from clinie.document import Document
from clinie.errors import TransientError
from clinie.model.checkpoint import load_model_spec
from clinie.model.encode import preprocess
from clinie.model.repository import version_dir
from clinie.pipeline import Annotator

from .parity import assert_same_predictions
from .tls import TlsProxy, make_pki

pytestmark = pytest.mark.integration

TEXTS = [
    "Metformin 500 mg PO BID was started for diabetes.",
    "No chest pain. " * 40 + "Aspirin 81 mg daily for prevention.",
    "",
    "Rash after amoxicillin; stopped. Lisinopril 10 mg daily for hypertension.",
]


def _run(backend: TritonBackend, repo: Path) -> tuple[list[Document], list[list[np.ndarray]]]:
    config, _, tokenizer = load_model_spec(version_dir(repo))
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]
    assert backend.resolve_version() == "1"
    # one note per request, one request at a time: the dynamic batcher then runs every note alone, so the float
    # results do not depend on which notes it happened to group (that would differ in the last bits)
    raw = [backend.infer([preprocess(d, tokenizer, config).inputs])[0] for d in docs]
    extractor = Annotator(backend, tokenizer, config)
    annotated = [extractor.annotate([d])[0] for d in docs]
    backend.close()
    arrays = [[o.entities, o.entity_scores, o.relations, o.relation_scores] for o in raw]
    return annotated, arrays


def _assert_identical(a: tuple[list[Document], list[list[np.ndarray]]],
                      b: tuple[list[Document], list[list[np.ndarray]]]) -> None:
    assert_same_predictions(a[0], b[0], score_tol=1e-9)
    for xs, ys in zip(a[1], b[1], strict=True):
        for x, y in zip(xs, ys, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y), "the same bytes back over both transports"


def test_grpc_and_http_give_identical_predictions(triton, tiny_repository: Path) -> None:  # type: ignore[no-untyped-def]
    _, schema, _ = load_model_spec(version_dir(tiny_repository))
    http = _run(TritonBackend(triton.http_url, "clinie_ie", schema, protocol="http"), tiny_repository)
    grpc = _run(TritonBackend(triton.grpc_url, "clinie_ie", schema, protocol="grpc"), tiny_repository)
    assert any(d.entities for d in http[0])
    _assert_identical(http, grpc)


def test_both_transports_over_mutual_tls(triton, tiny_repository: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, schema, _ = load_model_spec(version_dir(tiny_repository))
    pki = make_pki(tmp_path / "pki")
    tls = TritonTls(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    plain = _run(TritonBackend(triton.http_url, "clinie_ie", schema), tiny_repository)
    with TlsProxy(triton.http_url, pki) as https, TlsProxy(triton.grpc_url, pki) as grpcs:
        for url, protocol in ((https.url, "http"), (grpcs.url, "grpc")):
            backend = TritonBackend(url, "clinie_ie", schema, protocol=protocol, tls=tls, timeout_s=20)  # type: ignore[arg-type]
            assert backend.server_ready()
            _assert_identical(plain, _run(backend, tiny_repository))
            # no client certificate: the server refuses the handshake, which reads as Triton unavailable
            anonymous = TritonBackend(url, "clinie_ie", schema, protocol=protocol,  # type: ignore[arg-type]
                                      tls=TritonTls(ca_file=pki.ca), timeout_s=5)
            assert not anonymous.server_ready()
            with pytest.raises(TransientError):
                anonymous.resolve_version()
            anonymous.close()
