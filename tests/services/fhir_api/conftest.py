"""Fixtures for the FHIR API tests: a seeded database, RSA keys + tokens, in-process and uvicorn servers.

The seed builds R4B Condition / MedicationStatement / AllergyIntolerance / Provenance / Patient resources and
stores them through the real indexer (``clinie.storage.repository.resource_row``: search columns from the
search-parameter registry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from sqlalchemy import Engine, create_engine, insert

from clinie.fhir.extensions import Evidence, evidence_extension
from clinie.fhir.mapping import INGREDIENT_SYSTEM
from clinie.fhir.systems import (
    ALLERGY_CLINICAL_SYSTEM,
    ALLERGY_VERIFICATION_SYSTEM,
    CLINICAL_STATUS_SYSTEM,
    ICD10CM,
    RXNORM,
    SNOMED,
    VERIFICATION_STATUS_SYSTEM,
)
from clinie.storage.models import Base, FhirResource
from clinie.storage.repository import resource_row
from services.fhir_api import ApiSettings, create_app
from services.stack.ports import free_port
from tests.conftest import fresh_database

CLIN = CLINICAL_STATUS_SYSTEM
VER = VERIFICATION_STATUS_SYSTEM
AUDIENCE = "clinie-fhir-test"
ISSUER = "https://auth.clinie.test"
MODEL_VERSION = "clinie-ner-test-1"


# ---------------------------------------------------------------------------------------------------- seed


@dataclass(frozen=True)
class Doc:
    id: str
    patient: str
    encounter: str | None
    processed: datetime


DOCS = {
    "doc-1": Doc("doc-1", "pat-1", "enc-1", datetime(2024, 1, 10, 12, 0, tzinfo=UTC)),
    "doc-2": Doc("doc-2", "pat-1", "enc-2", datetime(2024, 2, 10, 12, 0, tzinfo=UTC)),
    "doc-3": Doc("doc-3", "pat-2", "enc-3", datetime(2024, 3, 10, 12, 0, tzinfo=UTC)),
    "doc-4": Doc("doc-4", "pat-3", None, datetime(2024, 4, 10, 12, 0, tzinfo=UTC)),
}
PATIENTS = ["pat-1", "pat-2", "pat-3"]


def _evidence(doc: str) -> list[dict[str, Any]]:
    ev = Evidence(document_id=doc, document_version="1", model_version=MODEL_VERSION, start=0, end=1, label="Problem")
    return [evidence_extension(ev).model_dump(mode="json", exclude_none=True)]


def _row(resource: dict[str, Any], processed: datetime, patient: str | None = None) -> dict[str, Any]:
    """The stored row, built by the real indexer (search columns from the search-parameter registry)."""
    return resource_row(resource, version_id=1, last_updated=processed, patient_fallback=patient)


def condition_row(
    cid: str,
    doc: str,
    text: str,
    codings: list[tuple[str | None, str]],
    clinical: str = "active",
    verification: str = "confirmed",
    recorded: str | None = None,
    onset: str | None = None,
    onset_end: str | None = None,
) -> dict[str, Any]:
    d = DOCS[doc]
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{cid}</div>'},
        "extension": _evidence(doc),
        "clinicalStatus": {"coding": [{"system": CLIN, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": VER, "code": verification}]},
        "code": {"coding": [{"system": s, "code": c} if s else {"code": c} for s, c in codings], "text": text},
        "subject": {"reference": f"Patient/{d.patient}"},
    }
    if d.encounter:
        resource["encounter"] = {"reference": f"Encounter/{d.encounter}"}
    if onset_end is not None:
        resource["onsetPeriod"] = {"start": onset, "end": onset_end}
    elif onset is not None:
        resource["onsetDateTime"] = onset
    if recorded is not None:
        resource["recordedDate"] = recorded
    Condition.model_validate(resource)
    return _row(resource, d.processed)


def medication_row(
    mid: str,
    doc: str,
    text: str,
    codings: list[tuple[str | None, str]],
    status: str = "active",
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    d = DOCS[doc]
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": mid,
        "extension": _evidence(doc),
        "status": status,
        "medicationCodeableConcept": {
            "coding": [{"system": s, "code": c} if s else {"code": c} for s, c in codings],
            "text": text,
        },
        "subject": {"reference": f"Patient/{d.patient}"},
        "dateAsserted": d.processed.isoformat().replace("+00:00", "Z"),
        "derivedFrom": [{"reference": f"DocumentReference/{doc}"}],
    }
    if d.encounter:
        resource["context"] = {"reference": f"Encounter/{d.encounter}"}
    if end is not None:
        resource["effectivePeriod"] = {"start": start, "end": end}
    elif start is not None:
        resource["effectiveDateTime"] = start
    MedicationStatement.model_validate(resource)
    return _row(resource, d.processed)


def allergy_row(
    aid: str,
    doc: str,
    text: str,
    ingredient: str,
    clinical: str = "active",
    verification: str = "unconfirmed",
    recorded: str | None = None,
) -> dict[str, Any]:
    """An AllergyIntolerance shaped like ``clinie.fhir.mapping``'s (category medication, ingredient coding)."""
    d = DOCS[doc]
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "extension": _evidence(doc),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL_SYSTEM, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION_SYSTEM, "code": verification}]},
        "type": "allergy",
        "category": ["medication"],
        "code": {"coding": [{"system": INGREDIENT_SYSTEM, "code": ingredient, "display": ingredient}], "text": text},
        "patient": {"reference": f"Patient/{d.patient}"},
    }
    if recorded is not None:
        resource["recordedDate"] = recorded
    AllergyIntolerance.model_validate(resource)
    return _row(resource, d.processed)


