"""Triton backend: one HTTP inference request per note (all its windows), notes sent concurrently.

Triton's dynamic batcher groups concurrent notes into one encoder pass on the server.
Failures raise :class:`TransientError` so callers retry instead of dropping work. Which one depends on whether
Triton answers its readiness check afterwards: no -> ``BACKEND_UNAVAILABLE`` (retry as long as it takes); yes ->
``BACKEND_REQUEST_FAILED`` (the server is fine but *this* note failed or timed out: the caller bounds the attempts).

tritonclient's HTTP client runs on gevent and must be used from the thread that created it, so each calling thread
(the consumer runs inference in a worker-thread pool) gets a client of its own.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from clinie.errors import ErrorCode, ModelError, TransientError
from clinie.model.runtime import NoteInputs, NoteOutput
from clinie.schema import LabelSchema
from clinie.serving.triton_model import INPUTS, OUTPUTS, output_from_arrays


class TritonBackend:
    def __init__(self, url: str, model_name: str, schema: LabelSchema, model_version: str = "",
                 timeout_s: float = 60.0, concurrency: int = 8) -> None:
        import tritonclient.http as httpclient

        self._http = httpclient
        self.url = url
        self.model_name = model_name
        self.requested_version = model_version
        self.schema = schema
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self.model_version = model_version or "latest"

    @property
    def client(self) -> Any:
        """This thread's InferenceServerClient."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._http.InferenceServerClient(url=self.url, concurrency=self.concurrency,
                                                      connection_timeout=self.timeout_s,
                                                      network_timeout=self.timeout_s)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def resolve_version(self) -> str:
        """Ask the server which version it serves (the highest ready one unless pinned)."""
        try:
            meta = self.client.get_model_metadata(self.model_name, self.requested_version)
        except Exception as exc:  # tritonclient raises its own exception types
            raise self._transient(exc) from exc
        versions = sorted(meta.get("versions", []), key=lambda v: int(v) if str(v).isdigit() else 0)
        if not versions:
            raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"Triton serves no version of {self.model_name}")
        self.model_version = self.requested_version or str(versions[-1])
        return self.model_version

    def server_ready(self, timeout: float = 2.0) -> bool:
        """``GET /v2/health/ready`` with urllib (not the gevent client, which may be mid-failure)."""
        url = self.url if "://" in self.url else f"http://{self.url}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{url}/v2/health/ready", timeout=timeout) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _transient(self, exc: BaseException) -> TransientError:
        return TransientError(ErrorCode.BACKEND_UNAVAILABLE, f"Triton at {self.url}: {type(exc).__name__}")

    def _request_failed(self, exc: BaseException) -> TransientError:
        """Classify a failed inference request: Triton down (unbounded retries) or this request (bounded)."""
        self._drop_client()  # its connection may still carry the abandoned request
        if self.server_ready(timeout=2.0):
            return TransientError(ErrorCode.BACKEND_REQUEST_FAILED,
                                  f"Triton at {self.url} is ready but the request failed: {type(exc).__name__}")
        return self._transient(exc)

    def infer(self, notes: list[NoteInputs]) -> list[NoteOutput]:
        client = self.client
        pending = []
        for note in notes:
            inputs = []
            for name, arr in zip(INPUTS, (note.input_ids, note.attention_mask, note.keep_mask), strict=True):
                a = np.ascontiguousarray(arr[None], dtype=np.int64)
                t = self._http.InferInput(name, list(a.shape), "INT64")
                t.set_data_from_numpy(a, binary_data=True)
                inputs.append(t)
            outputs = [self._http.InferRequestedOutput(n, binary_data=True) for n in OUTPUTS]
            try:
                pending.append(client.async_infer(self.model_name, inputs, model_version=self.requested_version,
                                                       outputs=outputs, timeout=int(self.timeout_s * 1e6)))
            except Exception as exc:
                raise self._transient(exc) from exc
        results = []
        for p in pending:
            try:
                res = p.get_result(timeout=self.timeout_s)
            except BaseException as exc:  # gevent.Timeout is a BaseException
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise self._request_failed(exc) from exc
            results.append(output_from_arrays({n: res.as_numpy(n) for n in OUTPUTS}))
        return results

    def _drop_client(self) -> None:
        client = getattr(self._local, "client", None)
        if client is None:
            return
        self._local.client = None
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        with contextlib.suppress(Exception):  # closing a broken connection may fail; the client is gone anyway
            client.close()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()
