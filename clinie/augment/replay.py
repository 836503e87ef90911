"""A small OpenAI-compatible chat-completions server (stdlib only), and its replay mode: recorded responses served
by request key, so the LLM paths run in tests without network or a model.

    python -m clinie.augment.replay --recordings answers.jsonl --port 8099

A recording line is ``{"key": <request key>, "response": <chat-completions JSON>}`` or ``{"request": <payload>,
"response": ...}`` (the key is computed); ``record_line`` writes one. ``fail_first`` answers the first requests
with HTTP 503 (to exercise the client's retries).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from clinie.augment.llm import request_key

Respond = Callable[[dict[str, Any]], dict[str, Any] | None]


def completion(content: str, model: str = "replay", usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A chat-completions response body."""
    return {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def record_line(payload: dict[str, Any], content: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {"key": request_key(payload), "response": completion(content, str(payload.get("model")), usage)}


def load_recordings(path: str | Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            item = json.loads(line)
            key = item.get("key") or request_key(item["request"])
            out[key] = item["response"]
    return out


class ChatServer:
    """Serves POST .../chat/completions with ``respond(payload)`` (None: 404) on a background thread."""

    def __init__(self, respond: Respond, host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> None:
        self.respond = respond
        self.fail_first = fail_first
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # no request lines (they would carry nothing
                return  # useful, and a proxy log is no place for note text)

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "replay", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length).decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                with server._lock:
                    server.requests += 1
                    failing = server.requests <= server.fail_first
                if failing:
                    self._send(503, {"error": {"message": "unavailable (fail_first)"}})
                    return
                try:
                    body = server.respond(payload)
                except Exception as exc:  # a model error is the client's 500, the server keeps running
                    self._send(500, {"error": {"message": type(exc).__name__}})
                    return
                if body is None:
                    self._send(404, {"error": {"message": "no recorded response", "key": request_key(payload)}})
                else:
                    self._send(200, body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="chat-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> ChatServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replay_server(
    recordings: dict[str, dict[str, Any]], host: str = "127.0.0.1", port: int = 0, fail_first: int = 0
) -> ChatServer:
    return ChatServer(lambda payload: recordings.get(request_key(payload)), host, port, fail_first)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Replay recorded chat-completions responses.")
    parser.add_argument("--recordings", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    server = replay_server(load_recordings(args.recordings), args.host, args.port)
    print(f"replaying {args.recordings} on {server.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
