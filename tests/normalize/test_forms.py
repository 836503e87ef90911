"""Nearest curated form (with the bag-of-words stand-in for the MiniLM encoder of tests/normalize/test_dense.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinie.document import Document, Entity
from clinie.normalize.forms import FORMS_FORMAT, FormIndex
from clinie.normalize.icd import IcdIndex
from clinie.normalize.stage import Normalizer
from tests.normalize.test_dense import BagEncoder

FORMS = [("knee pain", "M25.569"), ("right shoulder pain", "M25.511"), ("muscular ankle sprain", "S93.409A"),
         ("sprain", "T14.8XXA")]


@pytest.fixture(scope="module")
def icd_only() -> IcdIndex:
    return IcdIndex.build(())  # no curated table: the test forms decide


def small() -> FormIndex:
    enc = BagEncoder()
    return FormIndex(enc.encode([f for f, _ in FORMS]), np.array([f for f, _ in FORMS]),
                     np.array([c for _, c in FORMS]), {"format": FORMS_FORMAT, "forms": len(FORMS),
                                                       "tables": "test", "encoder": "bag"},
                     encoder=enc)  # type: ignore[arg-type]


def link(norm: Normalizer, text: str) -> str | None:
    e = Entity("T1", "Problem", 0, len(text))
    cand = norm.link_condition(Document("d", text, entities=(e,)), e)
    return cand.code if cand is not None and cand.score >= norm.threshold else None


def test_nearest_is_best_first() -> None:
    near = small().nearest("knee pain zz")
    assert [n.form for n in near][:1] == ["knee pain"] and near[0].cosine > 0.8
    assert [n.cosine for n in near] == sorted((n.cosine for n in near), reverse=True)


def test_unmatched_mention_takes_the_nearest_form_and_its_own_side(icd_only: IcdIndex) -> None:
    norm = Normalizer(icd_only, use_site=False, forms=small(), form_threshold=0.6)
    assert icd_only.exact("knee pain zz") is None
    assert link(norm, "knee pain zz") == "M25.569"
    assert link(norm, "left knee pain zz") == "M25.562"  # the side of the mention, by the laterality step
    # a neighbour's side is not the mention's: right shoulder pain M25.511 -> unspecified shoulder
    assert link(norm, "shoulder pain zz") == "M25.519"


def test_a_neighbour_naming_another_body_site_is_skipped(icd_only: IcdIndex) -> None:
    norm = Normalizer(icd_only, use_site=False, forms=small(), form_threshold=0.5)
    assert icd_only.exact("muscular sprain") is None
    assert small().nearest("muscular sprain")[0].form == "muscular ankle sprain"
    assert link(norm, "muscular sprain") == "T14.8XXA"


def test_below_the_threshold_the_other_retrieval_decides(icd_only: IcdIndex) -> None:
    norm = Normalizer(icd_only, use_site=False, forms=small(), form_threshold=0.99)
    e = Entity("T1", "Problem", 0, 12)
    cand = norm.link_condition(Document("d", "knee pain zz", entities=(e,)), e)
    assert cand is None or cand.source != "form"


def test_a_file_built_from_other_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "forms.npz"
    small().save(path)
    with pytest.raises(ValueError, match="other curated tables"):
        FormIndex.load(path)
