"""``tune_cached`` (the demo's tuning step): one search per key, read back on a rerun, a new one when anything
that changes the result changes."""

from __future__ import annotations

import pytest

from abcscale.runner.spec import SweepSpec
from abcscale.schemas.tune import TuneSettings
from abcscale.usecases import tune as tune_mod
from tests.usecases.test_tune import _tuned

pytest.importorskip("optuna")
pytest.importorskip("jax")  # the spec's corpus lives in the runner layer


@pytest.fixture
def searches(monkeypatch):
    calls: list[tuple[SweepSpec, TuneSettings]] = []

    def fake(spec, settings, **_):  # the search itself is tested elsewhere: count the calls
        calls.append((spec, settings))
        return _tuned()
    monkeypatch.setattr(tune_mod, "tune", fake)
    return calls


def test_a_rerun_reads_the_file_back_and_a_changed_input_tunes_again(tmp_path, searches):
    spec = SweepSpec(model="mlp", data="synthetic", widths=[16], parameterizations=["mup"], lr_modes=["per_layer"],
                     steps=5)
    settings = TuneSettings(trials=4)
    first, path, reused = tune_mod.tune_cached(spec, settings, tmp_path)
    assert not reused and path.parent == tmp_path and tune_mod.load_constants(path) == first
    again, path2, reused2 = tune_mod.tune_cached(spec, settings, tmp_path)
    assert reused2 and path2 == path and again == first and len(searches) == 1
    changed = [(spec.with_overrides(steps=6), settings), (spec, TuneSettings(trials=5)),
               (spec, TuneSettings(trials=4, sampler_seed=1)), (spec.with_overrides(data="default"), settings)]
    paths = {path}
    for s, st in changed:
        paths.add(tune_mod.tune_cached(s, st, tmp_path)[1])
    assert len(paths) == 1 + len(changed) and len(searches) == 1 + len(changed)


def test_a_damaged_file_is_tuned_again(tmp_path, searches):
    spec = SweepSpec(model="mlp", data="synthetic", widths=[16], parameterizations=["mup"], lr_modes=["per_layer"])
    _, path, _ = tune_mod.tune_cached(spec, TuneSettings(trials=4), tmp_path)
    path.write_text(path.read_text()[:100])  # cut short
    _, _, reused = tune_mod.tune_cached(spec, TuneSettings(trials=4), tmp_path)
    assert not reused and len(searches) == 2
