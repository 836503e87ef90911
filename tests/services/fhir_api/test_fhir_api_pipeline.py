"""The API over data written by the real extractor pipeline (parse -> default model -> FHIR mapping -> PostgreSQL).

The pipeline runs in-process (``NoteProcessor`` with the shipped default model) on Synthea notes; queries go over HTTP
to a real uvicorn server, with fhirpy and raw requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import httpx
import pytest
from fhirpy import SyncFHIRClient
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, func, select

from clinie.backends.torch_backend import TorchBackend
from clinie.model.repository import default_repository, version_dir
from clinie.pipeline import Annotator
from clinie.storage.db import make_engine, migrate, session_factory
from clinie.storage.models import FhirResource, SourceDocument
from services.extractor.processor import NoteProcessor
from services.fhir_api import ApiSettings, create_app
from tests.conftest import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

NOTES = 24


@pytest.fixture(scope="module")
def pipeline_db(pg_server: str) -> Iterator[Engine]:
    for url in fresh_database(pg_server):
        migrate(url)
        backend = TorchBackend.from_dir(version_dir(default_repository()), model_version="clinie_ie/default")
        extractor = Annotator(backend, backend.tokenizer, backend.net.config)
        write_engine = make_engine(url)
        processor = NoteProcessor(extractor, session_factory(write_engine), backend.model_version, 200_000)
        src = resources.files("clinie.data").joinpath("synthea_documentreference.ndjson").read_bytes()
        for line in src.splitlines()[:NOTES]:
            processor.process(line)
        write_engine.dispose()
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def base_url(pipeline_db: Engine, settings: ApiSettings, serve_app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    app = create_app(settings.model_copy(update={"database_url": SecretStr(str(pipeline_db.url))}), engine=pipeline_db)
    with serve_app(app) as url:
        yield url


def scalar(engine: Engine, stmt):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def test_pipeline_data_is_searchable(pipeline_db: Engine, base_url: str, make_token) -> None:  # type: ignore[no-untyped-def]
    client = SyncFHIRClient(base_url, authorization=f"Bearer {make_token()}")
    n_cond = scalar(pipeline_db, select(func.count()).where(FhirResource.resource_type == "Condition"))
    assert n_cond > 0
    # paging through more than one page (page size 10 in the test settings) returns every Condition once
    everything = client.resources("Condition").search(_count=10).fetch_all()
    assert len(everything) == n_cond == len({c["id"] for c in everything})
    # everything extracted from one note
    doc = scalar(pipeline_db, select(SourceDocument.id).where(SourceDocument.conditions > 0).limit(1))
    expected = scalar(pipeline_db, select(SourceDocument.conditions).where(SourceDocument.id == doc))
    from_note = client.resources("Condition").search(**{"source-document": doc}).fetch_all()
    assert len(from_note) == expected
    for cond in from_note:
        ev = [x for x in cond["extension"] if x["url"].endswith("note-evidence")]
        assert ev, "every Condition points at its evidence in the note"
    # patient + code:text on a mention the model found
    cond = from_note[0]
    patient = cond["subject"]["reference"].split("/")[1]
    text = cond["code"]["text"]
    hits = client.resources("Condition").search(patient=patient).search(**{"code:text": text}).fetch_all()
    assert any(h["id"] == cond["id"] for h in hits)
    # Provenance of those Conditions comes along with _revinclude
    bundle = httpx.get(f"{base_url}/Condition", params={"_id": cond["id"], "_revinclude": "Provenance:target"},
                       headers={"Authorization": f"Bearer {make_token()}"}).json()
    modes = {e["resource"]["resourceType"]: e["search"]["mode"] for e in bundle["entry"]}
    assert modes == {"Condition": "match", "Provenance": "include"}


def test_patient_token_cannot_read_other_patients(pipeline_db: Engine, base_url: str, make_token) -> None:  # type: ignore[no-untyped-def]
    with pipeline_db.connect() as conn:
        rows = conn.execute(select(FhirResource.id, FhirResource.patient_id).where(
            FhirResource.resource_type == "Condition")).all()
    patients = sorted({p for _, p in rows})
    assert len(patients) >= 2
    mine, other = patients[0], patients[1]
    theirs = next(i for i, p in rows if p == other)
    token = make_token(scope="patient/*.read", patient=mine)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base_url}/Condition/{theirs}", headers=headers).status_code == 403
    assert httpx.get(f"{base_url}/Condition/{theirs}").status_code == 401
    own = httpx.get(f"{base_url}/Condition", params={"_count": 50}, headers=headers).json()
    assert own["total"] == sum(1 for _, p in rows if p == mine)
