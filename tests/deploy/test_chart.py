"""The Helm chart, rendered offline with the real Helm engine: lint, Kubernetes schema validation for two
Kubernetes versions, security properties of every pod, probes, network policies, hooks, and values.schema.json."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Manifest,
    containers,
    named,
    notes,
    of_kind,
    pod_specs,
    render,
    render_values,
    value_set,
)

helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed (dev extra)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")

# Custom resources: kubernetes-validate ships schemas for the built-in API groups only
CRD_KINDS = {"ScaledObject": "keda.sh/v1alpha1", "ServiceMonitor": "monitoring.coreos.com/v1"}


@pytest.fixture(scope="module")
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its multi-megabyte schema files for every object; read each one once."""
    from kubernetes_validate import utils

    original = utils.schema_contents
    utils.schema_contents = functools.cache(original)
    try:
        yield
    finally:
        utils.schema_contents = original


def test_value_sets_present() -> None:
    assert set(VALUE_SETS) >= {"defaults", "gpu-triton", "keda", "ingress", "existing-secret", "kafka-sasl-ssl"}


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", [None, *VALUE_SETS])
def test_helm_lint_strict(name: str | None, kube: str) -> None:
    """`helm lint --strict` (warnings are errors) for the chart's bare defaults and every value set."""
    values = value_set(name) if name else None
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{kube}", namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_validate(name: str, kube: str, cached_schemas: None) -> None:
    """Every built-in object passes `kubernetes-validate --strict` (unknown fields are errors)."""
    docs = render(name)
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == CRD_KINDS[doc["kind"]]
            continue
        try:
            kubernetes_validate.validate(doc, kube, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {err.message}")
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_object_is_namespaced_and_labelled(name: str) -> None:
    for doc in render(name):
        meta = doc["metadata"]
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert meta.get("namespace") == NAMESPACE, f"{doc['kind']}/{meta['name']}"
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/name"] == "clinie"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pod_security(name: str) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault,
    no service-account token, no host namespaces, resource requests and limits: on every container of every pod."""
    specs = list(pod_specs(render(name)))
    assert len(specs) >= 3
    for where, spec in specs:
        pod_sc = spec.get("securityContext") or {}
        assert pod_sc.get("runAsNonRoot") is True, where
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), f"{where}: {host}"
        for c in containers(spec):
            sc = c.get("securityContext") or {}
            what = f"{where} container {c['name']}"
            assert sc.get("readOnlyRootFilesystem") is True, what
            assert sc.get("allowPrivilegeEscalation") is False, what
            assert sc.get("privileged") is False, what
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], what
            assert not sc.get("capabilities", {}).get("add"), what
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, what
            assert int(sc.get("runAsUser", pod_sc.get("runAsUser", 0))) >= 10000, what
            assert sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type") == "RuntimeDefault", what
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{what}: {kind}"
            assert not any("hostPort" in p for p in c.get("ports") or []), what
        for volume in spec.get("volumes") or []:
            assert "hostPath" not in volume, where


def _port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


def _probes(docs: list[Manifest], component: str) -> dict[str, tuple[str, int]]:
    spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
    main = spec["containers"][0]
    return {kind: (main[kind]["httpGet"]["path"], _port(main, main[kind]))
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_hit_the_real_health_endpoints(name: str) -> None:
    from services.settings import ApiSettings, ExtractorSettings

    docs = render(name)
    metrics_port = ExtractorSettings.model_fields["metrics_port"].default
    assert _probes(docs, "extractor") == {"startupProbe": ("/healthz", metrics_port),
                                          "livenessProbe": ("/healthz", metrics_port),
                                          "readinessProbe": ("/readyz", metrics_port)}
    api_port = ApiSettings.model_fields["api_port"].default
    assert _probes(docs, "api") == {"startupProbe": ("/metadata", api_port),
                                    "livenessProbe": ("/metadata", api_port),
                                    "readinessProbe": ("/healthz", api_port)}
    if value_set(name).get("triton", {}).get("enabled", True):
        probes = _probes(docs, "triton")
        assert probes["readinessProbe"] == ("/v2/health/ready", 8000)
        assert probes["startupProbe"] == ("/v2/health/ready", 8000)
        assert probes["livenessProbe"] == ("/v2/health/live", 8000)


def test_the_api_code_serves_the_probed_paths() -> None:
    """The probed paths exist in the services' code (a renamed endpoint must fail here, not in a cluster)."""
    from tests.deploy.chart import REPO

    api = (REPO / "services" / "fhir_api" / "routers" / "operational.py").read_text()
    assert '@router.get("/healthz"' in api and '@router.get("/metadata")' in api
    extractor = (REPO / "services" / "extractor" / "main.py").read_text()
    assert '("/healthz"' in extractor and '("/readyz"' in extractor


def _selects(policy: Manifest, labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("name", VALUE_SETS)
def test_network_policies(name: str) -> None:
    """Every pod is covered by a NetworkPolicy; only the API admits traffic from anywhere; Triton only from the
    extractor; the extractor only from the configured metrics scrapers."""
    docs = render(name)
    policies = of_kind(docs, "NetworkPolicy")
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert any(_selects(p, labels) for p in policies), f"{d['kind']}/{d['metadata']['name']} has no policy"
    metrics_from = value_set(name).get("networkPolicy", {}).get("metricsFrom", [])
    api = named(docs, "NetworkPolicy", "api")["spec"]
    assert api["policyTypes"] == ["Ingress"]
    assert [p["port"] for p in api["ingress"][0]["ports"]] == ["http"]
    api_from = value_set(name).get("networkPolicy", {}).get("apiFrom", [])
    assert api["ingress"][0].get("from", []) == api_from
    extractor = named(docs, "NetworkPolicy", "extractor")["spec"]
    if metrics_from:
        assert extractor["ingress"] == [{"from": metrics_from, "ports": [{"port": "metrics", "protocol": "TCP"}]}]
    else:
        assert extractor["ingress"] == []
    if value_set(name).get("triton", {}).get("enabled", True):
        triton = named(docs, "NetworkPolicy", "triton")["spec"]
        assert set(triton["policyTypes"]) == {"Ingress", "Egress"}
        inference = triton["ingress"][0]
        assert inference["from"] == [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "clinie", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "extractor"}}}]
        assert {p["port"] for p in inference["ports"]} == {"http", "grpc"}
        assert all(rule["from"] == metrics_from for rule in triton["ingress"][1:])
        assert all(p["port"] == 53 for rule in triton["egress"] for p in rule["ports"])
    migrations = named(docs, "NetworkPolicy", "migrations")["spec"]
    assert migrations["ingress"] == []


