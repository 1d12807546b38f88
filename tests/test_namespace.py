"""One installed namespace: everything is abcscale.*, and a user's own modules cannot shadow ours.

The repository keeps its top-level folders (schemas/, theory/, fitting/, runner/, service/); setuptools maps each
onto an abcscale.* name. These tests build the real wheel (offline, no build isolation) and run the real CLI from
a directory full of look-alike modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERIC = ("schemas", "theory", "fitting", "runner", "service", "cli", "usecases")


def _lookalikes(folder: Path) -> None:
    """A user's working directory with modules named like ours: importing any of them fails loudly."""
    for name in GENERIC:
        (folder / f"{name}.py").write_text(f"raise RuntimeError('the user\\'s own {name}.py was imported')\n")
    (folder / "enums.py").write_text("raise RuntimeError('user enums')\n")


def test_user_modules_do_not_shadow_the_cli(tmp_path):
    _lookalikes(tmp_path)
    out = subprocess.run([sys.executable, "-m", "abcscale", "theory", "table", "-p", "mup", "-o", "adam", "--json"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["layer"] for r in rows} == {"embedding", "hidden", "readout"}


def test_user_modules_do_not_shadow_the_package(tmp_path):
    _lookalikes(tmp_path)
    code = ("import abcscale, abcscale.schemas.enums, abcscale.service.app, abcscale.fitting; "
            "print(abcscale.schemas.enums.Optimizer.parse('adam').value)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "adam"


def _packages_in_tree() -> set[str]:
    """Every package the source tree holds, under the name it must install as."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = {".".join(("abcscale", *p.parent.relative_to(ROOT / "abcscale").parts))
             for p in (ROOT / "abcscale").rglob("__init__.py")}
    for name, folder in mapping.items():
        base = ROOT / folder
        found |= {".".join((name, *p.parent.relative_to(base).parts)) for p in base.rglob("__init__.py")}
    return found


def _source_copy(dest: Path) -> Path:
    """What the Dockerfile copies (pyproject, README, abcscale/ and the mapped folders), built outside the
    repository so the build leaves no build/ or egg-info behind in it."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    for folder in {"abcscale", *(f.split("/")[0] for f in mapping.values())}:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_wheel_installs_one_top_level_name(tmp_path):
    (tmp_path / "src").mkdir()
    src = _source_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("abcscale-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"abcscale"}
    packages = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    assert packages == _packages_in_tree()  # no sub-package left out of pyproject's list
    assert "abcscale/py.typed" in names
    for folder in ("schemas", "theory", "fitting", "runner", "service"):
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*.py")}
        assert {f"abcscale/{s}" for s in sources} <= set(names), folder
    # the web pages' templates and assets ship with the package: nothing is fetched at run time
    assets = {p.relative_to(ROOT).as_posix() for d in ("templates", "static") for p in (ROOT / "service" / d).iterdir()}
    assert assets and {f"abcscale/{a}" for a in assets} <= set(names)
