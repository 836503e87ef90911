"""`clinie train`: a bad config or a missing corpus is one coded line; --train/--dev replace the config's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli.main import app

DOC = '{"id": "n1", "text": "Started metformin.", "entities": [], "relations": []}\n'


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["train", *args])
    return result.exit_code, result.stdout, result.stderr


def _one_line(err: str, code: str) -> None:
    assert err.count("\n") == 1 and f"[{code}]" in err and "Traceback" not in err, err


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text(DOC)
    return path


def test_missing_config(tmp_path: Path) -> None:
    code, _, err = _run("--config", str(tmp_path / "nope.toml"))
    assert code == 1
    _one_line(err, "E301")
    assert "nope.toml" in err


def test_config_not_toml(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("train = [\n")
    code, _, err = _run("--config", str(tmp_path / "bad.toml"))
    assert code == 1
    _one_line(err, "E307")


def test_config_without_train_or_with_a_bad_value(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('dev = ["x.jsonl"]\n')
    code, _, err = _run("--config", str(tmp_path / "c.toml"))
    assert code == 1
    _one_line(err, "E307")
    assert "train" in err
    (tmp_path / "c.toml").write_text('train = ["x.jsonl"]\ndev = ["x.jsonl"]\nepochs = "many"\n')
    code, _, err = _run("--config", str(tmp_path / "c.toml"))
    _one_line(err, "E307")
    assert "epochs" in err


def test_missing_corpus_is_named(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "c.toml").write_text(f'train = ["{corpus}"]\ndev = ["{tmp_path}/gone-dev.jsonl"]\n')
    code, _, err = _run("--config", str(tmp_path / "c.toml"))
    assert code == 1
    _one_line(err, "E301")
    assert "dev corpus" in err and "gone-dev.jsonl" in err


def test_missing_init_from(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "c.toml").write_text(f'train = ["{corpus}"]\ndev = ["{corpus}"]\n')
    code, _, err = _run("--config", str(tmp_path / "c.toml"), "--init-from", str(tmp_path / "no-model"))
    assert code == 1
    _one_line(err, "E101")


def test_train_and_dev_options_replace_the_config(tmp_path: Path, corpus: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_train(cfg: Any, resume: bool = False) -> dict[str, Any]:
        seen["cfg"] = cfg
        return {"ok": True}

    monkeypatch.setattr("clinie.model.train.train", fake_train)
    (tmp_path / "c.toml").write_text('train = ["../shared/nowhere.jsonl"]\ndev = ["../shared/nowhere.jsonl"]\n')
    code, out, err = _run("--config", str(tmp_path / "c.toml"), "--train", str(corpus), "--train", str(corpus),
                          "--dev", str(corpus))
    assert code == 0, err
    assert [c.path for c in seen["cfg"].corpora] == [str(corpus), str(corpus)]
    assert seen["cfg"].dev == [str(corpus)]
    assert '"ok": true' in out
    # a missing --dev path is named as the dev corpus: the option, not the config, is what was checked
    code, _, err = _run("--config", str(tmp_path / "c.toml"), "--train", str(corpus), "--dev", "gone.jsonl")
    _one_line(err, "E301")
    assert "gone.jsonl" in err
