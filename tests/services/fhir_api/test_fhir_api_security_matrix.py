"""The security matrix (issue 12): anonymous, expired, wrongly signed, ``alg=none``, wrong-audience and
cross-patient requests on read, search, ``_include``/``_revinclude`` and every ``$export`` endpoint (kick-off,
poll, download, delete). The same matrix runs in the fault suite against a real API over extracted notes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services.fhir_api.conftest import AUDIENCE, ISSUER
from tests.services.fhir_api.security_matrix import MATRIX, Issuer, Victim, check, start_victim_export, still_owned


@pytest.fixture(scope="module")
def issuer(keys: Any) -> Issuer:
    return Issuer(keys.private_pem, AUDIENCE, ISSUER)


@pytest.fixture(scope="module")
def victim(anon: TestClient, issuer: Issuer) -> Iterator[Victim]:
    """pat-1 (Condition c1, 'Type 2 diabetes', Metformin) with a finished export of its own compartment."""
    v = Victim("pat-1", "c1", markers=("Type 2 diabetes", "Metformin", "Essential hypertension"))
    start_victim_export(anon, issuer, v)
    yield v
    assert still_owned(anon, issuer, v)  # no refused delete went through


@pytest.mark.parametrize(("attack", "endpoint"), MATRIX)
def test_security_matrix(anon: TestClient, issuer: Issuer, victim: Victim, attack: str, endpoint: str) -> None:
    assert check(anon, attack, endpoint, issuer, victim, attacker_patient="pat-2") == []
