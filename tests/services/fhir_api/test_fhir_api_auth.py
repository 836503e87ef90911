"""Authentication (bearer JWT) and SMART scopes, including patient-scoped tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError
from sqlalchemy import Engine

from services.fhir_api import ApiSettings, create_app
from services.fhir_api.auth import Grant, parse_scopes


def ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode}


def get(client: TestClient, path: str, token: str | None, params: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, params=params, headers=headers)


@pytest.mark.parametrize("path", ["/Condition", "/Condition/c1", "/Patient", "/$export", "/_bulk/status/x"])
def test_no_token_401(anon: TestClient, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    OperationOutcome.model_validate(r.json())
    assert r.json()["issue"][0]["code"] == "login"


def test_invalid_tokens_401(anon: TestClient, make_token: Any) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bad_tokens = [
        make_token(key=other),  # wrong signature
        make_token(exp_in=-3600),  # expired
        make_token(audience="someone-else"),
        make_token(issuer="https://evil.example"),
        "not.a.jwt",
        jwt.encode({"scope": "system/*.read", "exp": 9999999999, "aud": "clinie-fhir-test"}, "s" * 32, "HS256"),
        jwt.encode({"scope": "system/*.read"}, None, "none"),  # type: ignore[arg-type]
    ]
    for token in bad_tokens:
        r = get(anon, "/Condition", token)
        assert r.status_code == 401, token
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = anon.get("/Condition", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401


def test_token_without_exp_rejected(anon: TestClient, keys: Any) -> None:
    token = jwt.encode(
        {"scope": "system/*.read", "aud": "clinie-fhir-test", "iss": "https://auth.clinie.test"},
        keys.private_pem,
        algorithm="RS256",
    )
    assert get(anon, "/Condition", token).status_code == 401


def test_type_scopes(anon: TestClient, make_token: Any) -> None:
    token = make_token("system/Condition.read")
    assert get(anon, "/Condition", token).status_code == 200
    assert get(anon, "/Condition/c4", token).status_code == 200
    r = get(anon, "/MedicationStatement", token)
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert get(anon, "/MedicationStatement/m1", token).status_code == 403
    # scopes for other purposes grant nothing
    token = make_token("openid fhirUser launch/patient offline_access system/Condition.write")
    assert get(anon, "/Condition", token).status_code == 403


def test_user_scope_sees_everyone(anon: TestClient, make_token: Any) -> None:
    r = get(anon, "/Condition", make_token("user/*.read"), {"_count": "50"})
    assert r.status_code == 200 and r.json()["total"] == 27


def test_patient_token_reading_other_patient_403(anon: TestClient, make_token: Any) -> None:
    token = make_token("patient/*.read", patient="pat-1")
    assert get(anon, "/Condition/c1", token).status_code == 200
    for path in ("/Condition/c4", "/MedicationStatement/m3", "/Provenance/prov-doc-3", "/Patient/pat-2"):
        r = get(anon, path, token)
        assert r.status_code == 403, path
        OperationOutcome.model_validate(r.json())
    assert get(anon, "/Patient/pat-1", token).status_code == 200
    assert get(anon, "/Condition/nope", token).status_code == 404


def test_patient_token_searches_only_own_patient(anon: TestClient, make_token: Any) -> None:
    token = make_token("patient/*.read", patient="pat-1")
    assert ids(get(anon, "/Condition", token, {"_count": "50"}).json()) == {"c1", "c2", "c3"}
    assert ids(get(anon, "/Condition", token, {"patient": "pat-2"}).json()) == set()
    assert ids(get(anon, "/Condition", token, {"code:text": "diabetes"}).json()) == {"c1"}
    assert ids(get(anon, "/MedicationStatement", token).json()) == {"m1", "m2"}
    assert ids(get(anon, "/Provenance", token).json()) == {"prov-doc-1", "prov-doc-2"}
    assert ids(get(anon, "/Patient", token).json()) == {"pat-1"}
    assert get(anon, "/Condition", token, {"_summary": "count"}).json()["total"] == 3
    # includes are filtered too
    body = get(anon, "/Patient", token, [("_revinclude", "Condition:patient")]).json()
    assert ids(body, "include") == {"c1", "c2", "c3"}
    body = get(anon, "/Provenance", token, {"_include": "Provenance:target"}).json()
    assert ids(body, "include") == {"c1", "c2", "c3", "m1", "m2", "a1"}
    assert ids(get(anon, "/AllergyIntolerance", token).json()) == {"a1"}


def test_patient_claim_as_reference(anon: TestClient, make_token: Any) -> None:
    token = make_token("patient/Condition.read", patient="Patient/pat-2")
    assert ids(get(anon, "/Condition", token).json()) == {"c4"}


def test_patient_scope_without_patient_claim_403(anon: TestClient, make_token: Any) -> None:
    assert get(anon, "/Condition", make_token("patient/*.read")).status_code == 403


def test_smart_v2_scopes(anon: TestClient, make_token: Any) -> None:
    rs = make_token("patient/Condition.rs", patient="pat-1")
    assert ids(get(anon, "/Condition", rs).json()) == {"c1", "c2", "c3"}
    assert get(anon, "/Condition/c1", rs).status_code == 200
    r_only = make_token("patient/Condition.r", patient="pat-1")
    assert get(anon, "/Condition/c1", r_only).status_code == 200
    assert get(anon, "/Condition", r_only).status_code == 403
    s_only = make_token("system/Condition.s")
    assert get(anon, "/Condition", s_only).status_code == 200
    assert get(anon, "/Condition/c1", s_only).status_code == 403
    # v2 scopes with a query part are not supported: they grant nothing
    assert get(anon, "/Condition", make_token("system/Condition.rs?category=problem")).status_code == 403


def test_include_needs_scope_for_included_type(anon: TestClient, make_token: Any) -> None:
    token = make_token("patient/Condition.read", patient="pat-1")
    body = get(anon, "/Condition", token, {"_include": "Condition:patient"}).json()
    assert ids(body) == {"c1", "c2", "c3"} and ids(body, "include") == set()


def test_broadest_grant_wins() -> None:
    grants = parse_scopes(["patient/*.read", "system/Condition.read"], "pat-1")
    assert grants[("read", "Condition")] == Grant(None)
    assert grants[("search", "MedicationStatement")] == Grant("pat-1")
    assert parse_scopes(["patient/Observation.read", "system/Foo.read", "bogus"], "pat-1") == {}


def test_scp_claim_list(anon: TestClient, keys: Any) -> None:
    import time

    token = jwt.encode(
        {
            "scp": ["system/Patient.read"],
            "aud": "clinie-fhir-test",
            "iss": "https://auth.clinie.test",
            "exp": int(time.time()) + 60,
        },
        keys.private_pem,
        algorithm="RS256",
    )
    assert get(anon, "/Patient", token).status_code == 200


def test_jwks_file(tmp_path: Path, keys: Any, make_token: Any, engine: Engine, pg_url: str) -> None:
    public = serialization.load_pem_public_key(keys.public_pem.encode())
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))  # type: ignore[arg-type]
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    settings = ApiSettings(
        database_url=pg_url,
        jwt_jwks_file=jwks,
        jwt_audience="clinie-fhir-test",
        export_dir=tmp_path / "exports",
    )
    with TestClient(create_app(settings, engine=engine)) as c:
        assert get(c, "/Condition/c1", make_token(kid="k1")).status_code == 200
        assert get(c, "/Condition/c1", make_token(kid="other")).status_code == 401
        assert get(c, "/Condition/c1", make_token()).status_code == 200  # no kid, one key


def test_auth_disabled_explicitly(engine: Engine, pg_url: str, tmp_path: Path) -> None:
    settings = ApiSettings(database_url=pg_url, auth_enabled=False, export_dir=tmp_path)
    with TestClient(create_app(settings, engine=engine)) as c:
        assert c.get("/Condition/c4").status_code == 200
        assert c.get("/Condition", params={"_summary": "count"}).json()["total"] == 27
        assert "security" not in c.get("/metadata").json()["rest"][0]


def test_auth_needs_a_key(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "CLINIE_JWT_PUBLIC_KEY",
        "CLINIE_JWT_PUBLIC_KEY_FILE",
        "CLINIE_JWT_JWKS_FILE",
        "CLINIE_JWT_JWKS_URL",
        "CLINIE_AUTH_ENABLED",
    ):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValidationError):
        ApiSettings(database_url=pg_url)
    with pytest.raises(ValidationError):
        ApiSettings(database_url=pg_url, jwt_public_key="x", jwt_algorithms=["HS256"])


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, keys: Any) -> None:
    monkeypatch.setenv("CLINIE_JWT_PUBLIC_KEY", keys.public_pem)
    monkeypatch.setenv("CLINIE_MAX_PAGE_SIZE", "200")
    monkeypatch.setenv("CLINIE_JWT_ALGORITHMS", '["RS256"]')
    s = ApiSettings()
    assert s.auth_enabled and s.max_page_size == 200 and s.jwt_algorithms == ["RS256"]
