"""Label map files: every mistake in one is E106 naming the file; drop lists and drop_unmapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinie.convert.labelmap import LabelMap, load_label_map
from clinie.errors import ErrorCode, InvalidInputError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("body", "expect"), [
    ("entities = [\n", "not TOML"),
    ('colour = "red"\n', "unknown key(s) colour"),
    ('[attributes]\nNeg = "refuted"\n', "unknown flag(s) refuted"),
    ('discontinuous = "merge"\n', "discontinuous"),
    ("[entities]\nDisease = 3\n", "[entities]"),
    ('drop = "Age"\n', "drop must be a list"),
])
def test_mistakes_are_e106_with_the_file(tmp_path: Path, body: str, expect: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(body)
    with pytest.raises(InvalidInputError) as info:
        load_label_map(path)
    assert info.value.code == ErrorCode.BAD_LABEL_MAP
    assert str(path) in info.value.message and expect in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_label_map(tmp_path / "none.toml")
    assert info.value.code == ErrorCode.BAD_LABEL_MAP and "no such label map" in info.value.message


def test_mapping_drop_and_drop_unmapped(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('drop = ["Age"]\ndrop_relations = ["BEFORE"]\n[entities]\nDisease = "Problem"\n'
                    '[linked_entities]\nStrength = "Dosage"\n[relations]\nMODIFY = "*"\n')
    lmap = load_label_map(path)
    assert lmap.entity_label("Disease") == ("Problem", False)
    assert lmap.entity_label("Strength") == ("Dosage", True)
    assert lmap.entity_label("Age") == (None, False)
    assert lmap.relation_label("BEFORE") is None and lmap.relation_label("MODIFY") == "*"
    with pytest.raises(InvalidInputError):
        lmap.entity_label("Lab")
    path.write_text('drop_unmapped = true\n[entities]\nDisease = "Problem"\n')
    assert load_label_map(path).entity_label("Lab") == (None, False)
    assert load_label_map(path).relation_label("X") is None


def test_identity_and_attribute_values() -> None:
    lmap = LabelMap()
    assert lmap.entity_label("Anything") == ("Anything", False) and lmap.relation_label("R") == "R"
    assert lmap.flag("POLARITY", "NEG") == "negated" and lmap.flag("POLARITY", "POS") is None
    assert lmap.flag("Negated", None) == "negated" and lmap.flag("Subject", "family") == "subject=family"


def test_the_shipped_maccrobat_map_loads() -> None:
    lmap = load_label_map(REPO / "configs" / "label-maps" / "maccrobat.toml")
    assert lmap.source == "maccrobat" and lmap.entities["Sign_symptom"] == "Problem"
    assert lmap.linked_entities["Administration"] == "Route"
