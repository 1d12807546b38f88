"""What a review of the runner as users run it found (session 30): results keyed by a user model's code, spec
files whose keys were dropped unread, repeated grid values trained twice, a stopped widening sweep that
shrank results.parquet, best LRs that pooled swept gammas, overrides that recorded one gamma and trained
another, and recordings (curves, coordinate statistics) a rerun silently lacked."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from abcscale.runner import sweep as sw
from abcscale.runner.spec import SweepSpec, toml_data
from abcscale.runner.store import SweepWarning

USER_MODEL = Path(__file__).resolve().parents[2] / "examples" / "user_model.py"


def test_editing_a_user_models_file_is_another_model(tmp_path):
    """Runs were keyed by the reference text ('um.py:factory'): an edited factory file resumed the old model's
    losses. Its source now enters the key (so does another file at the same path)."""
    model = tmp_path / "um.py"
    model.write_text(USER_MODEL.read_text())
    spec = SweepSpec(model=f"{model}:factory", widths=[16], depth=1, seq_len=8, data="synthetic")
    cell = spec.cells()[0]
    before = cell.base_key(spec, "data")
    model.write_text(USER_MODEL.read_text() + "\n# an edit\n")
    assert cell.base_key(spec, "data") != before
    model.write_text(USER_MODEL.read_text())
    assert cell.base_key(spec, "data") == before  # the same code: its runs are reused


def test_forcing_an_xla_setting_keys_other_runs(tiny_spec, monkeypatch):
    cell = tiny_spec.cells()[0]
    default = cell.base_key(tiny_spec, "d")
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "on")  # rounds some fusions otherwise (1e-6)
    assert cell.base_key(tiny_spec, "d") != default
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "")
    assert cell.base_key(tiny_spec, "d") == default


@pytest.mark.parametrize("text", ["steps = 7\n[sweep]\nwidths = [16]\n",
                                  "[sweep]\nwidths = [16]\n[constants]\nepsilon = 1e-3\n"])
def test_keys_outside_the_sweep_table_are_refused_not_dropped(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="outside \\[sweep\\], where nothing is read"):
        toml_data(path)
    path.write_text("[sweep]\nwidths = [16]\n[sweep.constants]\nepsilon = 1e-3\n")
    assert SweepSpec.from_toml(path).constants.epsilon == 1e-3


def test_repeated_grid_values_are_one_run():
    spec = SweepSpec(parameterizations="sp,standard,mup,mup", lr_modes="global,global", widths=[16],
                     log2_lr=[-8, -7, -8], gammas="1,1,1;1,1,1")
    assert spec.parameterizations == ["standard", "mup"] and spec.log2_lr == [-8.0, -7.0]
    assert len(spec.cells()) == 2 and len(spec.runs()) == 2


def test_a_gamma_override_is_the_gamma_trained():
    spec = SweepSpec(widths=[16, 32]).with_overrides(gamma="2,1,1")
    assert spec.constants.gamma == spec.cells()[0].gamma and spec.cells()[0].gamma.embedding == 2.0


def test_best_lrs_are_per_swept_gamma():
    rows = pd.DataFrame({"parameterization": "mup", "optimizer_variant": "adam", "alignment": "full",
                         "lr_mode": "per_layer", "width": 32, "gamma_embedding": [1.0, 1.0, 64.0, 64.0],
                         "gamma_hidden": 1.0, "gamma_readout": 1.0, "log2_lr": [-8.0, -4.0, -8.0, -4.0],
                         "eval_loss": [5.6, 5.37, 5.53, 5.66], "diverged": False})
    best = sw.best_lrs(rows)
    assert [(b.gamma, b.log2_lr) for b in best] == [((1.0, 1.0, 1.0), -4.0), ((64.0, 1.0, 1.0), -8.0)]


@pytest.mark.e2e
def test_a_stopped_widening_sweep_keeps_every_run_the_folder_held(tiny_spec, tmp_path, monkeypatch):
    """Ctrl-C during a rerun with a wider grid left results.parquet with only the cells that rerun finished."""
    narrow = tiny_spec.model_copy(update={"log2_lr": [-6.0, -4.0]})
    before = sw.run_sweep(narrow, tmp_path, progress=False)
    real, calls = sw.run_cell, []

    def stop_on_second(spec, cell, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(cell)
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", stop_on_second)
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(tiny_spec, tmp_path, progress=False)
    after = pd.read_parquet(tmp_path / "results.parquet")
    assert len(after) > len(before) and set(after["width"]) == set(before["width"])
    key = ["width", "log2_lr", "seed"]
    kept = before.merge(after, on=key, suffixes=("", "_after"))
    assert len(kept) == len(before) and (kept["final_loss"] == kept["final_loss_after"]).all()


@pytest.mark.e2e
def test_a_rerun_says_which_runs_lack_the_curves_it_asks_for(tiny_spec, tmp_path):
    sw.run_sweep(tiny_spec, tmp_path, progress=False)
    assert not (tmp_path / "curves.parquet").exists()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        sw.run_sweep(tiny_spec.model_copy(update={"curves": True}), tmp_path, progress=False)
    assert any(issubclass(w.category, SweepWarning) and "--curves" in str(w.message) for w in said)


def test_momentum_without_sgd_is_refused():
    """--momentum is SGD's; with adam alone it was accepted, recorded nowhere and changed nothing."""
    with pytest.raises(ValueError, match="momentum: only sgd takes it, and the sweep has adam"):
        SweepSpec(optimizers=["adam"], momentum=0.9)
    assert SweepSpec(optimizers=["sgd", "adam"], momentum=0.9).momentum == 0.9
