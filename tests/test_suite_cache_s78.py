"""The suite keeps its compiled programs in a folder of its own: not the user's ``~/.cache/abcscale/jax`` (where a
`make test` left about 200 programs, 130 MB, and every later run found them warm, unlike CI), one folder for all
of xdist's workers (so a program compiled by one is found by the other), deleted when the run ends
(tests/conftest.py). A user's own ``ABCSCALE_JAX_CACHE`` is kept."""

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


def test_the_suite_compiles_into_one_folder_of_its_own_and_removes_it(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    folders = set(_suite(tmp_path, home))
    assert len(folders) == 1, folders  # the controller's, inherited by both workers
    (folder,) = folders
    assert not Path(folder).is_relative_to(home) and not Path(folder).exists()
    assert not (home / ".cache").exists()


def test_a_cache_the_user_set_is_the_suites(tmp_path):
    own = tmp_path / "mine"
    own.mkdir()
    assert set(_suite(tmp_path, tmp_path, ABCSCALE_JAX_CACHE=str(own))) == {str(own)}
    assert own.is_dir()  # not removed: it is the user's
