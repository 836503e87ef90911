"""The Triton Python-backend side of clinie, kept free of ``triton_python_backend_utils``.

Each exported version's ``model.py`` only converts Triton tensors to numpy and calls :class:`TritonAdapter`, which
runs the same :func:`clinie.model.runtime.run_notes` as the in-process backend.

Wire format (one request = one note, every window of it; a leading batch dimension of 1):
inputs ``INPUT_IDS``, ``ATTENTION_MASK``, ``KEEP_MASK``: int64 ``[1, S, L]``;
outputs ``ENTITIES`` int64 ``[1, E, 3]``, ``ENTITY_SCORES`` fp32 ``[1, E, 2]``, ``RELATIONS`` int64 ``[1, R, 2]``,
``RELATION_SCORES`` fp32 ``[1, R]`` (see ``NoteOutput``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clinie.model.checkpoint import load_model
from clinie.model.runtime import NoteInputs, NoteOutput, run_notes

INPUTS = ("INPUT_IDS", "ATTENTION_MASK", "KEEP_MASK")
OUTPUTS = ("ENTITIES", "ENTITY_SCORES", "RELATIONS", "RELATION_SCORES")


def note_from_arrays(arrays: dict[str, NDArray[np.int64]]) -> NoteInputs:
    ids, att, keep = (np.asarray(arrays[k], dtype=np.int64) for k in INPUTS)
    if ids.ndim == 3:  # [1, S, L] with the batch dimension
        ids, att, keep = ids[0], att[0], keep[0]
    return NoteInputs(ids, att, keep)


def output_arrays(out: NoteOutput) -> dict[str, NDArray[np.generic]]:
    return {
        "ENTITIES": out.entities[None].astype(np.int64),
        "ENTITY_SCORES": out.entity_scores[None].astype(np.float32),
        "RELATIONS": out.relations[None].astype(np.int64),
        "RELATION_SCORES": out.relation_scores[None].astype(np.float32),
    }


def output_from_arrays(arrays: dict[str, NDArray[np.generic]]) -> NoteOutput:
    def get(name: str, shape: tuple[int, ...], dtype: type) -> NDArray[np.generic]:
        a: NDArray[np.generic] = np.asarray(arrays[name], dtype=dtype)
        return a[0] if a.ndim == len(shape) + 1 else a.reshape(shape)

    return NoteOutput(
        entities=get("ENTITIES", (-1, 3), np.int64).reshape(-1, 3),  # type: ignore[arg-type]
        entity_scores=get("ENTITY_SCORES", (-1, 2), np.float32).reshape(-1, 2),  # type: ignore[arg-type]
        relations=get("RELATIONS", (-1, 2), np.int64).reshape(-1, 2),  # type: ignore[arg-type]
        relation_scores=get("RELATION_SCORES", (-1,), np.float32).reshape(-1),  # type: ignore[arg-type]
    )


def instance_count(model_config: str | dict[str, object]) -> int:
    """Model instances Triton runs of this model (the sum over ``instance_group``; 1 when not given)."""
    cfg = json.loads(model_config) if isinstance(model_config, str) else model_config
    groups = cfg.get("instance_group")
    total = 0
    for group in groups if isinstance(groups, list) else []:
        if isinstance(group, dict):
            total += int(group.get("count", 1))
    return max(1, total)


def threads_per_instance(env_threads: int, instances: int, cpus: int) -> int:
    """Torch threads for each model instance: ``CLINIE_TRITON_THREADS`` when set (> 0), else the CPUs divided
    among the instances. Several instances of one thread each run batches side by side; one instance with every
    core spends the cores spin-waiting between its operators while the extractor needs them (docs/benchmarks.md)."""
    if env_threads > 0:
        return env_threads
    return max(1, cpus // max(1, instances))


class TritonAdapter:
    def __init__(self, version_dir: str | Path, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.net, _ = load_model(version_dir)

    def execute(self, requests: list[dict[str, NDArray[np.int64]]]) -> list[dict[str, NDArray[np.generic]]]:
        """All requests the dynamic batcher grouped go through the encoder together."""
        notes = [note_from_arrays(r) for r in requests]
        return [output_arrays(o) for o in run_notes(self.net, notes)]
