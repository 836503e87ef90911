"""The API's security matrix (issue 12): hostile tokens x every data-bearing endpoint.

Shared by ``test_fhir_api_security_matrix.py`` (in-process, seeded database) and the fault suite
(``benchmarks/faults/run.py``, a real uvicorn API over the notes the extractor stored). Both pass an
``httpx.Client`` (``fastapi.testclient.TestClient`` is one) and a :class:`Victim`: a patient, one of its
Conditions, and a bulk-export job started by that patient's own token.

Attacks: no token, an expired token, a token signed by another key, an unsigned ``alg=none`` token, a token for
another audience (all 401 with ``WWW-Authenticate: Bearer``), and a valid token of *another* patient
(``cross_patient``: 403 on read and on the victim's export job, and on system-level kick-off; a search or
``_include``/``_revinclude`` answers 200 with the caller's own compartment only; a ``Patient/$export`` kick-off
exports the caller's own compartment only). Whatever the status, no response carries a byte of the victim's data
(the victim's patient id or any extra marker: pick
markers that cannot occur by chance, e.g. not a short id that a random Bundle id may contain).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ATTACKS = ("anonymous", "expired", "wrong_signature", "alg_none", "wrong_audience", "cross_patient")
ENDPOINTS = (
    "read_condition",
    "read_patient",
    "search",
    "search_post",
    "include",
    "revinclude",
    "export_kickoff_system",
    "export_kickoff_patient",
    "export_poll",
    "export_download",
    "export_delete",
)
MATRIX = [(a, e) for a in ATTACKS for e in ENDPOINTS]
#: an httpx.Client or starlette's TestClient (which may come from another httpx distribution)
HttpClient = Any
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@dataclass(frozen=True)
class Issuer:
    """Signs tokens the API under test trusts (``private_pem``/``audience``/``issuer`` match its settings)."""

    private_pem: bytes
    audience: str
    issuer: str

    def token(self, scope: str, patient: str | None = None, sub: str = "client-1", exp_in: int = 600,
              audience: str | None = None, key: bytes | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": audience or self.audience, "iat": now,
                                  "exp": now + exp_in, "scope": scope, "sub": sub}
        if patient is not None:
            claims["patient"] = patient
        return jwt.encode(claims, key or self.private_pem, algorithm="RS256")


def new_private_key() -> bytes:
    """A fresh RSA key (PEM, PKCS8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@functools.cache
def untrusted_key() -> bytes:
    """A key the API under test does not trust (one per process; never use it as the issuer's key)."""
    return new_private_key()


@dataclass
class Victim:
    patient: str
    condition: str  # the id of one of the victim's resources of type ``resource_type``
    resource_type: str = "Condition"  # Condition or MedicationStatement (both have ``patient`` and ``:patient``)
    job_status_path: str = ""
    job_file_paths: list[str] = field(default_factory=list)
    markers: tuple[str, ...] = ()

    def all_markers(self) -> tuple[str, ...]:
        # the id as it ends in JSON (``"Patient/pat-1"``): ``pat-1`` must not match inside ``pat-10``
        return (f'{self.patient}"', *self.markers)


def path_of(url: str) -> str:
    return urlsplit(url).path


def wait_export(client: HttpClient, status_path: str, token: str, timeout: float = 60.0) -> list[str]:
    """Poll an export job with its owner's token until done; the paths of its files."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(status_path, headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 200:
            return [path_of(o["url"]) for o in r.json()["output"]]
        if r.status_code != 202:
            raise AssertionError(f"export poll answered {r.status_code}")
        time.sleep(0.1)
    raise AssertionError("export did not finish")


def start_victim_export(client: HttpClient, issuer: Issuer, victim: Victim) -> None:
    """Start and finish a ``Patient/$export`` with the victim's own token; record its status and file paths."""
    token = issuer.token("patient/*.read", patient=victim.patient)
    r = client.get("/Patient/$export", headers={**ASYNC, "Authorization": f"Bearer {token}"})
    if r.status_code != 202:
        raise AssertionError(f"victim export kick-off answered {r.status_code}")
    victim.job_status_path = path_of(r.headers["content-location"])
    victim.job_file_paths = wait_export(client, victim.job_status_path, token)
    if not victim.job_file_paths:
        raise AssertionError("the victim's export has no files")


def attack_headers(attack: str, issuer: Issuer, attacker_patient: str) -> dict[str, str]:
    """The Authorization header of one attack (none for ``anonymous``)."""
    if attack == "anonymous":
        return {}
    if attack == "expired":
        token = issuer.token("system/*.read", exp_in=-3600)
    elif attack == "wrong_signature":
        if untrusted_key() == issuer.private_pem:
            raise ValueError("the issuer signs with the untrusted key: the attack would test nothing")
        token = issuer.token("system/*.read", key=untrusted_key())
    elif attack == "alg_none":
        now = int(time.time())
        token = jwt.encode({"iss": issuer.issuer, "aud": issuer.audience, "exp": now + 600, "sub": "client-1",
                            "scope": "system/*.read"}, None, algorithm="none")  # type: ignore[arg-type]
    elif attack == "wrong_audience":
        token = issuer.token("system/*.read", audience="someone-else")
    elif attack == "cross_patient":
        token = issuer.token("patient/*.read", patient=attacker_patient)
    else:
        raise ValueError(attack)
    return {"Authorization": f"Bearer {token}"}


def _request(client: HttpClient, endpoint: str, victim: Victim, headers: dict[str, str]) -> Any:
    p, c, rt = victim.patient, victim.condition, victim.resource_type
    if endpoint == "read_condition":
        return client.get(f"/{rt}/{c}", headers=headers)
    if endpoint == "read_patient":
        return client.get(f"/Patient/{p}", headers=headers)
    if endpoint == "search":
        return client.get(f"/{rt}", params={"patient": p}, headers=headers)
    if endpoint == "search_post":
        return client.post(f"/{rt}/_search", data={"_id": c}, headers=headers)
    if endpoint == "include":
        return client.get(f"/{rt}", params={"_id": c, "_include": f"{rt}:patient"}, headers=headers)
    if endpoint == "revinclude":
        return client.get("/Patient", params={"_id": p, "_revinclude": f"{rt}:patient"}, headers=headers)
    if endpoint == "export_kickoff_system":
        return client.get("/$export", headers={**ASYNC, **headers})
    if endpoint == "export_kickoff_patient":
        return client.get("/Patient/$export", headers={**ASYNC, **headers})
    if endpoint == "export_poll":
        return client.get(victim.job_status_path, headers=headers)
    if endpoint == "export_download":
        return client.get(victim.job_file_paths[0], headers=headers)
    if endpoint == "export_delete":
        return client.delete(victim.job_status_path, headers=headers)
    raise ValueError(endpoint)


def _expected(attack: str, endpoint: str) -> int:
    if attack != "cross_patient":
        return 401
    if endpoint in ("search", "search_post", "include", "revinclude"):
        return 200  # the caller's own compartment: none of the victim's resources
    if endpoint == "export_kickoff_patient":
        return 202  # an export of the caller's own compartment (checked below)
    return 403


def _leaks(text: str, victim: Victim) -> list[str]:
    return [m for m in victim.all_markers() if m in text]


def _body_without_links(r: Any) -> str:
    """The response body, less a Bundle's ``link`` (its self link echoes the caller's own query)."""
    try:
        body = r.json()
    except ValueError:
        return r.text
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        body = {k: v for k, v in body.items() if k != "link"}
    return json.dumps(body)


def check(client: HttpClient, attack: str, endpoint: str, issuer: Issuer, victim: Victim,
          attacker_patient: str) -> list[str]:
    """Run one cell of the matrix; the list of what went wrong (empty: the API held)."""
    problems: list[str] = []
    headers = attack_headers(attack, issuer, attacker_patient)
    r = _request(client, endpoint, victim, headers)
    want = _expected(attack, endpoint)
    if r.status_code != want:
        problems.append(f"status {r.status_code}, expected {want}")
    if want == 401 and not r.headers.get("www-authenticate", "").startswith("Bearer"):
        problems.append("401 without a Bearer challenge")
    if want in (401, 403) and r.status_code == want and r.json().get("resourceType") != "OperationOutcome":
        problems.append("refusal is not an OperationOutcome")
    problems += [f"victim marker {m!r} in the response" for m in _leaks(_body_without_links(r), victim)]
    if want == 200 and r.status_code == 200 and r.json().get("entry"):
        problems.append(f"{len(r.json()['entry'])} entries returned to another patient")
    if want == 202 and r.status_code == 202:  # the attacker's own export: download it, look for the victim
        files = wait_export(client, path_of(r.headers["content-location"]),
                            headers["Authorization"].removeprefix("Bearer "))
        for f in files:
            problems += [f"victim marker {m!r} in the attacker's export" for m in
                         _leaks(client.get(f, headers=headers).text, victim)]
        client.delete(path_of(r.headers["content-location"]), headers=headers)
    return problems


def still_owned(client: HttpClient, issuer: Issuer, victim: Victim) -> bool:
    """After the matrix: the victim's job is intact for its owner (no refused delete went through)."""
    token = issuer.token("patient/*.read", patient=victim.patient)
    return client.get(victim.job_status_path, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def run_matrix(client: HttpClient, issuer: Issuer, victim: Victim, attacker_patient: str
               ) -> Iterator[tuple[str, str, list[str]]]:
    """Every cell: (attack, endpoint, problems)."""
    for attack, endpoint in MATRIX:
        yield attack, endpoint, check(client, attack, endpoint, issuer, victim, attacker_patient)
