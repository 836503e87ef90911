"""Bulk export jobs are bound to the access context that started them (issue 12, defect 5).

Every combination of the token that started a job (system, patient A, patient B) and the token that polls,
downloads or deletes it: only the same client in the same patient compartment, still holding the scopes of every
exported type, gets the job; anything else is 401/403 and never sees a byte of the export.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services.fhir_api.test_fhir_api_export import ASYNC, path_of, wait_manifest

CREATORS: dict[str, dict[str, Any]] = {
    "system": {"scope": "system/*.read", "patient": None, "path": "/$export"},
    "patient-A": {"scope": "patient/*.read", "patient": "pat-1", "path": "/Patient/$export"},
    "patient-B": {"scope": "patient/*.read", "patient": "pat-2", "path": "/Patient/$export"},
}
# poller -> token claims, given the creator's; None = no Authorization header
POLLERS: dict[str, Any] = {
    "same": lambda c: {"scope": c["scope"], "patient": c["patient"]},
    "system": lambda c: {"scope": "system/*.read"},
    "patient-A": lambda c: {"scope": "patient/*.read", "patient": "pat-1"},
    "patient-B": lambda c: {"scope": "patient/*.read", "patient": "pat-2"},
    "openid-only": lambda c: {"scope": "openid fhirUser", "patient": c["patient"]},
    "fewer-scopes": lambda c: {"scope": c["scope"].replace("*", "Condition"), "patient": c["patient"]},
    "other-client": lambda c: {"scope": c["scope"], "patient": c["patient"], "sub": "client-2"},
    "expired": lambda c: {"scope": c["scope"], "patient": c["patient"], "exp_in": -3600},
    "anonymous": None,
}


def _allowed(creator: str, poller: str) -> bool:
    return poller == "same" or poller == creator


def _expected_status(creator: str, poller: str) -> int:
    if _allowed(creator, poller):
        return 200
    return 401 if poller in ("anonymous", "expired") else 403


@pytest.mark.parametrize("poller", list(POLLERS))
@pytest.mark.parametrize("creator", list(CREATORS))
def test_export_job_is_bound_to_its_access_context(
    anon: TestClient, make_token: Any, creator: str, poller: str
) -> None:
    c = CREATORS[creator]
    owner = make_token(scope=c["scope"], patient=c["patient"])
    r = anon.get(c["path"], headers={**ASYNC, "Authorization": f"Bearer {owner}"})
    assert r.status_code == 202, r.text
    status_url = r.headers["content-location"]
    manifest = wait_manifest(anon, status_url, owner)
    files = [path_of(o["url"]) for o in manifest["output"]]
    assert files

    claims = POLLERS[poller]
    headers = {} if claims is None else {"Authorization": f"Bearer {make_token(**claims(c))}"}
    expected = _expected_status(creator, poller)

    status = anon.get(path_of(status_url), headers=headers)
    assert status.status_code == expected, status.text
    for f in files:
        got = anon.get(f, headers=headers)
        assert got.status_code == expected
        if expected != 200:
            assert got.headers["content-type"].startswith("application/fhir+json")
            assert got.json()["resourceType"] == "OperationOutcome"
            assert "pat-" not in got.text
        elif c["patient"] is not None:  # a patient job holds nothing of the other patients
            other = {"pat-1", "pat-2", "pat-3"} - {c["patient"]}
            assert not any(f'Patient/{o}"' in got.text or f'"id":"{o}"' in got.text for o in other)

    deleted = anon.delete(path_of(status_url), headers=headers)
    assert deleted.status_code == (202 if expected == 200 else expected)
    # a refused delete leaves the job to its owner; an accepted one removes it for everyone
    after = anon.get(path_of(status_url), headers={"Authorization": f"Bearer {owner}"})
    assert after.status_code == (404 if expected == 200 else 200)