def chart_values() -> dict[str, Any]:
    """The chart's own values.yaml (the defaults every value set is merged over)."""
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


@pytest.mark.parametrize("name", VALUE_SETS)
def test_model_repository_is_mounted_not_baked(name: str) -> None:
    docs = render(name)
    model = value_set(name).get("model", {})
    components = ["extractor"] + (["triton"] if value_set(name).get("triton", {}).get("enabled", True) else [])
    for component in components:
        spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
        main = spec["containers"][0]
        mount = next(m for m in main["volumeMounts"] if m["name"] == "model-repository")
        assert mount["mountPath"] == "/models" and mount["readOnly"] is True
        init = {c["name"]: c for c in spec.get("initContainers") or []}
        image = init["copy-model"]["image"]
        if model.get("image", {}).get("digest"):
            assert image == f"clinie/clinie-model@{model['image']['digest']}"
        else:
            tag = model.get("image", {}).get("tag") or chart_values()["model"]["image"]["tag"]
            assert image == f"clinie/clinie-model:{tag}"
        assert init["copy-model"]["volumeMounts"] == [{"name": "model-repository", "mountPath": "/model-repository"}]


def test_model_from_a_pvc() -> None:
    values = value_set("defaults") | {"model": {"source": "pvc", "pvc": {"existingClaim": "models", "subPath": "v2"}}}
    docs = render_values(values)
    for component in ("extractor", "triton"):
        spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
        assert "initContainers" not in spec
        volume = next(v for v in spec["volumes"] if v["name"] == "model-repository")
        assert volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "model-repository")
        assert mount["subPath"] == "v2"


