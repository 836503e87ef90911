"""Storage fixtures: the session database (``pg_url``), migrated once, and a session factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from clinie.storage.db import make_engine, migrate, session_factory


@pytest.fixture(scope="session")
def engine(pg_url: str) -> Iterator[Engine]:
    migrate(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture()
def factory(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)
