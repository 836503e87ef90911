"""Engine, sessions and schema migrations for the PostgreSQL store (SQLAlchemy 2 + psycopg 3 + Alembic).

``migrate(url)`` runs ``alembic upgrade head`` in-process with a configuration built in code (no alembic.ini
needed); migrations live in ``clinie/storage/migrations``. Concurrent ``migrate`` calls (several consumers
starting at once) are serialised by a PostgreSQL advisory lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x636C696E6965  # "clinie": pg_advisory_lock key for migrations


DRIVER = "postgresql+psycopg"


def normalize_url(url: str) -> str:
    """The one database-URL normaliser: any ``postgres://`` / ``postgresql[+driver]://`` URL as a
    ``postgresql+psycopg://`` SQLAlchemy URL (the store needs PostgreSQL and psycopg 3); anything else is a
    ``ValueError`` (the message never shows the password)."""
    u = make_url(url)
    if u.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {u.render_as_string(hide_password=True)}")
    return u.set(drivername=DRIVER).render_as_string(hide_password=False)


def make_engine(url: str, **kw: Any) -> Engine:
    """A synchronous engine (psycopg 3) with ``pool_pre_ping``; ``kw`` goes to ``create_engine``."""
    kw.setdefault("pool_pre_ping", True)
    return create_engine(normalize_url(url), **kw)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; use ``with factory() as s, s.begin(): ...`` for one transaction."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the latest)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            try:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()
