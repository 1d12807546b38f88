"""What a review of the runner against the theory found (session 33; every per-layer number it trains matched
`recommend`): the top-level weight decay, momentum, schedule and warmup trained but recorded nowhere (two sweeps'
tables pooled as "repeated runs"), an epsilon of 0 that turned every Adam run into NaNs, and spec keys written
where another belongs said only "Extra inputs are not permitted"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from abcscale.fitting import fit_table
from abcscale.runner import sweep as sw
from abcscale.runner.spec import SweepSpec

# an MLP where the model is not the point: its programs compile in about half a transformer's time
TINY = {"model": "mlp", "widths": [16, 32], "log2_lr": [-7, -6], "steps": 3, "batch": 2, "seq_len": 8, "depth": 1,
        "data": "synthetic", "seeds": 1}


def _sweep(out: Path, **kw) -> pd.DataFrame:
    return sw.run_sweep(SweepSpec(**{**TINY, **kw}), out, progress=False)


def test_the_settings_that_change_a_run_are_recorded_and_tell_two_sweeps_apart(tmp_path):
    decayed = _sweep(tmp_path / "a", optimizers=["adamw"], weight_decay=0.1)
    plain = _sweep(tmp_path / "b", optimizers=["adamw"])
    assert (decayed["independent_weight_decay"] == 0.1).all() and (plain["independent_weight_decay"] == 0).all()
    assert {"momentum", "schedule", "warmup", "attn_scale", "eval_batches", "final_window",
            "divergence_factor"} <= set(decayed.columns)
    assert (decayed["eval_loss"] != plain["eval_loss"]).any()  # the decay did train
    fit = fit_table(pd.concat([decayed, plain], ignore_index=True), n_boot=20)
    said = " ".join(fit.groups[0].warnings + fit.warnings)
    assert "independent_weight_decay" in said and "repeated runs" not in said


def test_a_part_written_before_the_settings_columns_reads_with_the_spec_s(tmp_path):
    first = _sweep(tmp_path, momentum=0.9, optimizers=["sgd"])
    for part in (tmp_path / "cells").glob("*.rows.parquet"):  # as an older abcscale wrote them
        pd.read_parquet(part).drop(columns=list(sw.run_settings(SweepSpec(**TINY)))).to_parquet(part)
    again = _sweep(tmp_path, momentum=0.9, optimizers=["sgd"])
    assert (again["momentum"] == 0.9).all() and (again["schedule"] == "cosine").all()
    cols = [c for c in first.columns if c not in ("compile_s", "run_s", "runs_per_call")]
    pd.testing.assert_frame_equal(first[cols].sort_values(["width", "log2_lr"]).reset_index(drop=True),
                                  again[cols].sort_values(["width", "log2_lr"]).reset_index(drop=True))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "adam_scaled", "muon"])
def test_an_epsilon_of_zero_is_refused_where_it_divides(optimizer):
    with pytest.raises(ValidationError, match=f"epsilon: {optimizer} divides by sqrt"):
        SweepSpec(**TINY, optimizers=[optimizer], epsilon=0.0)


def test_an_epsilon_of_zero_is_fine_where_none_is_used():
    for optimizer in ("sgd", "lion", "adafactor", "adam_atan2"):
        SweepSpec(**TINY, optimizers=[optimizer], epsilon=0.0)


@pytest.mark.parametrize(("key", "value", "said"), [
    ("lr_mode", "global", "lr_mode: the key is lr_modes"), ("optimizer", "adam", "optimizer: the key is optimizers"),
    ("weight_decay_mode", "independent", "weight_decay_mode: it goes with constants.weight_decay, under "
                                         "[sweep.constants]")])
def test_a_key_written_where_another_belongs_says_where(key, value, said):
    with pytest.raises(ValidationError, match=said.replace("[", r"\[").replace("]", r"\]")):
        SweepSpec.model_validate({**TINY, key: value})


def test_the_decay_refusal_names_every_optimizer_that_has_one():
    with pytest.raises(ValidationError,
                       match=r"sweep only sgd \(its L2 term\), adamw, lion, muon, or use the top-level"):
        SweepSpec(**TINY, optimizers=["adam"], constants={"weight_decay": 0.1})


def test_the_sweep_says_what_theory_says_of_its_setups(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    flags = ["sweep", "--model", "mlp", "--widths", "16,32", "--steps", "2", "--batch", "2", "--seq-len", "8",
             "--depth", "1", "--data", "synthetic", "--log2-lr", "-6", "-q"]
    face = CliRunner().invoke(app, [*flags, "-p", "standard", "-o", "adam", "-a", "0.5,0.5,1", "--out",
                                    str(tmp_path / "a")])
    assert face.exit_code == 0 and "warning: standard + adam, alignment 0.5,0.5,1: per-layer exponents are not " \
                                   "unique" in " ".join(face.stderr.split())
    plain = CliRunner().invoke(app, [*flags, "-p", "mup", "-o", "adam", "--out", str(tmp_path / "b")])
    assert plain.exit_code == 0 and "warning" not in plain.stderr


def test_muon_rows_record_no_epsilon_for_the_hidden_step(tmp_path):
    rows = _sweep(tmp_path, optimizers=["muon", "adam"], widths=[16])
    muon, adam = rows[rows.optimizer_variant == "muon"], rows[rows.optimizer_variant == "adam"]
    assert muon["epsilon_hidden"].isna().all() and muon["epsilon_embedding"].notna().all()
    assert adam["epsilon_hidden"].notna().all()


def test_a_constant_no_variant_reads_is_said():
    lion = sw.theory_warnings(SweepSpec(**TINY, optimizers=["lion"], epsilon=1e-3))
    assert any(w.startswith("epsilon: lion uses none; the 0.001 given changed nothing") for w in lion)
    mode = sw.theory_warnings(SweepSpec(**TINY, optimizers=["sgd"], constants={"weight_decay_mode": "independent"}))
    assert any(w.startswith("weight_decay_mode: no constants.weight_decay") for w in mode)
    assert sw.theory_warnings(SweepSpec(**TINY, optimizers=["adam"], epsilon=1e-3)) == []


def test_the_flags_defaults_are_not_constants_given():
    """The CLI builds its spec by overrides: a default the user never typed (epsilon, the decay mode) is not said
    to have changed nothing; one the user typed still is."""
    spec = SweepSpec(**TINY).with_overrides(optimizers=["lion"], widths=[16, 32])
    assert spec.constants.epsilon == SweepSpec().constants.epsilon
    assert not [w for w in sw.theory_warnings(spec) if w.startswith(("epsilon", "weight_decay_mode"))]
    typed = spec.with_overrides(epsilon=1e-3)
    assert any(w.startswith("epsilon: lion uses none") for w in sw.theory_warnings(typed))


def test_two_sweeps_apart_in_attention_scale_are_not_repeated_runs(tmp_path):
    """attn_scale, eval_batches, final_window and divergence_factor were not in the rows: two sweeps differing in
    one pooled as repeated runs (session 33's list)."""
    # one width: the pooling is per width and LR (not recorded, the column's absence said "repeated runs" at width
    # 16 alone too, checked); a second width compiled both transformers again
    sqrt = _sweep(tmp_path / "a", model="transformer", attn_scale="sqrt", widths=[16], head_dim=8)
    linear = _sweep(tmp_path / "b", model="transformer", attn_scale="linear", widths=[16], head_dim=8)
    assert set(sqrt["attn_scale"]) == {"sqrt"} and set(linear["attn_scale"]) == {"linear"}
    fit = fit_table(pd.concat([sqrt, linear], ignore_index=True), n_boot=20)
    said = " ".join(fit.groups[0].warnings + fit.warnings)
    assert "attn_scale" in said and "repeated runs" not in said