def test_new_model_version_rolls_the_pods() -> None:
    """Changing only the model image tag changes the pod templates of the extractor and Triton (a rollout)."""
    before = render("defaults")
    after = render_values(value_set("defaults") | {"model": {"image": {"tag": "next"}}})
    for component in ("extractor", "triton"):
        old = named(before, "Deployment", component)["spec"]["template"]
        new = named(after, "Deployment", component)["spec"]["template"]
        assert old != new
        assert new["spec"]["initContainers"][0]["image"] == "clinie/clinie-model:next"
    assert named(before, "Deployment", "api") == named(after, "Deployment", "api")


def test_triton_deployment_defaults() -> None:
    docs = render("defaults")
    spec = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert "--model-repository=/models" in main["args"] and "--strict-readiness=true" in main["args"]
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in main["volumeMounts"]
    assert "nvidia.com/gpu" not in main["resources"]["limits"]
    service = named(docs, "Service", "triton")["spec"]
    assert service["type"] == "ClusterIP"
    assert {p["name"]: p["port"] for p in service["ports"]} == {"http": 8000, "grpc": 8001, "metrics": 8002}


def test_triton_threads_default_to_half_the_cpu_limit() -> None:
    """Two model instances (config.pbtxt) share the 4-CPU limit: 2 torch threads each."""
    spec = named(render("defaults"), "Deployment", "triton")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert {"name": "CLINIE_TRITON_THREADS", "value": "2"} in container["env"]
    assert container["resources"]["limits"]["cpu"] == "4"


def test_gpu_triton() -> None:
    docs = render("gpu-triton")
    d = named(docs, "Deployment", "triton")
    spec = d["spec"]["template"]["spec"]
    assert d["spec"]["replicas"] == 2
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert {"name": "CLINIE_TRITON_THREADS", "value": "4"} in spec["containers"][0]["env"]
    # the chart's values were not mutated by the GPU merge: the extractor has no GPU
    extractor = named(docs, "Deployment", "extractor")["spec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in extractor["resources"]["limits"]


def test_extractor_autoscaling() -> None:
    defaults = render("defaults")
    assert named(defaults, "Deployment", "extractor")["spec"]["replicas"] == 2
    assert not of_kind(defaults, "HorizontalPodAutoscaler") and not of_kind(defaults, "ScaledObject")

    keda = render("keda")
    scaled = named(keda, "ScaledObject", "extractor")
    deployment = named(keda, "Deployment", "extractor")
    assert "replicas" not in deployment["spec"]
    assert not of_kind(keda, "HorizontalPodAutoscaler")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": deployment["metadata"]["name"]}
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == 12
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"] == {"bootstrapServers": "kafka:9092", "consumerGroup": "clinie-extractor",
                                   "topic": "clinie.documentreference", "lagThreshold": "100",
                                   "activationLagThreshold": "0", "offsetResetPolicy": "earliest"}
    assert all(isinstance(v, str) for v in trigger["metadata"].values())  # KEDA's metadata is map[string]string

    hpa_docs = render("kafka-sasl-ssl")
    hpa = named(hpa_docs, "HorizontalPodAutoscaler", "extractor")["spec"]
    assert hpa["scaleTargetRef"]["name"] == f"{RELEASE}-clinie-extractor"
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_service_monitors_select_a_metrics_port() -> None:
    docs = render("keda")
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    monitors = of_kind(docs, "ServiceMonitor")
    assert len(monitors) == 3
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        matches = [s for s in services.values()
                   if all(s["metadata"]["labels"].get(k) == v for k, v in spec["selector"]["matchLabels"].items())]
        assert len(matches) == 1, monitor["metadata"]["name"]
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in matches[0]["spec"]["ports"]}
        assert re.fullmatch(r"\d+s", endpoint["interval"])


