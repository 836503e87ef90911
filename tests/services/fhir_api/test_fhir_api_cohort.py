"""A researcher's coded cohort query on the real stack: "patients with type 2 diabetes on metformin".

Notes of several patients go through the real assertion and normalisation stages (``clinie.normalize``), the real
FHIR mapping and the real store (``store_extraction``, search columns from the registry) into a fresh PostgreSQL
database; the FHIR API is then asked

    Condition?code:below=http://hl7.org/fhir/sid/icd-10-cm|E11&verification-status:not=refuted
    MedicationStatement?code=https://clinie.dev/fhir/CodeSystem/ingredient|metformin&status=active

and the cohort is the intersection of the patients of both answers (FHIR search has no join; a client joins on
``subject``). Only the entity spans are given by hand (as the extraction model would find them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from clinie.document import Entity
from clinie.fhir.docref import parse_document_reference
from clinie.fhir.mapping import INGREDIENT_SYSTEM, map_extraction
from clinie.normalize.context import AssertionTagger
from clinie.normalize.stage import Normalizer
from clinie.storage.db import session_factory
from clinie.storage.models import Base
from clinie.storage.repository import store_extraction
from services.fhir_api import ApiSettings, create_app
from tests.conftest import fresh_database
from tests.fhir.factories import docref_dict, entity
from tests.services.fhir_api.conftest import TokenFactory

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
MODEL = "clinie_ie/cohort-test"

# patient -> (note, [(mention, label)]); the comment says why the patient is (not) in the cohort
NOTES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # T2DM (E11.9) + metformin, active: in
    "pat-a": ("Assessment: type 2 diabetes, stable.\nPlan: continue metformin 500 mg twice daily.\n",
              [("type 2 diabetes", "Problem"), ("metformin", "Drug")]),
    # diabetic neuropathy (E11.42, below E11) + the brand Glucophage (ingredient metformin): in
    "pat-b": ("Problems: diabetic neuropathy.\nMedications: Glucophage 1000 mg daily.\n",
              [("diabetic neuropathy", "Problem"), ("Glucophage", "Drug")]),
    # T2DM on insulin only: out
    "pat-c": ("Assessment: T2DM.\nPlan: insulin glargine 10 units at bedtime.\n",
              [("T2DM", "Problem"), ("insulin glargine", "Drug")]),
    # metformin for prediabetes (R73.03, not below E11): out
    "pat-d": ("Assessment: prediabetes.\nPlan: continue metformin 500 mg daily.\n",
              [("prediabetes", "Problem"), ("metformin", "Drug")]),
    # the mother's type 2 diabetes is not the patient's Condition; metformin for PCOS: out
    "pat-e": ("FAMILY HISTORY\nMother: type 2 diabetes.\n\nASSESSMENT\nPolycystic ovary syndrome, on metformin.\n",
              [("type 2 diabetes", "Problem"), ("Polycystic ovary syndrome", "Problem"), ("metformin", "Drug")]),
    # type 1 diabetes (E10.9, a sibling category) + metformin: out
    "pat-f": ("Assessment: type 1 diabetes.\nPlan: continue metformin 500 mg daily.\n",
              [("type 1 diabetes", "Problem"), ("metformin", "Drug")]),
    # diabetes denied (refuted Condition, still coded E11.9) + metformin: out
    "pat-g": ("Denies diabetes.\nMedications: metformin 500 mg daily for weight.\n",
              [("diabetes", "Problem"), ("metformin", "Drug")]),
    # T2DM, but metformin was stopped (MedicationStatement stopped): out
    "pat-h": ("Assessment: type 2 diabetes.\nMetformin was stopped because of diarrhea.\n",
              [("type 2 diabetes", "Problem"), ("Metformin", "Drug")]),
}  # fmt: skip
COHORT = {"pat-a", "pat-b"}


@pytest.fixture(scope="module")
def cohort_engine(pg_server: str) -> Iterator[Engine]:
    """A database of its own, filled through normalisation, mapping and the real store."""
    url = fresh_database(pg_server)
    eng = create_engine(next(url))
    Base.metadata.create_all(eng)
    stages = [AssertionTagger(negation=True), Normalizer()]
    factory = session_factory(eng)
    for i, (patient, (text, mentions)) in enumerate(sorted(NOTES.items())):
        note = parse_document_reference(docref_dict(f"cohort-{i}", text, patient=patient, version="1"))
        ents: list[Entity] = [entity(text, m, label, f"T{k + 1}") for k, (m, label) in enumerate(mentions)]
        doc = note.document.with_annotations(ents, [])
        for stage in stages:
            doc = stage(doc)
        with factory() as session, session.begin():
            store_extraction(session, note, map_extraction(note, doc, MODEL), MODEL)
    try:
        yield eng
    finally:
        eng.dispose()
        next(url, None)  # drops the database


@pytest.fixture(scope="module")
def cohort_client(settings: ApiSettings, cohort_engine: Engine, make_token: TokenFactory) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=cohort_engine), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {make_token()}"
        yield c


def _patients(client: TestClient, path: str, params: dict[str, str]) -> set[str]:
    r = client.get(path, params={**params, "_count": "50"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["total"] == len(body.get("entry", []))
    return {e["resource"]["subject"]["reference"].removeprefix("Patient/") for e in body.get("entry", [])}


def test_coded_cohort_query(cohort_client: TestClient) -> None:
    diabetic = _patients(
        cohort_client, "/Condition", {"code:below": f"{ICD}|E11", "verification-status:not": "refuted"}
    )
    on_metformin = _patients(
        cohort_client, "/MedicationStatement", {"code": f"{INGREDIENT_SYSTEM}|metformin", "status": "active"}
    )
    assert diabetic == {"pat-a", "pat-b", "pat-c", "pat-h"}
    assert on_metformin == {"pat-a", "pat-b", "pat-d", "pat-e", "pat-f", "pat-g"}
    assert diabetic & on_metformin == COHORT


def test_cohort_parts(cohort_client: TestClient) -> None:
    # the refuted diagnosis is stored (coded) but is not a diagnosis of the patient
    assert _patients(cohort_client, "/Condition", {"code:below": f"{ICD}|E11"}) == {"pat-a", "pat-b", "pat-c",
                                                                                  "pat-g", "pat-h"}
    # the exact code finds only the unspecified form; :below also finds the neuropathy code E11.42
    assert _patients(cohort_client, "/Condition", {"code": f"{ICD}|E11.9"}) == {"pat-a", "pat-c", "pat-g", "pat-h"}
    assert _patients(cohort_client, "/Condition", {"code:below": f"{ICD}|E10"}) == {"pat-f"}
    stopped = _patients(cohort_client, "/MedicationStatement", {"code": "metformin", "status": "stopped"})
    assert stopped == {"pat-h"}
    # the family member's diabetes produced no Condition of pat-e
    assert _patients(cohort_client, "/Condition", {"patient": "pat-e"}) == {"pat-e"}
    r = cohort_client.get("/Condition", params={"patient": "pat-e", "code:below": f"{ICD}|E11"})
    assert r.json()["total"] == 0
