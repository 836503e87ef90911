"""tritonserver (bundled in nvidia-pytriton) with a Python-backend identity model: infer, restart, infer."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.stack.process import StackError
from services.stack.triton import TritonServer, triton_ready, tritonserver_available
from tests.services.stack.triton_model import infer_identity

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not tritonserver_available(), reason="tritonserver (nvidia-pytriton) not installed"),
]


def test_start_infer_restart_infer_stop(identity_repo: Path, tmp_path: Path) -> None:
    server = TritonServer(identity_repo, tmp_path / "triton")
    assert server.http_url == f"127.0.0.1:{server.http_port}"
    assert server.grpc_url == f"127.0.0.1:{server.grpc_port}"
    assert server.metrics_url == f"http://127.0.0.1:{server.metrics_port}/metrics"
    with server:
        assert (tmp_path / "triton" / "backends" / "python" / "triton_python_backend_stub").is_file()
        assert infer_identity(server.http_url, [1.0, 2.5, -3.0]) == [1.0, 2.5, -3.0]
        ports = (server.http_port, server.grpc_port, server.metrics_port)
        server.restart()
        assert (server.http_port, server.grpc_port, server.metrics_port) == ports
        assert infer_identity(server.http_url, [4.0]) == [4.0]
    assert not server.is_running
    assert not triton_ready(server.http_url)


def test_broken_model_fails_fast_with_log(identity_repo: Path, tmp_path: Path) -> None:
    (identity_repo / "identity" / "1" / "model.py").write_text("raise ImportError('no such thing')\n")
    server = TritonServer(identity_repo, tmp_path / "triton")
    with pytest.raises(StackError) as info:
        server.start(timeout=60)
    assert "no such thing" in info.value.log_tail
    assert not server.is_running
