"""Normalisation and assertion stages that run after extraction (see docs/normalization.md).

- ``clinie.normalize.stage.Normalizer``: ICD-10-CM codes for Problem/Reason/ADE, ingredient for Drug.
- ``clinie.normalize.context.AssertionTagger``: ConText-style uncertain/hypothetical/historical/subject flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clinie.document import Document


def default_stages(index_path: str | Path | None = None) -> list[Callable[[Document], Document]]:
    """Assertions then normalisation; the ICD-10-CM index is loaded from ``index_path`` (``clinie terminology
    build``) or built from the packaged data."""
    from clinie.normalize.context import AssertionTagger
    from clinie.normalize.icd import IcdIndex, default_index
    from clinie.normalize.stage import Normalizer

    index = IcdIndex.load(index_path) if index_path is not None else default_index()
    return [AssertionTagger(), Normalizer(index)]
