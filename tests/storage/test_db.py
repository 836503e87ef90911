"""Engine creation and migrations against the real PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from clinie.storage.db import alembic_config, make_engine, migrate, normalize_url
from clinie.storage.models import Base


def test_migrate_is_idempotent_and_matches_models(engine: Engine, pg_url: str) -> None:
    migrate(pg_url)  # second run (the fixture ran it once): a no-op
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        assert ctx.get_current_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert compare_metadata(ctx, Base.metadata) == []


def test_tables_and_indexes(engine: Engine) -> None:
    insp = inspect(engine)
    assert {"fhir_resources", "source_documents"} <= set(insp.get_table_names())
    names = {ix["name"] for ix in insp.get_indexes("fhir_resources")}
    expected = {ix.name for ix in Base.metadata.tables["fhir_resources"].indexes}
    assert names == expected
    assert insp.get_pk_constraint("fhir_resources")["constrained_columns"] == ["resource_type", "id"]


def test_make_engine_uses_psycopg_and_pre_ping() -> None:
    eng = make_engine("postgresql://user:p%40ss@db.example:5432/clinie")
    try:
        assert eng.url.drivername == "postgresql+psycopg"
        assert eng.url.password == "p@ss"
        assert eng.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        eng.dispose()
    assert normalize_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    with pytest.raises(ValueError):
        normalize_url("sqlite://")
