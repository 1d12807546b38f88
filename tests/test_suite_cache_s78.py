"""The suite keeps its compiled programs in a folder of its own, in the checkout: not the user's
``~/.cache/abcscale/jax`` (where each `make test` after a runner change left about 200 programs, 130 MB, and later
runs found them warm, unlike a fresh clone's or CI's), one folder for all of xdist's workers (so a program compiled
by one is found by the other), emptied when it outgrows its limit (tests/conftest.py). A user's own
``ABCSCALE_JAX_CACHE`` is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEN = """
import os, pathlib
def test_one(): pathlib.Path(os.environ["SEEN_DIR"], f"one-{os.getpid()}").write_text(os.environ["ABCSCALE_JAX_CACHE"])
def test_two(): pathlib.Path(os.environ["SEEN_DIR"], f"two-{os.getpid()}").write_text(os.environ["ABCSCALE_JAX_CACHE"])
"""


def _suite(tmp_path: Path, home: Path, **env: str) -> list[str]:
    """Two tests on two xdist workers, under tests/conftest.py: the cache folder each saw."""
    (tmp_path / "test_seen.py").write_text(SEEN)
    seen = tmp_path / "seen"
    seen.mkdir()
    base = {k: v for k, v in os.environ.items() if k != "ABCSCALE_JAX_CACHE"}
    # only the plugins this needs (xdist, the conftest as a plugin): the installed ones take seconds to load
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "xdist", "-p", "tests.conftest",
                           "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "-q",
                           "-n", "2", "--dist", "each", str(tmp_path / "test_seen.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=base | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "HOME": str(home), "SEEN_DIR": str(seen)}
                          | env)
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(seen.iterdir())
    assert len({f.name.split("-")[1] for f in files}) == 2, files  # both workers ran both tests
    return [f.read_text() for f in files]


def test_the_suite_compiles_into_one_folder_of_its_own_in_the_checkout(tmp_path):
    from tests.conftest import SUITE_CACHE

    home = tmp_path / "home"
    home.mkdir()
    folders = set(_suite(tmp_path, home))
    assert folders == {str(SUITE_CACHE)}, folders  # the controller's, inherited by both workers
    assert SUITE_CACHE.is_relative_to(ROOT) and not (home / ".cache").exists()
    ignored = subprocess.run(["git", "check-ignore", "-q", str(SUITE_CACHE / "x.executable")], cwd=ROOT)
    assert ignored.returncode == 0  # never committed


def test_a_suite_cache_past_its_limit_is_emptied(tmp_path, monkeypatch):
    import tests.conftest as suite

    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "a.executable").write_bytes(b"x" * 64)
    monkeypatch.setattr(suite, "SUITE_CACHE", folder)
    monkeypatch.delenv("ABCSCALE_JAX_CACHE")
    monkeypatch.setattr(suite, "SUITE_CACHE_LIMIT", 100)
    suite.pytest_configure(None)  # type: ignore[arg-type]  # under the limit: kept
    assert (folder / "a.executable").exists() and os.environ["ABCSCALE_JAX_CACHE"] == str(folder)
    monkeypatch.delenv("ABCSCALE_JAX_CACHE")
    monkeypatch.setattr(suite, "SUITE_CACHE_LIMIT", 10)
    suite.pytest_configure(None)  # type: ignore[arg-type]
    assert not folder.exists() and os.environ["ABCSCALE_JAX_CACHE"] == str(folder)


def test_a_cache_the_user_set_is_the_suites(tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    assert set(_suite(tmp_path, tmp_path, ABCSCALE_JAX_CACHE=str(own))) == {str(own)}
    assert own.is_dir()  # not removed: it is the user's
