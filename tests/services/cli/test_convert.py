"""`clinie convert`: the shipped corpora come out byte for byte; bad input ends in one coded line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "convert" / "fixtures"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_brat_with_the_maccrobat_map_writes_the_shipped_file(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "maccrobat-dev.jsonl"
    code, _, err = _run("convert", "brat", str(shared_data / "maccrobat" / "dev"), "--label-map",
                        str(REPO / "configs" / "label-maps" / "maccrobat.toml"), "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == (shared_data / "corpus" / "maccrobat-dev.jsonl").read_bytes()
    assert "converted 20 document(s)" in err


def test_phee_writes_the_shipped_file(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "phee-dev.jsonl"
    code, _, err = _run("convert", "phee", str(shared_data / "phee" / "dev.jsonl"), "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == (shared_data / "corpus" / "phee-dev.jsonl").read_bytes()


def test_to_brat_to_conll_and_back(tmp_path: Path) -> None:
    code, jsonl, err = _run("convert", "brat", str(FIXTURES / "brat" / "clinie"), "--source", "mine",
                            "--labels", "Drug,Dosage")
    assert code == 0, err
    (tmp_path / "in.jsonl").write_text(jsonl)
    assert _run("convert", "to-brat", str(tmp_path / "in.jsonl"), str(tmp_path / "brat"))[0] == 0
    code, again, err = _run("convert", "brat", str(tmp_path / "brat"), "--source", "mine", "--labels", "Drug,Dosage")
    assert code == 0 and again == jsonl, err
    code, _, err = _run("convert", "to-conll", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "x.conll"),
                        "--text-dir", str(tmp_path / "txt"))
    assert code == 0 and "wrote 2 document(s)" in err
    code, from_conll, err = _run("convert", "conll", str(tmp_path / "x.conll"), "--text", str(tmp_path / "txt"),
                                 "--source", "mine", "--labels", "Drug,Dosage")
    assert code == 0 and from_conll.replace(', "relations": []', "") == jsonl.replace(
        ', "relations": [{"label": "Dosage-Drug", "head": "T2", "tail": "T1"}]', ""), err


@pytest.mark.parametrize(("ann", "expect"), [
    ("T1\tProblem 0 4\n", "[E104]"),
    ("T1\tProblem 0 4\tache\n", "[E105]"),
])
def test_bad_ann_is_one_line_with_file_and_line(tmp_path: Path, ann: str, expect: str) -> None:
    (tmp_path / "n.txt").write_text("pain and SECRET")
    (tmp_path / "n.ann").write_text(ann)
    code, out, err = _run("convert", "brat", str(tmp_path))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and expect in err and "n.ann:1:" in err
    assert "SECRET" not in err and "Traceback" not in err


def test_missing_label_map_and_folder(tmp_path: Path) -> None:
    code, _, err = _run("convert", "brat", str(FIXTURES / "brat" / "clinie"), "--label-map", str(tmp_path / "no.toml"))
    assert code == 1 and "[E106]" in err and err.count("\n") == 1
    code, _, err = _run("convert", "brat", str(tmp_path / "nothing"))
    assert code == 1 and "[E301]" in err
