"""``clinie terminology build --rxnorm PATH --snomed PATH`` on the made-up fixtures in tests/normalize/fixtures."""

from __future__ import annotations

import json
from pathlib import Path

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
