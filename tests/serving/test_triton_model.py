"""Torch threads per Triton model instance (``clinie.serving.triton_model``)."""

from __future__ import annotations

import json
from pathlib import Path

from clinie.serving.triton_model import instance_count, threads_per_instance


def test_instance_count_sums_the_instance_groups() -> None:
    cfg = {"instance_group": [{"kind": "KIND_CPU", "count": 2}, {"kind": "KIND_CPU", "count": 1}]}
    assert instance_count(json.dumps(cfg)) == 3
    assert instance_count(cfg) == 3
    assert instance_count("{}") == 1


def test_the_cpus_are_divided_among_the_instances_unless_set() -> None:
    assert threads_per_instance(0, instances=2, cpus=2) == 1
    assert threads_per_instance(0, instances=2, cpus=16) == 8
    assert threads_per_instance(0, instances=4, cpus=2) == 1  # never 0
    assert threads_per_instance(3, instances=2, cpus=16) == 3  # CLINIE_TRITON_THREADS wins


def test_exported_config_runs_two_instances(tiny_repository: Path) -> None:
    text = (tiny_repository / "clinie_ie" / "config.pbtxt").read_text()
    assert "instance_group [ { kind: KIND_CPU count: 2 } ]" in text
