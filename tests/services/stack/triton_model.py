"""A tiny Python-backend identity model for tritonserver, and a tritonclient call to it."""

from __future__ import annotations

import textwrap
from pathlib import Path

IDENTITY_CONFIG = """\
name: "identity"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

IDENTITY_MODEL = textwrap.dedent(
    """\
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
            return responses
    """
)


def write_identity_repo(root: Path) -> Path:
    """A model repository holding one Python-backend model, ``identity`` (FP32 vector in, same out)."""
    model = root / "identity"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(IDENTITY_CONFIG)
    (model / "1" / "model.py").write_text(IDENTITY_MODEL)
    return root


def infer_identity(http_url: str, values: list[float]) -> list[float]:
    """Send ``values`` through the identity model with tritonclient.http and return what comes back."""
    import numpy as np
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=http_url)
    try:
        inp = httpclient.InferInput("INPUT0", [len(values)], "FP32")
        inp.set_data_from_numpy(np.asarray(values, dtype=np.float32))
        result = client.infer("identity", [inp])
        out = result.as_numpy("OUTPUT0")
        assert out is not None
        return [float(v) for v in out]
    finally:
        client.close()
