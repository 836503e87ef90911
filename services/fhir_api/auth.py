"""Bearer-JWT authentication and SMART-on-FHIR scope checks.

Accepted scopes (v1 and v2 syntax), for the resource types of this server or ``*``:

* ``system/T.read``, ``user/T.read`` (also ``.*``, and v2 ``.rs``/``.r``/``.s``...): every patient's resources.
  There is no per-user access list here, so ``user/`` scopes are treated like ``system/`` scopes.
* ``patient/T.read`` (and v2 forms): only the resources of the patient in the token's ``patient`` claim (the
  SMART launch context). A patient scope without a ``patient`` claim grants nothing.

v1 ``read``/``*`` allow read and search; v2 ``r`` allows read, ``s`` search. v2 scopes with a query part
(``patient/Condition.rs?category=...``) are not supported and grant nothing. The broadest grant wins per type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from clinie.fhir.search import RESOURCE_TYPES
from services.fhir_api.errors import FhirError
from services.settings import ApiSettings

Interaction = Literal["read", "search"]

_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{0,63})\.(read|write|\*|c?r?u?d?s?)$")
_REALM = 'Bearer realm="clinie-fhir"'


@dataclass(frozen=True)
class Grant:
    """Access to one resource type: ``patient_id`` None means every patient's resources."""

    patient_id: str | None


@dataclass(frozen=True)
class Access:
    """What the caller may do. ``grants[(interaction, type)]`` is absent when not allowed at all."""

    grants: dict[tuple[Interaction, str], Grant] = field(default_factory=dict)
    subject: str | None = None  # token sub/client_id (owner of bulk exports); None when auth is disabled
    auth_enabled: bool = True

    @classmethod
    def unrestricted(cls) -> Access:
        grants: dict[tuple[Interaction, str], Grant] = {}
        for t in RESOURCE_TYPES:
            grants[("read", t)] = Grant(None)
            grants[("search", t)] = Grant(None)
        return cls(grants=grants, subject=None, auth_enabled=False)

    def grant(self, interaction: Interaction, resource_type: str) -> Grant:
        g = self.grants.get((interaction, resource_type))
        if g is None:
            raise FhirError(
                403,
                f"the access token does not allow {interaction} of {resource_type}",
                headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'},
            )
        return g

    def allows(self, interaction: Interaction, resource_type: str) -> bool:
        return (interaction, resource_type) in self.grants


def parse_scopes(scopes: list[str], patient_claim: str | None) -> dict[tuple[Interaction, str], Grant]:
    grants: dict[tuple[Interaction, str], Grant] = {}
    for scope in scopes:
        m = _SCOPE.match(scope)
        if m is None:
            continue  # openid, fhirUser, launch/patient, offline_access, scopes with queries, ...
        level, rtype, perm = m.groups()
        if perm in ("read", "*"):
            interactions: list[Interaction] = ["read", "search"]
        elif perm == "write" or not perm:
            continue
        else:
            interactions = [i for i, ch in (("read", "r"), ("search", "s")) if ch in perm]  # type: ignore[misc]
        types = RESOURCE_TYPES if rtype == "*" else ((rtype,) if rtype in RESOURCE_TYPES else ())
        if level == "patient":
            if not patient_claim:
                continue
            new = Grant(patient_claim)
        else:
            new = Grant(None)
        for t in types:
            for i in interactions:
                old = grants.get((i, t))
                if old is None or (old.patient_id is not None and new.patient_id is None):
                    grants[(i, t)] = new
    return grants


def _scopes_of(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list):
        return [s for s in raw if isinstance(s, str)]
    return []


class Authenticator:
    """Verifies bearer tokens; built once per app from the settings (keys are loaded eagerly)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.enabled = settings.auth_enabled
        self.algorithms = list(settings.jwt_algorithms)
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self.leeway = settings.jwt_leeway_s
        self._pem: str | None = None
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_client: jwt.PyJWKClient | None = None
        if not self.enabled:
            return
        if settings.jwt_public_key is not None or settings.jwt_public_key_file is not None:
            pem = (
                settings.jwt_public_key
                if settings.jwt_public_key is not None
                else settings.jwt_public_key_file.read_text()  # type: ignore[union-attr]
            )
            load_pem_public_key(pem.encode())  # fail at start-up on a bad key
            self._pem = pem
        elif settings.jwt_jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_dict(json.loads(settings.jwt_jwks_file.read_text()))
        elif settings.jwt_jwks_url is not None:
            self._jwks_client = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)

    def _unauthorized(self, diagnostics: str, *, invalid: bool) -> FhirError:
        challenge = f'{_REALM}, error="invalid_token"' if invalid else _REALM
        return FhirError(401, diagnostics, headers={"WWW-Authenticate": challenge})

    def _key_for(self, token: str) -> Any:
        if self._pem is not None:
            return self._pem
        if self._jwks_client is not None:
            try:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as exc:
                raise FhirError(503, "the key set of the token issuer is unreachable") from exc
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = list(self._jwks.keys)
        if kid is not None:
            keys = [k for k in keys if k.key_id == kid]
        if len(keys) != 1:
            raise self._unauthorized("no matching key for the token", invalid=True)
        return keys[0].key

    def authenticate(self, authorization: str | None) -> Access:
        if not self.enabled:
            return Access.unrestricted()
        if not authorization:
            raise self._unauthorized("authentication required (Bearer token)", invalid=False)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise self._unauthorized("authentication required (Bearer token)", invalid=False)
        try:
            key = self._key_for(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise self._unauthorized("the token has expired", invalid=True) from exc
        except jwt.InvalidAudienceError as exc:
            raise self._unauthorized("the token audience is not accepted", invalid=True) from exc
        except jwt.InvalidIssuerError as exc:
            raise self._unauthorized("the token issuer is not accepted", invalid=True) from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise self._unauthorized("invalid token", invalid=True) from exc
        patient = claims.get("patient")
        patient_claim = patient.removeprefix("Patient/") if isinstance(patient, str) and patient else None
        grants = parse_scopes(_scopes_of(claims), patient_claim)
        ids = [claims.get(c) for c in ("sub", "client_id", "azp")]
        subject = next((v for v in ids if isinstance(v, str) and v), None)
        return Access(grants=grants, subject=subject, auth_enabled=True)
