"""Render the Helm chart offline with the real Helm engine (helm-python-sdk) and pick objects out of the result.

Value sets live in ``tests/deploy/values/*.yaml``; each is merged over the chart's own ``values.yaml`` by Helm.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "clinie"
VALUES_DIR = Path(__file__).with_name("values")
VALUE_SETS = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))
KUBE_VERSIONS = ("1.29.0", "1.33.0")
RELEASE = "rel"
NAMESPACE = "clinie"

Manifest = dict[str, Any]


def value_set(name: str) -> dict[str, Any]:
    data = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


@functools.cache
def _chart() -> Any:
    import helm_python

    helm_python.disable_logging()
    return helm_python.Chart.load(CHART)


def render_values(values: dict[str, Any]) -> list[Manifest]:
    """Every object the chart renders for ``values`` (an install), NOTES.txt left out."""
    out = _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@functools.cache
def _render_set(name: str) -> tuple[Manifest, ...]:
    return tuple(render_values(value_set(name)))


def render(name: str) -> list[Manifest]:
    """The objects rendered for one value set (cached; callers get a fresh list, not fresh objects)."""
    return list(_render_set(name))


def notes(values: dict[str, Any]) -> str:
    out = _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return "".join(text for path, text in out.items() if path.endswith("NOTES.txt"))


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Manifest], kind: str, component: str) -> Manifest:
    """The one object of ``kind`` for ``component`` (extractor, triton, api, migrations)."""
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == f"{RELEASE}-clinie-{component}"]
    assert len(found) == 1, f"expected one {kind} for {component}, got {len(found)}"
    return found[0]


def pod_specs(docs: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``Kind/name``, pod spec) of every workload."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            yield f"CronJob/{d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec["containers"])


def env_names(docs: list[Manifest], component: str, container: str | None = None) -> set[str]:
    """Names of the environment variables one component's main container gets: ``env`` and ``envFrom`` ConfigMaps."""
    kind = "Job" if component == "migrations" else "Deployment"
    spec = named(docs, kind, component)["spec"]["template"]["spec"]
    main = next(c for c in spec["containers"] if container is None or c["name"] == container)
    names = {e["name"] for e in main.get("env") or []}
    maps = {cm["metadata"]["name"]: cm for cm in of_kind(docs, "ConfigMap")}
    for source in main.get("envFrom") or []:
        ref = source.get("configMapRef")
        assert ref is not None, f"{component}: envFrom only from ConfigMaps rendered by the chart"
        names |= set(maps[ref["name"]].get("data") or {})
    return names
