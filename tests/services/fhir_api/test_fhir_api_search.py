"""Search parameters, result parameters, paging, includes, reads and errors (in-process client, real PostgreSQL).

Seeded data (see conftest): Conditions c1, c2 (pat-1, doc-1, enc-1), c3 (pat-1, doc-2, enc-2), c4 (pat-2, doc-3),
23 fillers f00..f22 (pat-3, doc-4, every 5th without recordedDate); MedicationStatements m1 (pat-1, doc-1),
m2 (pat-1, doc-2), m3 (pat-2, doc-3); AllergyIntolerances a1 (pat-1, doc-1), a2 (pat-2, doc-3); one Provenance per
document; Patients pat-1..pat-3.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.operationoutcome import OperationOutcome

FILLERS = [f"f{i:02d}" for i in range(23)]
ALL_CONDITIONS = ["c1", "c2", "c3", "c4", *FILLERS]


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def search(client: TestClient, path: str, params: Any = None, **kw: Any) -> dict[str, Any]:
    r = client.get(path, params=params, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return body


def found(client: TestClient, path: str, params: Any) -> set[str]:
    items = list(params.items()) if isinstance(params, dict) else list(params)
    body = search(client, path, [*items, ("_count", "50")])
    assert body["total"] == len(ids(body))
    return set(ids(body))


def bad(client: TestClient, path: str, params: Any, status: int = 400) -> dict[str, Any]:
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    OperationOutcome.model_validate(body)
    return body


# ------------------------------------------------------------------------------------------------ Condition


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "pat-1"}, {"c1", "c2", "c3"}),
        ({"patient": "Patient/pat-1"}, {"c1", "c2", "c3"}),
        ({"patient": "https://fhir.example.org/r4/Patient/pat-1"}, {"c1", "c2", "c3"}),
        ({"patient": "Patient/pat-1/_history/3"}, {"c1", "c2", "c3"}),
        ({"subject": "pat-2"}, {"c4"}),
        ({"subject:Patient": "pat-2"}, {"c4"}),
        ({"subject": "Group/pat-2"}, set()),
        ({"patient": "pat-1,pat-2"}, {"c1", "c2", "c3", "c4"}),
        ([("patient", "pat-1"), ("patient", "pat-2")], set()),  # repeated = AND
        ({"patient": "nobody"}, set()),
    ],
)
def test_condition_patient(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Condition", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"code": "http://snomed.info/sct|44054006"}, {"c1"}),
        ({"code": "44054006"}, {"c1"}),
        ({"code": "|local-1"}, {"c3"}),
        ({"code": "local-1"}, {"c3"}),
        ({"code": "|44054006"}, set()),  # has a system
        ({"code": "http://loinc.org|44054006"}, set()),
        ({"code": "http://snomed.info/sct|"}, set(ALL_CONDITIONS) - {"c3"}),
        ({"code": "http://snomed.info/sct|44054006,http://snomed.info/sct|46635009"}, {"c1", "c4"}),
        ({"code:text": "diabetes"}, {"c1", "c4"}),
        ({"code:text": "DIABETES MELL"}, {"c1", "c4"}),
        ({"code:text": "type 2"}, {"c1"}),
        ({"code:text": "100%"}, {"c3"}),  # % is literal, not a wildcard
        ({"code:text": "_"}, set()),  # _ is literal too
        ({"code:text": "diabetes,hypertension"}, {"c1", "c2", "c4"}),
        ([("code:text", "diabetes"), ("code:text", "type 1")], {"c4"}),
        ({"code:not": "44054006", "patient": "pat-1"}, {"c2", "c3"}),
        ({"code:missing": "true"}, set()),
        ({"code:missing": "false", "patient": "pat-2"}, {"c4"}),
    ],
)
def test_condition_code(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Condition", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"clinical-status": "resolved"}, {"c3"}),
        ({"clinical-status": "http://terminology.hl7.org/CodeSystem/condition-clinical|resolved"}, {"c3"}),
        ({"clinical-status": "http://example.org/other|resolved"}, set()),
        ({"clinical-status": "active", "patient": "pat-1"}, {"c1", "c2"}),
        ({"clinical-status": "resolved,active", "patient": "pat-1"}, {"c1", "c2", "c3"}),
        ({"clinical-status:not": "active", "patient": "pat-1"}, {"c3"}),
        ({"verification-status": "unconfirmed"}, {"c2"}),
        ({"verification-status": "http://terminology.hl7.org/CodeSystem/condition-ver-status|refuted"}, {"c3"}),
        ({"verification-status": "confirmed", "patient": "pat-1,pat-2"}, {"c1", "c4"}),
        ({"encounter": "enc-1"}, {"c1", "c2"}),
        ({"encounter": "Encounter/enc-2"}, {"c3"}),
        ({"encounter:missing": "true"}, set(FILLERS)),
        ({"encounter": "Patient/enc-1"}, set()),
        ({"source-document": "doc-1"}, {"c1", "c2"}),
        ({"source-document": "DocumentReference/doc-2"}, {"c3"}),
        ({"source-document": "doc-1,doc-3"}, {"c1", "c2", "c4"}),
        ({"_id": "c1,c3"}, {"c1", "c3"}),
        ({"_id": "c1"}, {"c1"}),
        ({"_id": "m1"}, set()),
    ],
)
def test_condition_tokens_and_references(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Condition", params) == expected


DATED_FILLERS = {f for i, f in enumerate(FILLERS) if i % 5}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"recorded-date": "2020"}, {"c1", "c2"}),
        ({"recorded-date": "2020-05"}, {"c1", "c2"}),
        ({"recorded-date": "2020-05-01"}, {"c1", "c2"}),
        ({"recorded-date": "eq2020-05-01T10:00:00Z"}, {"c1"}),
        ({"recorded-date": "2020-05-01T10:00Z"}, {"c1"}),  # minute precision
        ({"recorded-date": "2020-05-01T14:30:00+02:00"}, {"c2"}),
        ({"recorded-date": "2020-01-01T00:30:00+01:00"}, {"c4"}),  # 2019-12-31T23:30Z
        ({"recorded-date": "2020-05-01T10:00:00.000Z"}, {"c1"}),
        ({"recorded-date": "lt2020"}, {"c4"}),
        ({"recorded-date": "le2019-12-31T23:30:00Z"}, {"c4"}),
        ([("recorded-date", "ge2021"), ("recorded-date", "lt2022")], {"c3"}),
        ({"recorded-date": "gt2020-05-01"}, {"c3"} | DATED_FILLERS),
        ({"recorded-date": "ge2020-05-01", "patient": "pat-1"}, {"c1", "c2", "c3"}),
        ({"recorded-date": "ne2020", "patient": "pat-1,pat-2"}, {"c3", "c4"}),
        ({"recorded-date": "sa2020-05-01", "patient": "pat-1"}, {"c3"}),
        ({"recorded-date": "eb2020-05-01", "patient": "pat-1,pat-2"}, {"c4"}),
        ({"recorded-date": "2019,2021"}, {"c3", "c4"}),
        ({"recorded-date:missing": "true"}, {"f00", "f05", "f10", "f15", "f20"}),
        ({"onset-date": "2019"}, {"c1"}),
        ({"onset-date": "2019-03"}, {"c1"}),  # onsetDateTime "2019-03" covers the whole month
        ({"onset-date": "2019-03-15"}, set()),
        ({"onset-date": "ge2019-03-15", "patient": "pat-1"}, {"c1"}),
        ({"onset-date": "2005"}, {"c4"}),
        ({"onset-date": "lt2011", "patient": "pat-1"}, {"c3"}),
        ({"onset-date": "gt2014", "patient": "pat-1"}, {"c1", "c3"}),  # period end 2015-06-30
        ({"onset-date": "ge2016", "patient": "pat-1"}, {"c1"}),
        ({"onset-date": "eq2010"}, set()),  # 2010..2015 is not inside 2010
        ({"onset-date": "2010-01-01T00:00:00Z"}, set()),
        ({"onset-date:missing": "false", "patient": "pat-1"}, {"c1", "c3"}),
        ({"_lastUpdated": "2024-01"}, {"c1", "c2"}),
        ({"_lastUpdated": "gt2024-03-01"}, {"c4", *FILLERS}),
        ({"_lastUpdated": "le2024-02-10T12:00:00Z"}, {"c1", "c2", "c3"}),
    ],
)
def test_condition_dates(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Condition", params) == expected


# ------------------------------------------------------------------------------------------------ other types


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "pat-1"}, {"m1", "m2"}),
        ({"subject": "Patient/pat-2"}, {"m3"}),
        ({"code": "http://www.nlm.nih.gov/research/umls/rxnorm|860975"}, {"m1"}),
        ({"code": "274783"}, {"m3"}),
        ({"code:text": "insulin"}, {"m3"}),
        ({"status": "completed"}, {"m2"}),
        ({"status": "http://hl7.org/fhir/CodeSystem/medication-statement-status|active"}, {"m1", "m3"}),
        ({"status:not": "active"}, {"m2"}),
        ({"effective": "2019"}, {"m2"}),
        ({"effective": "ge2020"}, {"m1", "m3"}),
        ({"effective": "2019-03"}, set()),  # the period is longer than March
        ({"effective": "le2019-03-15"}, {"m2"}),
        ({"effective": "2020-01-10T08:00:00Z"}, {"m3"}),
        ({"context": "enc-2"}, {"m2"}),
        ({"context": "Encounter/enc-1"}, {"m1"}),
        ({"source-document": "DocumentReference/doc-1"}, {"m1"}),
        ({"_id": "m2,m3"}, {"m2", "m3"}),
        ({"_lastUpdated": "ge2024-02-01"}, {"m2", "m3"}),
    ],
)
def test_medication_statement(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/MedicationStatement", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"target": "Condition/c1"}, {"prov-doc-1"}),
        ({"target": "m2"}, {"prov-doc-2"}),
        ({"target:Condition": "c4"}, {"prov-doc-3"}),
        ({"target": "Condition/c1,Condition/c4"}, {"prov-doc-1", "prov-doc-3"}),
        ({"target": "Patient/pat-1"}, set()),
        ({"source-document": "doc-4"}, {"prov-doc-4"}),
        ({"source-document": "DocumentReference/doc-1"}, {"prov-doc-1"}),
        ({"_id": "prov-doc-2"}, {"prov-doc-2"}),
        ({"recorded": "2024-02"}, {"prov-doc-2"}),
        ({"recorded": "ge2024-03-10T12:00:00Z"}, {"prov-doc-3", "prov-doc-4"}),
    ],
)
def test_provenance(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Provenance", params) == expected


ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"code:below": f"{ICD}|E11"}, {"c1"}),
        ({"code:below": f"{ICD}|E11.9"}, {"c1"}),
        ({"code:below": f"{ICD}|E11.6"}, set()),
        ({"code:below": f"{ICD}|E1"}, set()),  # no category E1: E11 is not "below" it
        ({"code:below": f"{ICD}|E10,{ICD}|E11"}, {"c1", "c4"}),
        ({"code:below": f"{ICD}|E10", "patient": "pat-1"}, set()),
        ({"code:not": f"{ICD}|E11.9", "patient": "pat-1"}, {"c2", "c3"}),
        ({"code": f"{ICD}|E11"}, set()),  # without :below only the exact code matches
    ],
)
def test_code_below_icd10cm(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/Condition", params) == expected


def test_code_below_needs_a_hierarchy(client: TestClient) -> None:
    bad(client, "/Condition", {"code:below": "E11"})
    bad(client, "/Condition", {"code:below": "http://snomed.info/sct|44054006"})
    bad(client, "/Condition", {"code:below": f"{ICD}|"})
    bad(client, "/MedicationStatement", {"code:below": f"{ICD}|E11"})
    cap = client.get("/metadata").json()
    cond = next(r for r in cap["rest"][0]["resource"] if r["type"] == "Condition")
    code = next(p for p in cond["searchParam"] if p["name"] == "code")
    assert ":below" in code["documentation"] and ICD in code["documentation"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient": "pat-1"}, {"a1"}),
        ({"patient": "Patient/pat-2"}, {"a2"}),
        ({"code": "https://clinie.dev/fhir/CodeSystem/ingredient|sulfonamides"}, {"a2"}),
        ({"code": "penicillin"}, {"a1"}),
        ({"code:text": "sulfa"}, {"a2"}),
        ({"code:not": "penicillin"}, {"a2"}),
        ({"clinical-status": "active"}, {"a1"}),
        ({"clinical-status": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical|inactive"}, {"a2"}),
        ({"clinical-status": "http://terminology.hl7.org/CodeSystem/condition-clinical|inactive"}, set()),
        ({"verification-status": "confirmed"}, {"a2"}),
        ({"verification-status:not": "confirmed"}, {"a1"}),
        ({"date": "2020-05"}, {"a1"}),
        ({"date:missing": "true"}, {"a2"}),
        ({"source-document": "doc-3"}, {"a2"}),
        ({"_lastUpdated": "ge2024-02-01"}, {"a2"}),
    ],
)
def test_allergy_intolerance(client: TestClient, params: Any, expected: set[str]) -> None:
    assert found(client, "/AllergyIntolerance", params) == expected


def test_allergy_read_and_revinclude(client: TestClient) -> None:
    r = client.get("/AllergyIntolerance/a1")
    assert r.status_code == 200 and r.json()["category"] == ["medication"]
    body = search(client, "/Patient", {"_id": "pat-1", "_revinclude": "AllergyIntolerance:patient"})
    assert set(ids(body, "include")) == {"a1"}
    body = search(client, "/AllergyIntolerance", {"_id": "a2", "_revinclude": "Provenance:target"})
    assert set(ids(body, "include")) == {"prov-doc-3"}


def test_patient(client: TestClient) -> None:
    assert found(client, "/Patient", {}) == {"pat-1", "pat-2", "pat-3"}
    assert found(client, "/Patient", {"_id": "pat-2"}) == {"pat-2"}
    assert found(client, "/Patient", {"_lastUpdated": "2024"}) == {"pat-1", "pat-2", "pat-3"}


def test_everything_from_one_note(client: TestClient) -> None:
    """A researcher sees all that was extracted from doc-1."""
    got = set()
    for rtype in ("Condition", "MedicationStatement", "AllergyIntolerance", "Provenance"):
        got |= {f"{rtype}/{i}" for i in found(client, f"/{rtype}", {"source-document": "DocumentReference/doc-1"})}
    assert got == {
        "Condition/c1", "Condition/c2", "MedicationStatement/m1", "AllergyIntolerance/a1", "Provenance/prov-doc-1"
    }


# ------------------------------------------------------------------------------------------------ paging & sort


def _follow(client: TestClient, body: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    pages = [body]
    while True:
        link = next((lk["url"] for lk in pages[-1]["link"] if lk["relation"] == relation), None)
        if link is None:
            return pages
        parts = urlsplit(link)
        pages.append(search(client, parts.path, parse_qsl(parts.query)))
        assert len(pages) < 100


@pytest.mark.parametrize(
    "sort",
    [
        None,
        "-_id",
        "recorded-date",
        "-recorded-date",
        "-recorded-date,_id",
        "clinical-status,-_lastUpdated",
        "_lastUpdated",
        "-_lastUpdated,-_id",
        "patient,-onset-date",
    ],
)
def test_paging_forward_and_back(client: TestClient, sort: str | None) -> None:
    params = {"_count": "4"}
    if sort:
        params["_sort"] = sort
    first = search(client, "/Condition", params)
    assert first["total"] == len(ALL_CONDITIONS)
    assert not any(lk["relation"] == "previous" for lk in first["link"])
    pages = _follow(client, first, "next")
    assert len(pages) == 7
    assert all(len(ids(p)) == 4 for p in pages[:-1]) and len(ids(pages[-1])) == 3
    order = [i for p in pages for i in ids(p)]
    assert sorted(order) == sorted(ALL_CONDITIONS)  # each exactly once
    assert all(p["total"] == len(ALL_CONDITIONS) for p in pages)
    # the same pages walking back from the last one
    back = _follow(client, pages[-1], "previous")
    assert [ids(p) for p in reversed(back)] == [ids(p) for p in pages]
    # the whole result in one page has the same order
    assert ids(search(client, "/Condition", {**params, "_count": "50"})) == order


def test_sort_orders(client: TestClient) -> None:
    body = search(client, "/Condition", {"patient": "pat-1", "_sort": "-recorded-date"})
    assert ids(body) == ["c3", "c2", "c1"]
    body = search(client, "/Condition", {"patient": "pat-1", "_sort": "recorded-date"})
    assert ids(body) == ["c1", "c2", "c3"]
    body = search(client, "/Condition", {"patient": "pat-1", "_sort": "-_id"})
    assert ids(body) == ["c3", "c2", "c1"]
    # missing values sort as the greatest value: last ascending, first descending
    body = search(client, "/Condition", {"patient": "pat-3", "_sort": "recorded-date", "_count": "50"})
    assert ids(body)[-5:] == ["f00", "f05", "f10", "f15", "f20"]
    dates = [e["resource"].get("recordedDate") for e in body["entry"]][:-5]
    assert dates == sorted(dates)
    body = search(client, "/Condition", {"patient": "pat-3", "_sort": "-recorded-date", "_count": "50"})
    assert ids(body)[:5] == ["f00", "f05", "f10", "f15", "f20"]


def test_count_limits(client: TestClient) -> None:
    body = search(client, "/Condition", {"_count": "100000"})  # capped at max_page_size (50)
    assert len(ids(body)) == len(ALL_CONDITIONS)
    body = search(client, "/Condition", {})  # default page size 10
    assert len(ids(body)) == 10 and body["total"] == len(ALL_CONDITIONS)
    body = search(client, "/Condition", {"_count": "0"})
    assert body["total"] == len(ALL_CONDITIONS) and "entry" not in body
    for value in ("-1", "abc", "1.5", " 3", "+3"):
        bad(client, "/Condition", {"_count": value})


def test_links_are_absolute_and_keep_parameters(client: TestClient) -> None:
    body = search(client, "/Condition", [("patient", "pat-3"), ("code:text", "filler"), ("_count", "5")])
    links = {lk["relation"]: lk["url"] for lk in body["link"]}
    assert links["self"].startswith("http://testserver/Condition?")
    nxt = dict(parse_qsl(urlsplit(links["next"]).query))
    assert nxt["patient"] == "pat-3" and nxt["code:text"] == "filler" and nxt["_count"] == "5" and nxt["_cursor"]
    for e in body["entry"]:
        assert e["fullUrl"] == f"http://testserver/Condition/{e['resource']['id']}"


def test_cursor_tampering(client: TestClient) -> None:
    body = search(client, "/Condition", {"_count": "2", "_sort": "recorded-date"})
    link = next(lk["url"] for lk in body["link"] if lk["relation"] == "next")
    cursor = dict(parse_qsl(urlsplit(link).query))["_cursor"]
    bad(client, "/Condition", {"_count": "2", "_sort": "-recorded-date", "_cursor": cursor})  # other sort
    bad(client, "/Condition", {"_cursor": "not-a-cursor"})
    bad(client, "/Condition", {"_cursor": "eyJkIjoibmV4dCJ9"})


# ------------------------------------------------------------------------------------------------ result params


def test_summary_count(client: TestClient) -> None:
    body = search(client, "/Condition", {"patient": "pat-3", "_summary": "count"})
    assert body["total"] == 23 and "entry" not in body
    body = search(client, "/MedicationStatement", {"_summary": "count", "status": "active"})
    assert body["total"] == 2


def test_summary_data_and_bad_summary(client: TestClient) -> None:
    body = search(client, "/Condition", {"_id": "c1", "_summary": "data"})
    res = body["entry"][0]["resource"]
    assert "text" not in res and res["code"]["text"] == "Type 2 diabetes mellitus"
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in res["meta"][
        "tag"
    ]
    bad(client, "/Condition", {"_summary": "true"})
    bad(client, "/Condition", {"_summary": "nonsense"})


def test_elements(client: TestClient) -> None:
    body = search(client, "/Condition", {"_id": "c1", "_elements": "code,onset"})
    res = body["entry"][0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "code", "onsetDateTime", "subject"}  # subject: mandatory
    assert res["meta"]["tag"][-1]["code"] == "SUBSETTED"
    Condition.model_validate(res)
    body = search(client, "/Condition", {"_id": "c3", "_elements": "Condition.subject,onset[x]"})
    assert set(body["entry"][0]["resource"]) == {"resourceType", "id", "meta", "subject", "onsetPeriod"}
    body = search(client, "/MedicationStatement", {"_id": "m2", "_elements": "effective"})
    assert set(body["entry"][0]["resource"]) == {
        "resourceType",
        "id",
        "meta",
        "effectivePeriod",
        "status",
        "medicationCodeableConcept",
        "subject",
    }
    bad(client, "/Condition", {"_elements": "code;drop"})
    bad(client, "/Condition", {"_elements": "code,"})


def test_include_provenance_target(client: TestClient) -> None:
    body = search(client, "/Provenance", {"source-document": "doc-1", "_include": "Provenance:target"})
    assert ids(body) == ["prov-doc-1"]
    assert set(ids(body, "include")) == {"c1", "c2", "m1", "a1"}
    assert body["total"] == 1
    body = search(client, "/Provenance", {"source-document": "doc-1", "_include": "Provenance:target:Condition"})
    assert set(ids(body, "include")) == {"c1", "c2"}
    types = {e["resource"]["resourceType"] for e in body["entry"] if e["search"]["mode"] == "include"}
    assert types == {"Condition"}


def test_include_patient(client: TestClient) -> None:
    body = search(client, "/Condition", {"_id": "c1,c4", "_include": "Condition:patient"})
    assert set(ids(body, "include")) == {"pat-1", "pat-2"}
    body = search(client, "/MedicationStatement", {"_id": "m1,m2", "_include": "MedicationStatement:subject"})
    assert ids(body, "include") == ["pat-1"]  # once, though two matches reference it


def test_revinclude(client: TestClient) -> None:
    body = search(client, "/Condition", {"patient": "pat-1", "_revinclude": "Provenance:target"})
    assert set(ids(body)) == {"c1", "c2", "c3"}
    assert set(ids(body, "include")) == {"prov-doc-1", "prov-doc-2"}
    body = search(
        client,
        "/Patient",
        [("_id", "pat-2"), ("_revinclude", "Condition:patient"), ("_revinclude", "MedicationStatement:patient")],
    )
    assert ids(body) == ["pat-2"] and set(ids(body, "include")) == {"c4", "m3"}
    body = search(client, "/MedicationStatement", {"_id": "m3", "_revinclude": "Provenance:target:MedicationStatement"})
    assert ids(body, "include") == ["prov-doc-3"]


def test_include_errors(client: TestClient) -> None:
    bad(client, "/Condition", {"_include": "Provenance:target"})
    bad(client, "/Condition", {"_include": "*"})
    bad(client, "/Condition", {"_include": "Condition:encounter"})
    bad(client, "/Provenance", {"_include:iterate": "Provenance:target"})
    bad(client, "/Condition", {"_revinclude": "Provenance:target:Patient"})
    bad(client, "/Patient", {"_revinclude": "Observation:patient"})


def test_include_cap(settings: Any, engine: Any, make_token: Any) -> None:
    from services.fhir_api import create_app

    app = create_app(settings.model_copy(update={"max_include_size": 5}), engine=engine)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {make_token()}"
        body = search(c, "/Provenance", {"_id": "prov-doc-4", "_include": "Provenance:target"})
    assert len(ids(body, "include")) == 5
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["code"] == "too-costly"


# ------------------------------------------------------------------------------------------------ errors


def test_unknown_parameter(client: TestClient) -> None:
    body = bad(client, "/Condition", {"foo": "bar"})
    assert "foo" in body["issue"][0]["diagnostics"]
    bad(client, "/Condition", {"_has:Observation:patient:code": "x"})
    bad(client, "/Patient", {"code": "x"})
    r = client.get("/Condition", params={"foo": "bar", "patient": "pat-2"}, headers={"Prefer": "handling=lenient"})
    assert r.status_code == 200 and ids(r.json()) == ["c4"]
    assert "foo" not in r.json()["link"][0]["url"]


@pytest.mark.parametrize(
    "params",
    [
        {"recorded-date": "2020-13"},
        {"recorded-date": "2020-02-30"},
        {"recorded-date": "20200101"},
        {"recorded-date": "ap2020"},
        {"recorded-date": "xx2020"},
        {"recorded-date": "2020-05-01T25:00Z"},
        {"recorded-date": "2020-05-01T10:00:00+15:00"},
        {"recorded-date": "yesterday"},
        {"recorded-date": "0000"},
        {"recorded-date:text": "2020"},
        {"_lastUpdated": "2020-05-01T10"},
        {"code": "a|b|c"},
        {"code": "|"},
        {"code": "x,"},
        {"code:below": "x"},
        {"patient:identifier": "x"},
        {"patient": "Patient/"},
        {"patient": "a/b/c"},
        {"code:missing": "maybe"},
        {"_id:missing": "true"},
        {"_sort": "code-text"},
        {"_sort": "target"},
        {"_total": "sometimes"},
        {"_format": "xml"},
    ],
)
def test_malformed_values(client: TestClient, params: dict[str, str]) -> None:
    status = 406 if "_format" in params else 400
    bad(client, "/Condition", params, status=status)


def test_repeated_result_parameter(client: TestClient) -> None:
    bad(client, "/Condition", [("_count", "1"), ("_count", "2")])


def test_empty_parameter_is_ignored(client: TestClient) -> None:
    assert search(client, "/Condition", {"patient": "", "_count": "0"})["total"] == len(ALL_CONDITIONS)


def test_total_none(client: TestClient) -> None:
    body = search(client, "/Condition", {"_total": "none", "_count": "2"})
    assert "total" not in body and len(ids(body)) == 2


def test_post_search(client: TestClient) -> None:
    r = client.post("/Condition/_search", data={"patient": "pat-1", "code:text": "diabetes"})
    assert r.status_code == 200, r.text
    assert ids(r.json()) == ["c1"]
    r = client.post("/Condition/_search?_count=1", data={"patient": "pat-1"})
    assert r.status_code == 200 and len(ids(r.json())) == 1 and r.json()["total"] == 3
    r = client.post("/Condition/_search", content=b'{"patient": "x"}', headers={"content-type": "application/json"})
    assert r.status_code == 415


# ------------------------------------------------------------------------------------------------ read


def test_read(client: TestClient) -> None:
    r = client.get("/Condition/c1")
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"1"'
    assert "last-modified" in r.headers
    res = Condition.model_validate(r.json())
    assert res.id == "c1"
    assert next(iter(r.json())) == "resourceType"
    for path in ("/MedicationStatement/m1", "/Provenance/prov-doc-1", "/Patient/pat-1"):
        assert client.get(path).status_code == 200
    assert client.get("/Condition/c1/_history/1").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/Condition/nope", 404),
        ("/Condition/m1", 404),
        ("/Condition/c1/_history/2", 404),
        ("/Condition/c1/_history", 404),
        ("/Observation/x", 404),
        ("/Observation", 404),
        ("/Condition/" + "x" * 300, 404),
        ("/nothing/here/at/all", 404),
    ],
)
def test_read_not_found(client: TestClient, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status
    OperationOutcome.model_validate(r.json())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Condition"),
        ("PUT", "/Condition/c1"),
        ("DELETE", "/Condition/c1"),
        ("PATCH", "/Condition/c1"),
        ("POST", "/Condition/c1"),
        ("DELETE", "/Condition"),
        ("POST", "/metadata"),
    ],
)
def test_unsupported_methods(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, json={"resourceType": "Condition"})
    assert r.status_code == 405
    body = r.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["code"] == "not-supported"


# ------------------------------------------------------------------------------------------------ operational


def test_metadata(anon: TestClient) -> None:
    r = anon.get("/metadata")  # no token needed
    assert r.status_code == 200
    cs = r.json()
    CapabilityStatement.model_validate(cs)
    rest = cs["rest"][0]
    types = {res["type"]: res for res in rest["resource"]}
    assert set(types) == {"Condition", "MedicationStatement", "AllergyIntolerance", "Provenance", "Patient"}
    assert {p["name"]: p["type"] for p in types["AllergyIntolerance"]["searchParam"]} == {
        "_id": "token",
        "_lastUpdated": "date",
        "patient": "reference",
        "code": "token",
        "clinical-status": "token",
        "verification-status": "token",
        "date": "date",
        "source-document": "reference",
    }
    assert "AllergyIntolerance:patient" in types["Patient"]["searchRevInclude"]
    cond = {p["name"]: p["type"] for p in types["Condition"]["searchParam"]}
    assert cond == {
        "_id": "token",
        "_lastUpdated": "date",
        "patient": "reference",
        "subject": "reference",
        "code": "token",
        "clinical-status": "token",
        "verification-status": "token",
        "encounter": "reference",
        "recorded-date": "date",
        "onset-date": "date",
        "source-document": "reference",
    }
    ms = {p["name"] for p in types["MedicationStatement"]["searchParam"]}
    assert {"patient", "code", "status", "effective", "context", "source-document"} <= ms
    assert {p["name"] for p in types["Provenance"]["searchParam"]} == {
        "_id",
        "_lastUpdated",
        "target",
        "recorded",
        "source-document",
    }
    assert types["Provenance"]["searchInclude"] == ["Provenance:target"]
    assert "Provenance:target" in types["Condition"]["searchRevInclude"]
    assert [i["code"] for i in types["Condition"]["interaction"]] == ["read", "search-type"]
    assert rest["operation"][0]["name"] == "export"
    assert types["Patient"]["operation"][0]["name"] == "export"
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert cs["fhirVersion"] == "4.0.1"


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.get("/Condition", params={"patient": "pat-1"})
    text = client.get("/metrics").text
    assert "clinie_fhir_api_requests_total" in text
    assert 'route="/{rtype}"' in text
    assert "pat-1" not in text
