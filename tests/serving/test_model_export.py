"""``clinie export`` writes the version's decision thresholds with it (config.json and the model card)."""

from __future__ import annotations

import json
from pathlib import Path

from clinie.model.repository import version_dir


def test_exported_version_carries_its_thresholds(tiny_repository: Path) -> None:
    vdir = version_dir(tiny_repository)
    config = json.loads((vdir / "config.json").read_text())
    assert (config["relation_threshold"], config["negation_threshold"]) == (0.5, 0.5)
    card = (vdir / "MODEL_CARD.md").read_text()
    assert "a relation at probability >= 0.5, a negated entity at >= 0.5" in card
