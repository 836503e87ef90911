"""The real ``tritonserver`` (2.51, bundled in the ``nvidia-pytriton`` wheel), run on CPU.

What it takes to run the bundled server with Python-backend models (each piece matters):

* a backend directory with ``python/`` copied from the wheel and the Python-backend stub for *this*
  interpreter's version put inside it (``<backend-dir>/python/triton_python_backend_stub``);
* the interpreter's ``bin/`` first on ``PATH`` (else the stub can't import numpy & co.);
* the wheel's ``nvidia_pytriton.libs`` and the interpreter's ``LIBDIR`` (libpython) on ``LD_LIBRARY_PATH``.

CUDA/NVML warnings in the log are expected on machines without a GPU.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.stack.ports import LOOPBACK, free_port
from services.stack.process import ManagedProcess, StackError

logger = logging.getLogger(__name__)

STUB_NAME = "triton_python_backend_stub"


@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of the pytriton-bundled Triton live for the running interpreter."""

    server: Path
    python_backend: Path
    stub: Path
    libs: Path

    @classmethod
    def locate(cls) -> TritonInstall | None:
        """Find the bundled Triton without importing pytriton; ``None`` when it is not installed."""
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.origin:
            return None
        package = Path(spec.origin).parent
        bundle = package / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return cls(
            server=bundle / "bin" / "tritonserver",
            python_backend=bundle / "backends" / "python",
            stub=bundle / "python_backend_stubs" / version / STUB_NAME,
            libs=package.parent / "nvidia_pytriton.libs",
        )

    def missing(self) -> list[Path]:
        """The required files/directories that are not there."""
        return [p for p in (self.server, self.python_backend, self.stub) if not p.exists()]


def tritonserver_available() -> bool:
    """True when the bundled tritonserver and a Python-backend stub for this interpreter are installed."""
    if not sys.platform.startswith("linux"):
        return False
    install = TritonInstall.locate()
    return install is not None and not install.missing() and os.access(install.server, os.X_OK)


def prepare_backend_dir(backends: Path, install: TritonInstall) -> Path:
    """Create ``backends/python`` (the wheel's Python backend + this interpreter's stub) once."""
    target = backends / "python"
    if (target / STUB_NAME).is_file():
        return backends
    backends.mkdir(parents=True, exist_ok=True)
    staging = backends / ".python.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install.python_backend, staging, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(install.stub, staging / STUB_NAME)
    (staging / STUB_NAME).chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a half-copied backend dir is never mistaken for a ready one
    logger.info("prepared Triton backend directory %s", backends)
    return backends


def _interpreter_libdir() -> str:
    libdir = sysconfig.get_config_var("LIBDIR")
    return str(libdir) if libdir else str(Path(sys.base_prefix) / "lib")


def _prepend(path_list: Iterable[str], current: str | None) -> str:
    parts = [p for p in path_list if p]
    if current:
        parts.append(current)
    return os.pathsep.join(parts)


class TritonServer(ManagedProcess):
    """tritonserver on 127.0.0.1 (HTTP, gRPC, metrics), CPU only, with a Python backend ready.

    ``start()`` returns once ``GET /v2/health/ready`` answers 200 (with ``--strict-readiness`` that
    means every model loaded). ``restart()`` keeps the ports.
    """

    name = "tritonserver"
    default_start_timeout = 300.0  # loading a torch model in the Python-backend stub takes minutes on a busy 2-core box
    default_stop_timeout = 30.0

    def __init__(
        self,
        model_repository: Path,
        workdir: Path,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        super().__init__(workdir)
        self.model_repository = Path(model_repository).resolve()
        self.host = LOOPBACK
        self.http_port = http_port if http_port is not None else free_port()
        self.grpc_port = grpc_port if grpc_port is not None else free_port()
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self.extra_args = list(extra_args)
        self.backend_dir = self.workdir / "backends"

    @property
    def http_url(self) -> str:
        """``127.0.0.1:PORT`` (no scheme), as ``tritonclient.http.InferenceServerClient`` wants it."""
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``127.0.0.1:PORT``, as ``tritonclient.grpc.InferenceServerClient`` wants it."""
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        """Full Prometheus scrape URL: ``http://127.0.0.1:PORT/metrics``."""
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def _install(self) -> TritonInstall:
        install = TritonInstall.locate()
        if install is None:
            raise StackError("tritonserver: nvidia-pytriton is not installed (install the 'stack' extra)")
        missing = install.missing()
        if missing:
            raise StackError(f"tritonserver: missing in the pytriton wheel: {', '.join(map(str, missing))}")
        return install

    def command(self) -> list[str]:
        install = self._install()
        if not self.model_repository.is_dir():
            raise StackError(f"tritonserver: model repository {self.model_repository} is not a directory")
        prepare_backend_dir(self.backend_dir, install)
        return [
            str(install.server),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={self.backend_dir}",
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            f"--metrics-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
            *self.extra_args,
        ]

    def environment(self) -> Mapping[str, str]:
        install = self._install()
        env = dict(os.environ)
        env["PATH"] = _prepend([sysconfig.get_path("scripts")], env.get("PATH"))
        libs = [str(install.libs), _interpreter_libdir()]
        env["LD_LIBRARY_PATH"] = _prepend(libs, env.get("LD_LIBRARY_PATH"))
        return env

    def probe_ready(self) -> bool:
        return triton_ready(self.http_url)


def triton_ready(http_url: str, timeout: float = 1.0) -> bool:
    """True when ``GET http://<http_url>/v2/health/ready`` answers 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(f"http://{http_url}/v2/health/ready", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False