def provenance_row(doc: str, targets: list[str]) -> dict[str, Any]:
    d = DOCS[doc]
    pid = f"prov-{doc}"
    resource = {
        "resourceType": "Provenance",
        "id": pid,
        "target": [{"reference": t} for t in targets],
        "recorded": d.processed.isoformat().replace("+00:00", "Z"),
        "agent": [{"who": {"display": MODEL_VERSION}}],
        "entity": [{"role": "source", "what": {"reference": f"DocumentReference/{doc}"}}],
    }
    Provenance.model_validate(resource)
    return _row(resource, d.processed, d.patient)  # like the store: in the compartment of the note's patient


def patient_row(pid: str) -> dict[str, Any]:
    processed = datetime(2024, 1, 1, tzinfo=UTC)
    resource = {"resourceType": "Patient", "id": pid}
    Patient.model_validate(resource)
    return _row(resource, processed)


# number of filler Conditions of pat-3 (doc-4): for paging and sorting with missing dates
FILLER = 23


def seed_rows() -> list[dict[str, Any]]:
    rows = [
        condition_row(
            "c1",
            "doc-1",
            "Type 2 diabetes mellitus",
            [(SNOMED, "44054006"), (ICD10CM, "E11.9")],
            recorded="2020-05-01T10:00:00Z",
            onset="2019-03",
        ),
        condition_row(
            "c2",
            "doc-1",
            "Essential hypertension",
            [(SNOMED, "59621000")],
            verification="unconfirmed",
            recorded="2020-05-01T14:30:00+02:00",
        ),
        condition_row(
            "c3",
            "doc-2",
            "Asthma (100% controlled)",
            [(None, "local-1")],
            clinical="resolved",
            verification="refuted",
            recorded="2021-01-15",
            onset="2010-01-01",
            onset_end="2015-06-30",
        ),
        condition_row(
            "c4",
            "doc-3",
            "Type 1 diabetes mellitus",
            [(SNOMED, "46635009"), (ICD10CM, "E10.9")],
            recorded="2019-12-31T23:30:00Z",
            onset="2005",
        ),
    ]
    for i in range(FILLER):
        recorded = None if i % 5 == 0 else f"2022-{i % 12 + 1:02d}-{i % 27 + 1:02d}"
        rows.append(
            condition_row(
                f"f{i:02d}",
                "doc-4",
                f"Filler finding {i:02d}",
                [(SNOMED, f"9000{i:02d}")],
                clinical="inactive" if i % 2 else "active",
                recorded=recorded,
            )
        )
    rows += [
        medication_row("m1", "doc-1", "Metformin 500 mg", [(RXNORM, "860975")], start="2020-05-01"),
        medication_row(
            "m2", "doc-2", "Lisinopril", [(RXNORM, "29046")], status="completed", start="2019-01-01", end="2019-06-30"
        ),
        medication_row("m3", "doc-3", "Insulin glargine", [(RXNORM, "274783")], start="2020-01-10T08:00:00Z"),
    ]
    rows += [
        allergy_row("a1", "doc-1", "penicillin", "penicillin", recorded="2020-05-01"),
        allergy_row("a2", "doc-3", "Sulfa", "sulfonamides", clinical="inactive", verification="confirmed"),
    ]
    rows += [
        provenance_row("doc-1", ["Condition/c1", "Condition/c2", "MedicationStatement/m1", "AllergyIntolerance/a1"]),
        provenance_row("doc-2", ["Condition/c3", "MedicationStatement/m2"]),
        provenance_row("doc-3", ["Condition/c4", "MedicationStatement/m3", "AllergyIntolerance/a2"]),
        provenance_row("doc-4", [f"Condition/f{i:02d}" for i in range(FILLER)]),
    ]
    rows += [patient_row(p) for p in PATIENTS]
    return rows


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> Iterator[str]:
    """The API tests get a database of their own: other suites write extraction rows into the shared one."""
    yield from fresh_database(pg_server)


