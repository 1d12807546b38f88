"""The Dockerfile cannot be built here (no Docker engine), so its promises are checked as text against the
project: a pinned base image, every installed version pinned by docker/constraints.txt, the Makefile's install
minus extras, every package copied, non-root, health check."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CONSTRAINTS = "docker/constraints.txt"


def _instructions(name: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_base_image_is_an_exact_slim_python_311_release():
    # A moving tag (python:3.11-slim) changes Python and Debian under a rebuild; an exact patch release on a
    # named Debian release, or a digest, does not.
    (base,) = _instructions("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base), base


def _pip_installs() -> list[str]:
    return [c.strip() for run in _instructions("RUN") for c in run.split("&&") if "pip install" in c]


def _pins() -> dict[str, str]:
    """docker/constraints.txt as canonical name -> version; every line must be an exact ``name==version``."""
    pins = {}
    for line in (ROOT / CONSTRAINTS).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            m = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line.strip())
            assert m, f"{CONSTRAINTS}: not an exact pin: {line!r}"
            pins[canonicalize_name(m[1])] = m[2]
    return pins


def test_every_install_is_constrained_to_exact_versions():
    installs = _pip_installs()
    assert installs and all(f"-c {CONSTRAINTS}" in c for c in installs), installs
    assert CONSTRAINTS in {c.split()[0] for c in _instructions("COPY")}  # the file is in the image
    pins = _pins()
    assert {"pip", "setuptools"} <= set(pins)  # the tools that build the wheel are pinned too
    assert "--no-build-isolation" in installs[-1]  # an isolated build would fetch its own, unpinned setuptools


def test_every_runtime_dependency_is_pinned_within_pyproject_bounds():
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["postgres"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in {CONSTRAINTS}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"
    assert not {"jax", "jaxlib", "optax", "ray", "pytest"} & set(pins)  # extras stay out of the image


def test_install_matches_the_makefile_with_only_the_postgres_extra():
    make = (ROOT / "Makefile").read_text()
    assert "$(PY) -m pip install --quiet --no-compile -e '.[$(EXTRAS)]'" in make
    project = _pip_installs()[-1]
    # the PostgreSQL driver (ABCSCALE_DATABASE_URL=postgresql+psycopg://...); no other extra: no JAX, no Ray
    assert project.startswith("python -m pip install --quiet") and project.endswith(" '.[postgres]'")
    assert "jax" not in DOCKERFILE.lower().replace("no jax", "")


def test_every_package_is_copied():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {d.split("/")[0] for d in pyproject["tool"]["setuptools"]["package-dir"].values()}
    wanted = {"abcscale"} | folders
    copied = {c.split()[0] for c in _instructions("COPY")}
    assert wanted <= copied and {"pyproject.toml"} <= {w for c in _instructions("COPY") for w in c.split()}


def test_runs_as_non_root_with_a_data_volume_and_health_check():
    assert _instructions("USER") == ["abcscale"]
    assert _instructions("EXPOSE") == ["8000"]
    assert "/healthz" in _instructions("HEALTHCHECK")[0]
    assert '"/data"' in _instructions("VOLUME")[0] and "ABCSCALE_DATA_DIR=/data" in DOCKERFILE
    cmd = _instructions("CMD")[-1]
    assert '"abcscale", "serve", "--host", "0.0.0.0"' in cmd
