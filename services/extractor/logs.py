"""Structured JSON logs. Only ids, counts, codes and timings are logged — never note or mention text (PHI).

:func:`configure_logging` makes *every* line the service writes a JSON object: our loggers, FastStream's (which
installs its own coloured handler at import), uvicorn's, uncaught exceptions in the main thread and in worker
threads, and gevent's hub (tritonclient's HTTP client), which otherwise prints tracebacks straight to stderr.
Tracebacks are reduced to the exception type: their messages and frames may quote input.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
#: loggers that libraries give handlers of their own; ours take over (propagate to the JSON root handler)
THIRD_PARTY = ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka",
               "httpx", "urllib3", "gevent")

log = logging.getLogger("clinie.uncaught")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__  # the type only: messages may quote input
        return json.dumps(out, default=str).replace("\n", "\\n")  # one line, whatever a message holds


def _log_uncaught(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None,
                  where: str) -> None:
    log.error("uncaught exception", exc_info=(exc_type, exc, tb) if exc is not None else None,
              extra={"where": where, "error_type": exc_type.__name__})


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    _log_uncaught(exc_type, exc, tb, "main")


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback,
                  f"thread {args.thread.name}" if args.thread is not None else "thread")


def _gevent_print_exception(self: Any, context: Any, exc_type: Any, exc: Any, tb: Any) -> None:
    name = getattr(exc_type, "__name__", "exception")
    log.error("gevent greenlet failed", extra={"where": "gevent", "error_type": name})


def configure_logging(level: str = "INFO", stream: TextIO = sys.stderr) -> None:
    import faststream  # noqa: F401  # it sets up its own handler at import: import first, then take over

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in THIRD_PARTY:
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    for noisy in ("aiokafka", "faststream", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    sys.excepthook = _sys_hook
    threading.excepthook = _thread_hook
    try:
        from gevent.hub import Hub
    except ImportError:  # pragma: no cover - gevent comes with tritonclient[http]
        return
    Hub.print_exception = _gevent_print_exception  # type: ignore[method-assign]