@pytest.fixture(scope="session")
def engine(pg_url: str) -> Iterator[Engine]:
    eng = create_engine(pg_url)
    Base.metadata.create_all(eng)
    rows = seed_rows()
    with eng.begin() as conn:
        conn.execute(insert(FhirResource), rows)
    try:
        yield eng
    finally:
        eng.dispose()


# ---------------------------------------------------------------------------------------------------- auth


@dataclass(frozen=True)
class Keys:
    private_pem: bytes
    public_pem: str


@pytest.fixture(scope="session")
def keys() -> Keys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return Keys(private_pem, public_pem)


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(keys: Keys) -> TokenFactory:
    def make(
        scope: str = "system/*.read",
        patient: str | None = None,
        sub: str | None = "client-1",
        exp_in: int = 600,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        key: bytes | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": issuer, "aud": audience, "iat": now, "exp": now + exp_in, "scope": scope}
        if sub is not None:
            claims["sub"] = sub
        if patient is not None:
            claims["patient"] = patient
        headers = {"kid": kid} if kid else None
        return jwt.encode(claims, key or keys.private_pem, algorithm="RS256", headers=headers)

    return make


@pytest.fixture(scope="session")
def settings(keys: Keys, pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> ApiSettings:
    return ApiSettings(
        database_url=pg_url,
        auth_enabled=True,
        jwt_public_key=keys.public_pem,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        default_page_size=10,
        max_page_size=50,
        export_dir=tmp_path_factory.mktemp("exports"),
    )


@pytest.fixture(scope="session")
def client(settings: ApiSettings, engine: Engine, make_token: TokenFactory) -> Iterator[TestClient]:
    """In-process client with a system/*.read token."""
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {make_token()}"
        yield c


@pytest.fixture(scope="session")
def anon(settings: ApiSettings, engine: Engine) -> Iterator[TestClient]:
    """In-process client without credentials (auth enabled)."""
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free 127.0.0.1 port; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def serve_app() -> Callable[[FastAPI], AbstractContextManager[str]]:
    """``with serve_app(app) as url:`` runs ``app`` under a real uvicorn server."""
    return serve


@pytest.fixture(scope="session")
def server_url(settings: ApiSettings, engine: Engine) -> Iterator[str]:
    """A real uvicorn server on a free 127.0.0.1 port (auth enabled)."""
    with serve(create_app(settings, engine=engine)) as url:
        yield url
