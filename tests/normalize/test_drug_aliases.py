"""Curated drug forms (classes, supplements, combination brands), US generic names and class-like names kept as
written. Examples are made up for the tests."""

from __future__ import annotations

import pytest

from clinie.normalize.drugs import normalize_drug, us_name


@pytest.mark.parametrize(
    ("mention", "ingredient"),
    [
        ("water pills", "diuretics"),
        ("her blood pressure meds", "antihypertensives"),
        ("pain relievers", "analgesics"),
        ("an immunosuppressive medication", "immunosuppressants"),
        ("Non-steroidal anti-inflammatory drugs", "nsaids"),
        ("a topical retinoid", "retinoids"),
        ("B12 shots", "vitamin b12"),
        ("Vitamin D", "vitamin d"),
        ("iron supplementation", "iron"),
        ("a magnesium supplement", "magnesium"),
        ("fiber supplements", "fiber"),
        ("multi-vitamin", "multivitamin"),
        ("Percocet", "acetaminophen / oxycodone"),
        ("Benicar HCT", "hydrochlorothiazide / olmesartan"),
        ("Synthroid", "levothyroxine"),
        ("viscous lidocaine", "lidocaine"),
        ("shingles vaccine", "zoster vaccine recombinant"),
    ],
)
def test_curated_forms(mention: str, ingredient: str) -> None:
    m = normalize_drug(mention)
    assert m is not None and m.ingredient == ingredient


def test_us_generic_names_for_dictionary_names() -> None:
    assert us_name("ethinylestradiol / norethisterone") == "ethinyl estradiol / norethindrone"
    assert us_name("salbutamol") == "albuterol"
    assert us_name("metformin") == "metformin"  # a US name stays
    m = normalize_drug("paracetamol")
    assert m is not None and m.ingredient == "acetaminophen"


def test_class_written_in_words_keeps_its_name() -> None:
    m = normalize_drug("hormone blocking therapy")
    assert m is not None and m.ingredient == "hormone blocking therapy" and m.source == "as-written"
    assert normalize_drug("zzqx medication") is not None  # a head word makes it a class-like name
    assert normalize_drug("zzqx") is None  # an unknown single name is still left unset
