"""The environment variables the chart passes are exactly the settings the code reads.

For each component, every ``CLINIE_*`` variable the chart sets (``env`` and ``envFrom`` ConfigMaps) must be a field
of that component's pydantic-settings class, every field must be set by the chart in some value set (or be listed
in ``NOT_PASSED`` with the reason), and the rendered values must load into the settings class without error.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

# Where the services' settings classes live. If they move, this import is the only line to change.
from services.settings import ApiSettings, ExtractorSettings
from tests.deploy.chart import REPO, VALUE_SETS, Manifest, env_names, named, of_kind, render, value_set

pytest.importorskip("helm_python", reason="helm-python-sdk is not installed (dev extra)")

SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "extractor": (ExtractorSettings,),
    "api": (ApiSettings,),
    # `clinie db upgrade` needs only the database URL, which both services read the same way
    "migrations": (ExtractorSettings, ApiSettings),
}

# Settings fields the chart deliberately never sets, and why
NOT_PASSED: dict[str, dict[str, str]] = {
    "extractor": {
        **dict.fromkeys(("triton_ssl", "triton_ssl_ca_file", "triton_ssl_cert_file", "triton_ssl_key_file"),
                        "the chart's Triton is in-cluster behind a NetworkPolicy, in clear; TLS is for a Triton "
                        "outside the release (set it with the pod's environment and a mounted Secret)"),
        "terminology_index": "an index built from the hospital's own licensed RxNorm/SNOMED CT files (`clinie "
                             "terminology build`): mount it and set CLINIE_TERMINOLOGY_INDEX in the pod's environment; "
                             "off by default (ICD-10-CM, ingredients and UNII need no index)",
        "dense_index": "an optional artifact built by `clinie terminology build --dense` (12 MB, not in the image): "
                       "mount it and set CLINIE_DENSE_INDEX; off by default",
        "forms_index": "built into the image at image build time (`clinie terminology build --forms`; the Dockerfile "
                       "sets CLINIE_FORMS_INDEX); nothing to configure",
        "fault_kill_after_commit": "test-only fault injection of the fault suite; must never be set in a deployment",
    },
    "api": {"jwt_public_key": "keys are mounted from a Secret as files: CLINIE_JWT_PUBLIC_KEY_FILE / _JWKS_FILE"},
    "migrations": {},
}

# Variables outside the CLINIE_ settings that the chart sets on purpose
OTHER_ENV: dict[str, str] = {}

# Settings that name files mounted from Secrets; the settings class checks that they exist
MOUNTED_FILES = ("CLINIE_KAFKA_SSL_CA_FILE", "CLINIE_KAFKA_SSL_CERT_FILE", "CLINIE_KAFKA_SSL_KEY_FILE",
                 "CLINIE_KAFKA_SASL_OAUTH_TOKEN_FILE")


def setting_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable name -> field name, as pydantic-settings reads them (prefix + field, or an alias)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, str] = {}
    for field, info in cls.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        names[(alias or f"{prefix}{field}").upper()] = field
    return names


def test_settings_classes_are_all_known() -> None:
    """Every concrete pydantic-settings class in clinie/ and services/ is mapped to a chart component here (a shared
    base such as ``ServiceSettings`` is covered through the classes that extend it)."""
    bases: dict[str, str] = {}
    for path in [*REPO.joinpath("clinie").rglob("*.py"), *REPO.joinpath("services").rglob("*.py")]:
        bases |= dict(re.findall(r"^class (\w+)\((\w+)\):", path.read_text(), flags=re.M))
    settings = {"BaseSettings"}
    while grown := {name for name, base in bases.items() if base in settings} - settings:
        settings |= grown
    found = {name for name in settings - {"BaseSettings"} if name not in bases.values()}
    known = {cls.__name__ for classes in SETTINGS.values() for cls in classes}
    assert found == known, f"settings classes not covered by the chart cross-check: {found - known}"


@pytest.mark.parametrize("name", VALUE_SETS)
@pytest.mark.parametrize("component", ["extractor", "api", "migrations"])
def test_chart_env_names_are_settings(component: str, name: str) -> None:
    allowed = set().union(*(setting_names(cls) for cls in SETTINGS[component]))
    passed = env_names(render(name), component)
    clinie = {n for n in passed if n.startswith("CLINIE_")}
    assert clinie <= allowed, f"{component} gets variables no settings field reads: {sorted(clinie - allowed)}"
    assert passed - clinie <= set(OTHER_ENV), sorted(passed - clinie - set(OTHER_ENV))


@pytest.mark.parametrize("component", ["extractor", "api"])
def test_every_setting_is_configurable_through_the_chart(component: str) -> None:
    (cls,) = SETTINGS[component]
    passed: set[str] = set()
    for name in VALUE_SETS:
        passed |= env_names(render(name), component)
    names = setting_names(cls)
    missing = {field for env, field in names.items() if env not in passed} - set(NOT_PASSED[component])
    assert not missing, (f"{cls.__name__} fields the chart never sets: {sorted(missing)}; add them to the chart "
                         f"(values.yaml, schema, ConfigMap) or to NOT_PASSED with the reason")
    assert set(NOT_PASSED[component]) <= set(names.values())


def test_triton_env_is_read_by_the_model() -> None:
    """Triton's CLINIE_* variables are the ones the exported model.py reads."""
    read = set(re.findall(r"os\.environ\.get\(\"(CLINIE_\w+)\"", (REPO / "clinie/serving/model_py.txt").read_text()))
    for name in VALUE_SETS:
        docs = render(name)
        if not value_set(name).get("triton", {}).get("enabled", True):
            continue
        triton = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"] for e in triton["env"]}
        assert {n for n in env if n.startswith("CLINIE_")} <= read
        assert env - read <= {"HOME"}


