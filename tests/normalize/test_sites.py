"""Generic findings coded by the site the note gives them (``clinie.normalize.sites``)."""

from __future__ import annotations

import pytest

from clinie.document import Document, Entity
from clinie.normalize.sites import SitedFindings, default_sited

pytest.importorskip("simple_icd_10_cm")

TABLE = SitedFindings.from_rows([("effusion", "knee", "M25.469"), ("pain", "knee", "M25.569"),
                                 ("pain", "lower back", "M54.50"), ("stone", "ureter", "N20.1")])


def mention(text: str, word: str, nth: int = 0) -> tuple[Document, Entity]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(word, start + 1)
    e = Entity(id="T1", label="Problem", start=start, end=start + len(word))
    return Document(id="d", text=text, entities=(e,)), e


def test_site_of_the_sentence_then_the_line_with_its_side() -> None:
    doc, e = mention("Examination of the right knee: Ecchymosis noted. Effusion present.", "Effusion")
    assert TABLE.site_of(doc, e) == ("knee", "right")  # not in its sentence: the line gives it
    assert TABLE.code(doc, e) == "M25.461"
    doc, e = mention("She has pain in her lower back and her left knee.", "pain")
    assert TABLE.site_of(doc, e) == ("lower back", None) and TABLE.code(doc, e) == "M54.50"  # the nearer site


def test_no_site_or_unknown_pair_leaves_it_to_the_other_tiers() -> None:
    doc, e = mention("He reports pain.\nRight knee exam normal.", "pain")
    assert TABLE.code(doc, e) is None  # another line
    doc, e = mention("Effusion of the ureter.", "Effusion")
    assert TABLE.code(doc, e) is None  # (effusion, ureter) never coded
    doc, e = mention("A stone in the left ureter.", "stone")
    assert TABLE.code(doc, e) == "N20.1"  # no side in ICD-10-CM: the code as is


def test_the_packaged_table_loads_and_its_codes_name_no_side() -> None:
    from clinie.normalize.icd import unsided_variant

    table = default_sited()
    assert len(table.codes) > 200 and "pain" in table.forms
    assert all(unsided_variant(code) == code for code in table.codes.values())


def test_unsided_variant_is_the_inverse_of_lateral_variant() -> None:
    from clinie.normalize.icd import lateral_variant, unsided_variant

    for sided in ("M25.561", "M25.472", "S83.411A", "M17.12"):
        assert lateral_variant(unsided_variant(sided), "right" if sided in ("M25.561", "S83.411A") else "left") \
            == sided
    assert unsided_variant("R52") == "R52"
