"""Fixtures for the stack tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.stack.triton_model import write_identity_repo


@pytest.fixture
def identity_repo(tmp_path: Path) -> Path:
    return write_identity_repo(tmp_path / "model_repo")