def _environment(docs: list[Manifest], component: str) -> dict[str, str]:
    """The environment one component's container gets, secrets resolved from the chart's Secrets (or a stand-in)."""
    kind = "Job" if component == "migrations" else "Deployment"
    main = named(docs, kind, component)["spec"]["template"]["spec"]["containers"][0]
    maps = {cm["metadata"]["name"]: cm["data"] for cm in of_kind(docs, "ConfigMap")}
    secrets = {s["metadata"]["name"]: s.get("data") or {} for s in of_kind(docs, "Secret")}
    env: dict[str, str] = {}
    for source in main.get("envFrom") or []:
        env.update(maps[source["configMapRef"]["name"]])
    for item in main.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        raw = secrets.get(ref["name"], {}).get(ref["key"])
        env[item["name"]] = base64.b64decode(raw).decode() if raw else "existing-secret-value"
    return env


def _mounted_file(docs: list[Manifest], component: str, path: str) -> bool:
    """``path`` is a file of a Secret volume mounted (read-only, whole volume) into the component's container."""
    spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
    directory, _, filename = path.rpartition("/")
    for mount in spec["containers"][0].get("volumeMounts") or []:
        if mount["mountPath"] == directory and "subPath" not in mount and mount.get("readOnly"):
            volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
            return filename in {item["path"] for item in volume.get("secret", {}).get("items") or []}
    return False


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_settings_load(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The services' settings classes accept exactly what the chart renders, and agree with the pod spec.

    Files mounted from Secrets (Kafka CA, client certificate and key, OAuth token) must exist for the settings to
    load: each rendered path is checked against the pod's volumes, then replaced by a stand-in file here.
    """
    import os

    docs = render(name)
    values = value_set(name)
    loaded: dict[str, Any] = {}
    mounted: dict[str, str] = {}
    for component, cls in (("extractor", ExtractorSettings), ("api", ApiSettings)):
        for key in list(os.environ):
            if key.startswith("CLINIE_"):
                monkeypatch.delenv(key)
        for key, value in _environment(docs, component).items():
            if key in MOUNTED_FILES:
                assert _mounted_file(docs, component, value), f"{key}={value} is not a mounted Secret file"
                mounted[key] = value
                value = str(tmp_path / key.lower())
                Path(value).write_text("stand-in\n")
            monkeypatch.setenv(key, value)
        loaded[component] = cls(_env_file=None)  # type: ignore[call-arg]
    extractor: ExtractorSettings = loaded["extractor"]
    api: ApiSettings = loaded["api"]
    assert extractor.kafka_bootstrap_servers == values["kafka"]["bootstrapServers"]
    assert str(extractor.model_repository) == "/models"
    pod = named(docs, "Deployment", "extractor")["spec"]["template"]["spec"]["containers"][0]
    assert [p["containerPort"] for p in pod["ports"]] == [extractor.metrics_port]
    if extractor.backend == "triton":
        assert extractor.triton_url == "rel-clinie-triton.clinie.svc:8000"
    assert extractor.metrics_host == "0.0.0.0"
    assert extractor.kafka_security_protocol == values["kafka"].get("securityProtocol", "PLAINTEXT")
    if "sasl" in values["kafka"]:
        assert extractor.kafka_sasl_mechanism == values["kafka"]["sasl"]["mechanism"]
        if extractor.kafka_sasl_mechanism == "OAUTHBEARER":
            assert mounted["CLINIE_KAFKA_SASL_OAUTH_TOKEN_FILE"] == "/etc/clinie/kafka-oauth/token"
        else:
            assert extractor.kafka_sasl_password
    tls = values["kafka"].get("tls", {})
    if tls.get("caCert") or tls.get("existingSecret"):
        assert mounted["CLINIE_KAFKA_SSL_CA_FILE"] == "/etc/clinie/kafka-tls/ca.crt"
    if tls.get("clientCert") or tls.get("certKey"):
        assert mounted["CLINIE_KAFKA_SSL_CERT_FILE"] == "/etc/clinie/kafka-tls/tls.crt"
        assert mounted["CLINIE_KAFKA_SSL_KEY_FILE"] == "/etc/clinie/kafka-tls/tls.key"
    if tls.get("keyPassword") or tls.get("keyPasswordKey"):
        assert extractor.kafka_ssl_key_password
    assert extractor.kafka_ssl_check_hostname is tls.get("checkHostname", True)
    api_pod = named(docs, "Deployment", "api")["spec"]["template"]["spec"]
    assert [p["containerPort"] for p in api_pod["containers"][0]["ports"]] == [api.api_port]
    assert api.api_host == "0.0.0.0"
    assert api.auth_enabled is True
    mounts = {m["mountPath"] for m in api_pod["containers"][0]["volumeMounts"]}
    assert str(api.export_dir) in mounts
    key_file = api.jwt_public_key_file or api.jwt_jwks_file
    if key_file is not None:
        assert str(key_file.parent) in mounts
        jwt_volume = next(v for v in api_pod["volumes"] if v["name"] == "jwt")
        assert jwt_volume["secret"]["items"][0]["path"] == key_file.name
    else:
        assert api.jwt_jwks_url
