"""Normalisation and assertion stages that run after extraction (see docs/normalization.md).

- ``clinie.normalize.stage.Normalizer``: ICD-10-CM codes for Problem/Reason/ADE, ingredient for Drug.
- ``clinie.normalize.context.AssertionTagger``: ConText-style uncertain/hypothetical/historical/subject flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clinie.document import Document


def default_stages(
    index_path: str | Path | None = None, terminology_path: str | Path | None = None,
    dense_path: str | Path | None = None, forms_path: str | Path | None = None, use_forms: bool = True,
) -> list[Callable[[Document], Document]]:
    """Assertions then normalisation; the ICD-10-CM index is loaded from ``index_path`` (``clinie terminology
    build``) or built from the packaged data; ``terminology_path``: the RxNorm / SNOMED CT index that
    ``clinie terminology build --rxnorm/--snomed`` made from the user's licensed files (optional); ``dense_path``: the
    dense ICD-10-CM index of ``clinie terminology build --dense`` (dense retrieval on; off without it);
    ``forms_path``: the curated-form index of ``clinie terminology build --forms``, else (with ``use_forms``) built
    from the packaged tables once per process (``clinie.normalize.forms``)."""
    from clinie.normalize.context import AssertionTagger
    from clinie.normalize.icd import IcdIndex, default_index
    from clinie.normalize.stage import Normalizer
    from clinie.normalize.terminology import Terminology

    index = IcdIndex.load(index_path) if index_path is not None else default_index()
    terminology = Terminology.load(terminology_path) if terminology_path is not None else None
    dense = None
    if dense_path is not None:
        from clinie.normalize.dense import DenseIndex

        dense = DenseIndex.load(dense_path)
    forms = None
    if use_forms:
        from clinie.normalize.forms import FormIndex, default_forms

        forms = FormIndex.load(forms_path) if forms_path is not None else default_forms()
    return [AssertionTagger(), Normalizer(index, terminology=terminology, dense=dense, forms=forms)]
