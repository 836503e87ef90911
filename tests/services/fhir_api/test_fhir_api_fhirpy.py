"""The API served by a real uvicorn server, queried with the FHIR client fhirpy (SyncFHIRClient) and httpx."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError, OperationOutcome, ResourceNotFound


@pytest.fixture(scope="module")
def fhir(server_url: str, make_token: Any) -> SyncFHIRClient:
    return SyncFHIRClient(server_url, authorization=f"Bearer {make_token()}")


def test_search_with_fhirpy(fhir: SyncFHIRClient) -> None:
    conditions = fhir.resources("Condition").search(patient="Patient/pat-1").fetch()
    assert {c.id for c in conditions} == {"c1", "c2", "c3"}
    conditions = fhir.resources("Condition").search(code__text="diabetes").fetch()
    assert {c.id for c in conditions} == {"c1", "c4"}
    conditions = fhir.resources("Condition").search(code="http://snomed.info/sct|44054006").fetch()
    assert [c.id for c in conditions] == ["c1"]
    conditions = fhir.resources("Condition").search(recorded_date__ge="2021", recorded_date__lt="2022").fetch()
    assert [c.id for c in conditions] == ["c3"]
    conditions = fhir.resources("Condition").search(verification_status="unconfirmed").fetch()
    assert [c.id for c in conditions] == ["c2"]
    meds = fhir.resources("MedicationStatement").search(status="active", effective__ge="2020").fetch()
    assert {m.id for m in meds} == {"m1", "m3"}
    prov = fhir.resources("Provenance").search(target="Condition/c4").fetch()
    assert [p.id for p in prov] == ["prov-doc-3"]
    notes = fhir.resources("Condition").search(source_document="DocumentReference/doc-1").fetch()
    assert {c.id for c in notes} == {"c1", "c2"}


def test_paging_sort_count_with_fhirpy(fhir: SyncFHIRClient) -> None:
    everything = fhir.resources("Condition").limit(4).fetch_all()  # follows the absolute next links
    assert len(everything) == 27 and len({c.id for c in everything}) == 27
    assert fhir.resources("Condition").search(patient="pat-3").count() == 23
    ordered = fhir.resources("Condition").search(patient="pat-1").sort("-recorded-date").fetch()
    assert [c.id for c in ordered] == ["c3", "c2", "c1"]
    first = fhir.resources("Condition").search(patient="pat-1").sort("recorded-date").first()
    assert first is not None and first.id == "c1"


def test_include_elements_with_fhirpy(fhir: SyncFHIRClient) -> None:
    raw = fhir.resources("Provenance").search(source_document="doc-1").include("Provenance", "target").fetch_raw()
    modes = {e.resource.id: e.search.mode for e in raw.entry}
    assert modes == {"prov-doc-1": "match", "c1": "include", "c2": "include", "m1": "include", "a1": "include"}
    raw = fhir.resources("Condition").search(_id="c1").revinclude("Provenance", "target").fetch_raw()
    assert {e.resource.id for e in raw.entry} == {"c1", "prov-doc-1"}
    slim = fhir.resources("Condition").search(_id="c1").elements("code").fetch()
    assert "recordedDate" not in slim[0] and slim[0]["code"]["text"] == "Type 2 diabetes mellitus"


def test_read_with_fhirpy(fhir: SyncFHIRClient) -> None:
    cond = fhir.reference("Condition", "c1").to_resource()
    Condition.model_validate(cond.serialize())
    assert cond["subject"]["reference"] == "Patient/pat-1"
    with pytest.raises(ResourceNotFound):
        fhir.reference("Condition", "does-not-exist").to_resource()


def test_errors_with_fhirpy(server_url: str, make_token: Any, fhir: SyncFHIRClient) -> None:
    with pytest.raises(AuthorizationError):
        SyncFHIRClient(server_url).resources("Condition").fetch()
    patient_client = SyncFHIRClient(server_url, authorization=f"Bearer {make_token('patient/*.read', patient='pat-1')}")
    with pytest.raises(ForbiddenError):
        patient_client.reference("Condition", "c4").to_resource()
    assert {c.id for c in patient_client.resources("Condition").fetch_all()} == {"c1", "c2", "c3"}
    with pytest.raises(OperationOutcome):
        fhir.resources("Condition").search(unknown_param="x").fetch()


def test_bulk_export_over_http(server_url: str, make_token: Any) -> None:
    headers = {"Authorization": f"Bearer {make_token()}", "Accept": "application/fhir+json"}
    with httpx.Client(base_url=server_url, headers=headers, timeout=30) as http:
        r = http.get("/$export", params={"_type": "Condition,Provenance"}, headers={"Prefer": "respond-async"})
        assert r.status_code == 202
        status_url = r.headers["content-location"]
        assert status_url.startswith(server_url)
        deadline = time.monotonic() + 30
        while (r := http.get(status_url)).status_code == 202:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert r.status_code == 200
        manifest = r.json()
        for item in manifest["output"]:
            lines = http.get(item["url"]).text.splitlines()
            assert len(lines) == item["count"]
            assert all(json.loads(line)["resourceType"] == item["type"] for line in lines)
        assert http.delete(status_url).status_code == 202


def test_bundle_over_http_validates(server_url: str, make_token: Any) -> None:
    r = httpx.get(
        f"{server_url}/Condition",
        params={"_count": "3", "_revinclude": "Provenance:target"},
        headers={"Authorization": f"Bearer {make_token()}"},
    )
    assert r.status_code == 200
    bundle = Bundle.model_validate(r.json())
    assert bundle.total == 27
    assert [lk.relation for lk in bundle.link or []] == ["self", "first", "next"]
