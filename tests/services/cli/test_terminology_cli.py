"""``clinie terminology build --rxnorm PATH --snomed PATH`` on the made-up fixtures in tests/normalize/fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clinie.normalize.terminology import RXNORM_SYSTEM, SNOMED_SYSTEM, Terminology
from services.cli.main import app

FIXTURES = Path(__file__).parents[2] / "normalize" / "fixtures"
RXNORM = FIXTURES / "rxnorm"
SNOMED = FIXTURES / "snomed"
SNOMED_VERSION = f"{SNOMED_SYSTEM}/900000000000207008/version/20990101"


def test_cli_terminology_build(tmp_path: Path) -> None:
    out, lic = tmp_path / "icd.json.gz", tmp_path / "licensed.json.gz"
    result = CliRunner().invoke(app, ["terminology", "build", "--out", str(out), "--rxnorm", str(RXNORM),
                                      "--snomed", str(SNOMED), "--terminology-out", str(lic)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["licensed"][RXNORM_SYSTEM]["version"] == "20AA_240101F"
    assert report["licensed"][SNOMED_SYSTEM]["version"] == SNOMED_VERSION
    assert Terminology.load(lic).versions[SNOMED_SYSTEM] == SNOMED_VERSION


def test_cli_terminology_build_dense(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--dense`` writes the versioned dense index (the encoder is stubbed: the real build takes minutes)."""
    import numpy as np

    from clinie.normalize import dense as dense_mod

    def fake_build(scope: str = "common", **_: object) -> dense_mod.DenseIndex:
        return dense_mod.DenseIndex(np.eye(2, 384, dtype=np.float16), np.array(["I10", "R52"]),
                                    np.array(["Essential (primary) hypertension", "Pain, unspecified"]),
                                    {"format": dense_mod.DENSE_FORMAT, "scope": scope, "terms": 2, "encoder": "stub"})

    monkeypatch.setattr(dense_mod.DenseIndex, "build", staticmethod(fake_build))
    out, dn = tmp_path / "icd.json.gz", tmp_path / "dense.npz"
    result = CliRunner().invoke(app, ["terminology", "build", "--out", str(out), "--dense", "--dense-out", str(dn)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["dense"]["format"] == dense_mod.DENSE_FORMAT and report["dense_index"] == str(dn)
    assert list(dense_mod.DenseIndex.load(dn).codes) == ["I10", "R52"]
    bad = CliRunner().invoke(app, ["terminology", "build", "--out", str(out), "--dense", "--dense-scope", "some"])
    assert bad.exit_code != 0
