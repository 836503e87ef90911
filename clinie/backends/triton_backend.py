"""Triton backend: one HTTP inference request per note (all its windows), notes sent concurrently.

Triton's dynamic batcher groups concurrent notes into one encoder pass on the server.
Connection failures and timeouts raise :class:`TransientError` so callers retry instead of dropping work.

tritonclient's HTTP client runs on gevent and must be used from the thread that created it, so each calling thread
(the consumer runs inference in a worker-thread pool) gets a client of its own.
"""

from __future__ import annotations

import threading
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

    def ready(self) -> bool:
        try:
            return bool(self.client.is_model_ready(self.model_name, self.requested_version))
        except Exception:
            return False

    def _transient(self, exc: BaseException) -> TransientError:
        return TransientError(ErrorCode.BACKEND_UNAVAILABLE, f"Triton at {self.url}: {type(exc).__name__}")

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
            except Exception as exc:
                raise self._transient(exc) from exc
            results.append(output_from_arrays({n: res.as_numpy(n) for n in OUTPUTS}))
        return results

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()
