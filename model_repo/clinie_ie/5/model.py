"""Triton Python backend entry point for a clinie model version (written by `clinie export`).

All logic lives in the clinie package (clinie.serving.triton_model); this file only moves tensors.
The Triton Python environment must have clinie installed (the local stack uses the project's .venv).
"""

import os

import triton_python_backend_utils as pb_utils

from clinie.serving.triton_model import INPUTS, OUTPUTS, TritonAdapter, instance_count, threads_per_instance


class TritonPythonModel:
    def initialize(self, args):
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        threads = threads_per_instance(int(os.environ.get("CLINIE_TRITON_THREADS", "0") or 0),
                                       instance_count(args["model_config"]), len(os.sched_getaffinity(0)))
        self.adapter = TritonAdapter(version_dir, threads=threads)

    def execute(self, requests):
        arrays = [
            {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in INPUTS}
            for request in requests
        ]
        responses = []
        for out in self.adapter.execute(arrays):
            tensors = [pb_utils.Tensor(name, out[name]) for name in OUTPUTS]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        self.adapter = None
