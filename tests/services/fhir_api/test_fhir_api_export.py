"""FHIR Bulk Data export: kick-off, polling, manifest, NDJSON download, cancel."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance

from services.fhir_api.export import ExportManager

MODELS: dict[str, Any] = {
    "Condition": Condition,
    "MedicationStatement": MedicationStatement,
    "AllergyIntolerance": AllergyIntolerance,
    "Provenance": Provenance,
    "Patient": Patient,
}
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def path_of(url: str) -> str:
    return urlsplit(url).path


def kick_off(client: TestClient, path: str, params: Any = None, token: str | None = None) -> str:
    headers = dict(ASYNC)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == 202, r.text
    return r.headers["content-location"]


def wait_manifest(client: TestClient, status_url: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = client.get(path_of(status_url), headers=headers)
        if r.status_code == 200:
            return dict(r.json())
        assert r.status_code == 202, r.text
        assert r.headers["x-progress"]
        time.sleep(0.05)
    raise AssertionError("export did not finish")


def download(client: TestClient, manifest: dict[str, Any], token: str | None = None) -> dict[str, list[Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out: dict[str, list[Any]] = {}
    for item in manifest["output"]:
        r = client.get(path_of(item["url"]), headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = r.text.splitlines()
        assert len(lines) == item["count"]
        resources = [MODELS[item["type"]].model_validate(json.loads(line)) for line in lines]
        assert all(res.get_resource_type() == item["type"] for res in resources)
        out[item["type"]] = resources
    return out


def test_system_export_round_trip(client: TestClient) -> None:
    status_url = kick_off(client, "/$export")
    assert status_url.startswith("http://testserver/_bulk/status/")
    manifest = wait_manifest(client, status_url)
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == "http://testserver/$export"
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["error"] == []
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"Condition": 27, "MedicationStatement": 3, "AllergyIntolerance": 2, "Provenance": 4, "Patient": 3}
    files = download(client, manifest)
    assert {r.id for r in files["Condition"]} >= {"c1", "c2", "c3", "c4"}
    # downloads need the token of the same client
    anon_status = client.get(path_of(manifest["output"][0]["url"]), headers={"Authorization": ""})
    assert anon_status.status_code == 401
    # delete cleans up
    assert client.delete(path_of(status_url)).status_code == 202
    assert client.get(path_of(status_url)).status_code == 404
    assert client.get(path_of(manifest["output"][0]["url"])).status_code == 404


def test_export_type_and_since(client: TestClient) -> None:
    url = kick_off(
        client,
        "/$export",
        {
            "_type": "Condition,MedicationStatement,Provenance,Patient",
            "_since": "2024-03-01T00:00:00Z",
            "_outputFormat": "application/fhir+ndjson",
        },
    )
    manifest = wait_manifest(client, url)
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    # Patients were last updated 2024-01-01: no file for them
    assert counts == {"Condition": 24, "MedicationStatement": 1, "Provenance": 2}
    assert "_since=2024-03-01T00%3A00%3A00Z" in manifest["request"]
    url = kick_off(client, "/$export", {"_type": "MedicationStatement"})
    manifest = wait_manifest(client, url)
    assert [o["type"] for o in manifest["output"]] == ["MedicationStatement"]
    assert {r.id for r in download(client, manifest)["MedicationStatement"]} == {"m1", "m2", "m3"}


def test_patient_export_with_patient_token(anon: TestClient, make_token: Any) -> None:
    token = make_token("patient/*.read", patient="pat-1", sub="patient-app")
    url = kick_off(anon, "/Patient/$export", token=token)
    manifest = wait_manifest(anon, url, token)
    files = download(anon, manifest, token)
    assert {r.id for r in files["Condition"]} == {"c1", "c2", "c3"}
    assert {r.id for r in files["MedicationStatement"]} == {"m1", "m2"}
    assert {r.id for r in files["AllergyIntolerance"]} == {"a1"}
    assert {r.id for r in files["Provenance"]} == {"prov-doc-1", "prov-doc-2"}
    assert [r.id for r in files["Patient"]] == ["pat-1"]
    # another client cannot poll or download this job
    other = make_token(sub="someone-else")
    assert anon.get(path_of(url), headers={"Authorization": f"Bearer {other}"}).status_code == 403
    assert (
        anon.get(path_of(manifest["output"][0]["url"]), headers={"Authorization": f"Bearer {other}"}).status_code == 403
    )
    # system-level export is not for patient tokens
    r = anon.get("/$export", headers={**ASYNC, "Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_patient_export_all_patients(client: TestClient) -> None:
    manifest = wait_manifest(client, kick_off(client, "/Patient/$export", {"_type": "Patient,Condition"}))
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Patient": 3, "Condition": 27}


def test_export_scope_limits_types(anon: TestClient, make_token: Any) -> None:
    token = make_token("system/Condition.read")
    manifest = wait_manifest(anon, kick_off(anon, "/$export", token=token), token)
    assert [o["type"] for o in manifest["output"]] == ["Condition"]
    r = anon.get("/$export", params={"_type": "Patient"}, headers={**ASYNC, "Authorization": f"Bearer {token}"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({}, {"Accept": "application/fhir+json"}, 400),  # no Prefer: respond-async
        ({"_type": "Observation"}, ASYNC, 400),
        ({"_type": ""}, ASYNC, 400),
        ({"_outputFormat": "text/csv"}, ASYNC, 400),
        ({"_since": "last week"}, ASYNC, 400),
        ({"_since": "gt2020"}, ASYNC, 400),
        ({"_typeFilter": "Condition?code=x"}, ASYNC, 400),
        ({"foo": "bar"}, ASYNC, 400),
    ],
)
def test_export_kick_off_errors(
    client: TestClient, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    r = client.get("/$export", params=params, headers=headers)
    assert r.status_code == status
    OperationOutcome.model_validate(r.json())


def test_export_needs_subject(anon: TestClient, make_token: Any) -> None:
    token = make_token(sub=None)
    r = anon.get("/$export", headers={**ASYNC, "Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_status_in_progress_and_cancel(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    original = ExportManager._run

    def slow_run(self: ExportManager, job: Any) -> None:
        gate.wait(10)
        original(self, job)

    monkeypatch.setattr(ExportManager, "_run", slow_run)
    url = kick_off(client, "/$export")
    r = client.get(path_of(url))
    assert r.status_code == 202 and r.headers["x-progress"]
    assert client.delete(path_of(url)).status_code == 202
    gate.set()
    assert client.get(path_of(url)).status_code == 404
    assert client.delete(path_of(url)).status_code == 404
    # a finished job's files are gone after cancel
    url2 = kick_off(client, "/$export", {"_type": "Patient"})
    gate.set()
    manifest = wait_manifest(client, url2)
    job_id = path_of(url2).rsplit("/", 1)[1]
    export_dir = client.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert (export_dir / job_id / "Patient.ndjson").exists()
    client.delete(path_of(url2))
    assert not (export_dir / job_id).exists()
    assert client.get(path_of(manifest["output"][0]["url"])).status_code == 404


def test_unknown_job_and_file(client: TestClient) -> None:
    assert client.get("/_bulk/status/nope").status_code == 404
    url = kick_off(client, "/$export", {"_type": "Patient"})
    wait_manifest(client, url)
    job = path_of(url).rsplit("/", 1)[1]
    assert client.get(f"/_bulk/files/{job}/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get(f"/_bulk/files/{job}/Condition.ndjson").status_code == 404
