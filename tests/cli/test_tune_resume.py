"""``abcscale tune --resume`` / ``--storage``: a rerun with a larger budget continues the stored search."""

from __future__ import annotations

import pytest

from abcscale.cli import main
from abcscale.usecases.tune import load_constants
from tests.cli.test_tune import TINY

pytest.importorskip("optuna")


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def _with(argv: list[str], flag: str, value: str) -> list[str]:
    i = argv.index(flag)
    return [*argv[:i + 1], value, *argv[i + 2:]]


@pytest.mark.e2e
def test_resume_continues_the_search_with_more_trials(tmp_path):
    out = tmp_path / "tuned.json"
    base = [*_with(TINY, "--trials", "2"), "--model", "mlp", "--out", str(out), "--quiet", "--resume"]
    assert _exit(["tune", *base]) == 0
    first = load_constants(out)
    assert (tmp_path / "tuned.json.study.db").exists() and first.trials_run == 2
    assert _exit(["tune", *_with(base, "--trials", "4")]) == 0
    second = load_constants(out)
    assert second.trials_run == 4 and second.history[:2] == first.history  # the stored trials, not rerun


@pytest.mark.parametrize(("extra", "needle"), [
    (["--storage", "nosuchdb://x"], "--storage"),
    (["--storage", "sqlite:///x.db", "--resume"], "--resume"),
])
def test_bad_storage_exits_2_naming_the_flag(extra, needle, tmp_path, capsys):
    argv = ["tune", *TINY, "--model", "mlp", "--out", str(tmp_path / "t.json"), "--quiet", *extra]
    assert _exit(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {needle}") and err.count("\n") == 1


def test_ray_without_ray_installed_exits_2(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert _exit(["tune", *TINY, "--model", "mlp", "--out", str(tmp_path / "t.json"), "--ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --ray: ray is not installed") and err.count("\n") == 1


@pytest.mark.e2e
def test_ray_evaluates_trials_on_workers(tmp_path):
    ray = pytest.importorskip("ray")
    out = tmp_path / "tuned.json"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert _exit(["tune", *TINY, "--model", "mlp", "--out", str(out), "--quiet", "--ray", "--workers", "2"]) == 0
    finally:
        ray.shutdown()
    tuned = load_constants(out)
    assert tuned.trials_run == 4 and len(tuned.candidates) == 2 and tuned.data_hash
    assert all(len(c.losses) == 2 for c in tuned.candidates)