def test_ingress() -> None:
    docs = render("ingress")
    ingress = named(docs, "Ingress", "api")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["fhir.hospital.example.org"], "secretName": "fhir-hospital-tls"}]
    (rule,) = ingress["rules"]
    path = rule["http"]["paths"][0]
    assert path["path"] == "/fhir"
    assert path["backend"]["service"] == {"name": f"{RELEASE}-clinie-api", "port": {"name": "http"}}
    assert named(docs, "HorizontalPodAutoscaler", "api")["spec"]["minReplicas"] == 2
    assert not of_kind(render("defaults"), "Ingress")
    assert "https://fhir.hospital.example.org/fhir/metadata" in notes(value_set("ingress"))


def test_only_the_api_is_exposed() -> None:
    for name in VALUE_SETS:
        for service in of_kind(render(name), "Service"):
            component = service["metadata"]["labels"]["app.kubernetes.io/component"]
            if component != "api":
                assert service["spec"]["type"] == "ClusterIP", service["metadata"]["name"]


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    docs = render("defaults")
    job = named(docs, "Job", "migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["clinie", "db", "upgrade"]
    ref = container["env"][0]["valueFrom"]["secretKeyRef"]
    # the release's own Secret does not exist yet during pre-install: the Job reads a hook Secret made before it
    hook_secret = next(s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == ref["name"])
    assert hook_secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    assert "hook-succeeded" in hook_secret["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    # no ServiceAccount of the release is needed either (it is not created yet during pre-install)
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]


def test_existing_secrets_are_used_and_nothing_secret_is_rendered() -> None:
    docs = render("existing-secret")
    assert of_kind(docs, "Secret") == []
    assert of_kind(docs, "ServiceAccount") == []
    extractor = named(docs, "Deployment", "extractor")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in extractor["containers"][0]["env"]}
    assert env["CLINIE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "clinie-db", "key": "url"}
    assert env["CLINIE_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "clinie-kafka", "key": "username"}
    assert env["CLINIE_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "clinie-kafka", "key": "password"}
    assert env["CLINIE_KAFKA_SSL_KEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "clinie-kafka-tls",
                                                                              "key": "key-password"}
    tls = next(v for v in extractor["volumes"] if v["name"] == "kafka-tls")
    assert tls["secret"] == {"secretName": "clinie-kafka-tls", "defaultMode": 0o440,
                             "items": [{"key": "ca.pem", "path": "ca.crt"}, {"key": "client.pem", "path": "tls.crt"},
                                       {"key": "client-key.pem", "path": "tls.key"}]}
    assert extractor["serviceAccountName"] == "clinie-workload"
    api = named(docs, "Deployment", "api")["spec"]["template"]["spec"]
    jwt = next(v for v in api["volumes"] if v["name"] == "jwt")
    assert jwt["secret"] == {"secretName": "clinie-jwks", "items": [{"key": "jwks.json", "path": "jwks.json"}]}
    job = named(docs, "Job", "migrations")["spec"]["template"]["spec"]
    assert job["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "clinie-db", "key": "url"}


def test_no_secret_value_in_a_configmap_or_pod_spec() -> None:
    """Credentials given as values end up in Secrets only."""
    for name in VALUE_SETS:
        values = value_set(name)
        kafka = values.get("kafka", {})
        secrets = [values.get("database", {}).get("url"), kafka.get("sasl", {}).get("password"),
                   kafka.get("sasl", {}).get("oauthToken"), kafka.get("tls", {}).get("clientKey"),
                   kafka.get("tls", {}).get("keyPassword")]
        text = yaml.safe_dump([d for d in render(name) if d["kind"] != "Secret"])
        for secret in filter(None, secrets):
            assert secret not in text, name


BAD_VALUES = [
    ({"extractor": {"backend": "onnx"}}, "/extractor/backend"),
    ({"kafka": {"securityProtocol": "TLS"}}, "/kafka/securityProtocol"),
    ({"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, "/kafka/sasl/mechanism"),
    ({"kafka": {"bootstrapServers": "kafka"}}, "/kafka/bootstrapServers"),
    ({"api": {"replicaCount": -1}}, "/api/replicaCount"),
    ({"api": {"auth": {"jwt": {"algorithms": ["HS256"]}}}}, "/api/auth/jwt/algorithms"),
    ({"extractor": {"replicas": 3}}, "replicas"),
    ({"triton": {"gpu": {"enabled": "yes"}}}, "/triton/gpu/enabled"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"database": {"url": "mysql://db/clinie"}}, "/database/url"),
    ({"triton": {"service": {"type": "LoadBalancer"}}}, "/triton/service/type"),
]


@pytest.mark.parametrize(("bad", "where"), BAD_VALUES)
def test_schema_rejects_bad_values(bad: dict[str, Any], where: str) -> None:
    values = _merge(value_set("defaults"), bad)
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(where)):
        render_values(values)


@pytest.mark.parametrize(("change", "message"), [
    ({"kafka": {"bootstrapServers": ""}}, "kafka.bootstrapServers is required"),
    ({"database": {"url": ""}}, "database.url or database.existingSecret is required"),
    ({"api": {"auth": {"jwt": {"jwksUrl": ""}}}}, "needs exactly one of"),
    ({"api": {"auth": {"jwt": {"jwks": "{}"}}}}, "needs exactly one of"),
    ({"extractor": {"keda": {"enabled": True}, "autoscaling": {"enabled": True}}}, "exclude each other"),
    ({"kafka": {"securityProtocol": "SASL_SSL"}}, "needs kafka.sasl.mechanism"),
    ({"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN"}}}, "kafka.sasl.username"),
    ({"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "OAUTHBEARER"}}}, "kafka.sasl.oauthToken"),
    ({"kafka": {"tls": {"caCert": "pem"}}}, "kafka.securityProtocol is PLAINTEXT: use SSL or SASL_SSL"),
    ({"kafka": {"securityProtocol": "SSL", "tls": {"clientCert": "pem"}}}, "clientKey go together"),
    ({"kafka": {"securityProtocol": "SSL", "tls": {"keyPassword": "x"}}}, "without kafka.tls.clientKey"),
    ({"model": {"source": "pvc"}}, "model.pvc.existingClaim"),
])
def test_inconsistent_values_fail_with_one_clear_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render_values(_merge(value_set("defaults"), change))


def test_auth_off_renders_without_a_key_and_warns() -> None:
    values = _merge(value_set("defaults"), {"api": {"auth": {"enabled": False, "jwt": {"jwksUrl": ""}}}})
    docs = render_values(values)
    data = named(docs, "ConfigMap", "api")["data"]
    assert data["CLINIE_AUTH_ENABLED"] == "false"
    assert not any(k.startswith("CLINIE_JWT") for k in data)
    assert "WARNING: api.auth.enabled=false" in notes(values)


def test_notes_tell_how_to_reach_the_api() -> None:
    text = notes(value_set("defaults"))
    assert f"kubectl port-forward --namespace {NAMESPACE} svc/{RELEASE}-clinie-api 8080:80" in text
    assert "curl http://127.0.0.1:8080/metadata" in text


def _leaves(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict) and node:
        out: set[str] = set()
        for key, value in node.items():
            out |= _leaves(value, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix}


def test_values_are_documented_parameter_by_parameter() -> None:
    """Every parameter of values.yaml has an `## @param <path> <description>` line, and each such line names a
    parameter; every top-level key is in values.schema.json."""
    text = (CHART / "values.yaml").read_text()
    documented = dict(re.findall(r"^\s*## @param (\S+) (.+)$", text, flags=re.M))
    values = yaml.safe_load(text)
    params = set()
    for leaf in _leaves(values):
        # a documented parent (e.g. `extractor.resources`) covers its children
        parts = leaf.split(".")
        match = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in documented), None)
        assert match is not None, f"values.yaml: {leaf} has no '## @param' line"
        params.add(match)
    assert set(documented) == params, set(documented) ^ params
    assert all(len(d) > 10 for d in documented.values())
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) <= set(schema["properties"])


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else value
    return out
