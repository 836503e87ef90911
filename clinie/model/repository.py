"""Triton model repository layout: ``<repository>/<name>/config.pbtxt`` and numbered version directories.

Each version directory is a complete clinie model directory (weights, config, labels, tokenizer) plus Triton's
``model.py`` and a model card, so the label map always travels with the version that produced it.
"""

from __future__ import annotations

import os
from pathlib import Path

from clinie.errors import ErrorCode, ModelError

DEFAULT_MODEL_NAME = "clinie_ie"


def default_repository() -> Path:
    """``$CLINIE_MODEL_REPOSITORY`` or the ``model_repo/`` shipped beside the package."""
    env = os.environ.get("CLINIE_MODEL_REPOSITORY")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "model_repo"


def versions(repository: Path, name: str = DEFAULT_MODEL_NAME) -> list[int]:
    base = repository / name
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit() and (p / "weights.pt").exists()
    )


def version_dir(repository: Path, name: str = DEFAULT_MODEL_NAME, version: int | str | None = None) -> Path:
    """The directory of ``version`` (default: the highest one)."""
    available = versions(repository, name)
    if not available:
        raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"no versions of {name} in {repository}")
    v = int(version) if version not in (None, "", "latest") else available[-1]
    if v not in available:
        raise ModelError(ErrorCode.MODEL_NOT_FOUND, f"{name} version {v} not in {repository} (have {available})")
    return repository / name / str(v)
