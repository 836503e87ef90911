"""Issue 12 (8): every line the extractor writes is JSON (FastStream, uvicorn, uncaught exceptions in threads,
gevent's hub), and the metrics/health server binds to loopback unless told otherwise."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from services.extractor.logs import THIRD_PARTY, configure_logging
from services.settings import ExtractorSettings

SECRET = "Zyxwvut Qwertyson"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    import faststream  # noqa: F401
    from gevent.hub import Hub

    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate, logging.getLogger(n).level)
             for n in THIRD_PARTY}
    hooks = (sys.excepthook, threading.excepthook, Hub.print_exception)
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for n, (handlers, propagate, lvl) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.setLevel(lvl)
        sys.excepthook, threading.excepthook, Hub.print_exception = hooks  # type: ignore[method-assign]


def test_every_line_is_json_and_tracebacks_carry_no_text(captured: io.StringIO) -> None:
    import gevent

    try:
        raise ValueError(SECRET)
    except ValueError:
        logging.getLogger("faststream").exception("faststream handler failed")
        logging.getLogger("uvicorn.error").exception("uvicorn failed")

    def boom() -> None:
        raise RuntimeError(SECRET)

    t = threading.Thread(target=boom, name="worker")
    t.start()
    t.join()
    g = gevent.spawn(boom)
    g.join()
    sys.excepthook(KeyError, KeyError(SECRET), None)
    lines = captured.getvalue().splitlines()
    assert len(lines) >= 5
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {r["logger"] for r in records} >= {"faststream", "uvicorn.error", "clinie.uncaught"}
    assert any(r.get("where") == "gevent" for r in records)
    assert any(r.get("where") == "thread worker" for r in records)
    assert SECRET not in captured.getvalue()


def test_metrics_bind_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("CLINIE_METRICS_HOST", raising=False)
    assert ExtractorSettings().metrics_host == "127.0.0.1"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert ExtractorSettings().metrics_host == "0.0.0.0"
    monkeypatch.setenv("CLINIE_METRICS_HOST", "10.1.2.3")
    assert ExtractorSettings().metrics_host == "10.1.2.3"
