"""The Dockerfile cannot be built here (no Docker engine), so its promises are checked as text against the
project: same install command as the Makefile minus extras, every package copied, non-root, health check."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_slim_python_311_base():
    assert _instructions("FROM") == ["python:3.11-slim"]


def test_install_matches_the_makefile_without_extras():
    make = (ROOT / "Makefile").read_text()
    assert "$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'" in make
    run = " ".join(_instructions("RUN"))
    assert "python -m pip install --quiet ." in run
    assert "[" not in run.split("pip install --quiet .")[1].split("&&")[0]  # no extras: no JAX, no Ray
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
