"""Triton backend: one inference request per note (all its windows), notes sent concurrently, over HTTP or gRPC.

Triton's dynamic batcher groups concurrent notes into one encoder pass on the server.
Failures raise :class:`TransientError` so callers retry instead of dropping work. Which one depends on whether
Triton answers its readiness check afterwards: no -> ``BACKEND_UNAVAILABLE`` (retry as long as it takes); yes ->
``BACKEND_REQUEST_FAILED`` (the server is fine but *this* note failed or timed out: the caller bounds the attempts).

Transport: ``protocol="http"`` (tritonclient's HTTP client, port 8000 by default) or ``"grpc"`` (port 8001), both
optionally over TLS (:class:`TritonTls`: a CA bundle to verify the server, and a client certificate and key for
mutual TLS). tritonclient's HTTP client runs on gevent and must be used from the thread that created it, so each
calling thread (the consumer runs inference in a worker-thread pool) gets a client of its own; gRPC clients are
kept per thread the same way.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clinie.errors import ErrorCode, ModelError, TransientError
from clinie.model.runtime import NoteInputs, NoteOutput
from clinie.schema import LabelSchema
from clinie.serving.triton_model import INPUTS, OUTPUTS, output_from_arrays

Protocol = Literal["http", "grpc"]


@dataclass(frozen=True)
class TritonTls:
    """TLS to Triton. ``ca_file``: PEM bundle that signed the server certificate (default: the system CAs);
    ``cert_file`` and ``key_file``: the client certificate and its key, for mutual TLS."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        return ctx


class TritonBackend:
    def __init__(self, url: str, model_name: str, schema: LabelSchema, model_version: str = "",
                 timeout_s: float = 60.0, concurrency: int = 8, protocol: Protocol = "http",
                 tls: TritonTls | None = None) -> None:
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be 'http' or 'grpc', not {protocol!r}")
        if protocol == "grpc":
            import tritonclient.grpc as grpcclient

            self._lib: Any = grpcclient
        else:
            import tritonclient.http as httpclient

            self._lib = httpclient
        self.protocol: Protocol = protocol
        self.tls = tls
        self.url = url.split("://", 1)[-1]  # the clients want host:port
        self.model_name = model_name
        self.requested_version = model_version
        self.schema = schema
        self.timeout_s = timeout_s
        self.concurrency = concurrency
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self.model_version = model_version or "latest"

    def _new_client(self) -> Any:
        tls = self.tls
        if self.protocol == "grpc":
            kwargs: dict[str, Any] = {}
            if tls is not None:
                kwargs = {"ssl": True, "root_certificates": str(tls.ca_file) if tls.ca_file else None,
                          "private_key": str(tls.key_file) if tls.key_file else None,
                          "certificate_chain": str(tls.cert_file) if tls.cert_file else None}
            return self._lib.InferenceServerClient(url=self.url, **kwargs)
        kwargs = {}
        if tls is not None:
            options: dict[str, str] = {}
            if tls.ca_file is not None:
                options["ca_certs"] = str(tls.ca_file)
            if tls.cert_file is not None:
                options["certfile"] = str(tls.cert_file)
                options["keyfile"] = str(tls.key_file or tls.cert_file)
            kwargs = {"ssl": True, "ssl_options": options}
        return self._lib.InferenceServerClient(url=self.url, concurrency=self.concurrency,
                                               connection_timeout=self.timeout_s, network_timeout=self.timeout_s,
                                               **kwargs)

    @property
    def client(self) -> Any:
        """This thread's InferenceServerClient."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def resolve_version(self) -> str:
        """Ask the server which version it serves (the highest ready one unless pinned)."""
        try:
            if self.protocol == "grpc":
                meta = self.client.get_model_metadata(self.model_name, self.requested_version, as_json=True)
            else:
                meta = self.client.get_model_metadata(self.model_name, self.requested_version)
        except Exception as exc:  # tritonclient raises its own exception types
            raise self._transient(exc) from exc
        versions = sorted(meta.get("versions", []), key=lambda v: int(v) if str(v).isdigit() else 0)
        if not versions:
            raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"Triton serves no version of {self.model_name}")
        self.model_version = self.requested_version or str(versions[-1])
        return self.model_version

    def server_ready(self, timeout: float = 2.0) -> bool:
        """Is the server up? HTTP: ``GET /v2/health/ready`` with urllib (not the gevent client, which may be
        mid-failure); gRPC: ``ServerReady`` on a fresh channel."""
        if self.protocol == "grpc":
            try:
                client = self._new_client()
            except Exception:
                return False
            try:
                return bool(client.is_server_ready(client_timeout=timeout))
            except Exception:
                return False
            finally:
                with contextlib.suppress(Exception):
                    client.close()
        scheme = "https" if self.tls is not None else "http"
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
        if self.tls is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self.tls.ssl_context()))
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(f"{scheme}://{self.url}/v2/health/ready", timeout=timeout) as resp:
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

    def _inputs(self, note: NoteInputs) -> tuple[list[Any], list[Any]]:
        binary = {"binary_data": True} if self.protocol == "http" else {}
        inputs = []
        for name, arr in zip(INPUTS, (note.input_ids, note.attention_mask, note.keep_mask), strict=True):
            a = np.ascontiguousarray(arr[None], dtype=np.int64)
            t = self._lib.InferInput(name, list(a.shape), "INT64")
            t.set_data_from_numpy(a, **binary)
            inputs.append(t)
        outputs = [self._lib.InferRequestedOutput(n, **binary) for n in OUTPUTS]
        return inputs, outputs

    def _send(self, client: Any, note: NoteInputs) -> Callable[[], Any]:
        """Start one request; the returned callable waits for its result (raises on failure or timeout)."""
        inputs, outputs = self._inputs(note)
        if self.protocol == "http":
            pending = client.async_infer(self.model_name, inputs, model_version=self.requested_version,
                                         outputs=outputs, timeout=int(self.timeout_s * 1e6))
            return lambda: pending.get_result(timeout=self.timeout_s)
        future: Future[Any] = Future()

        def done(result: Any, error: Any) -> None:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        client.async_infer(self.model_name, inputs, done, model_version=self.requested_version, outputs=outputs,
                           client_timeout=self.timeout_s)
        return lambda: future.result(timeout=self.timeout_s + 5)  # the client's deadline fires first

    def infer(self, notes: list[NoteInputs]) -> list[NoteOutput]:
        client = self.client
        pending = []
        for note in notes:
            try:
                pending.append(self._send(client, note))
            except Exception as exc:
                raise self._transient(exc) from exc
        results = []
        for wait in pending:
            try:
                res = wait()
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
