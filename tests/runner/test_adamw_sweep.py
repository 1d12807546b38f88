"""AdamW's per-layer weight decay in a sweep: ``constants.weight_decay`` reaches the adamw chain through the
theory engine's transfer rule (docs/theory.md section 9), and changes nothing where it is absent."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

import abcscale.runner.sweep as sw
from abcscale import theory
from abcscale.runner.spec import _EXECUTION, _GRID, SweepSpec
from abcscale.schemas.enums import LAYERS

BETA_LOG2 = -4


def _spec(optimizer: str, wd: float = 0.0, mode: str = "coupled", **kw) -> SweepSpec:
    # constant schedule, no warmup: lr_l * wd_l per step is then exactly beta * gamma_l * wd (coupled)
    return SweepSpec(model="mlp", widths=[8, 16], depth=1, log2_lr=[BETA_LOG2], steps=12, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, batching="vmap", optimizers=[optimizer], schedule="constant",
                     warmup=0.0, constants={"weight_decay": wd, "weight_decay_mode": mode}, **kw)


def _run(spec: SweepSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = [sw.run_cell(spec, c) for c in spec.cells()]
    return (pd.concat([r.rows for r in results], ignore_index=True),
            pd.concat([r.coord for r in results], ignore_index=True))


@pytest.fixture(scope="module")
def runs():
    return {name: _run(spec) for name, spec in {
        "adam": _spec("adam"), "adamw0": _spec("adamw"), "coupled": _spec("adamw", 1.0),
        # the same per-step shrink as "coupled": beta * wd, the same at every width
        "independent": _spec("adamw", 2.0**BETA_LOG2, "independent"),
    }.items()}


@pytest.mark.parametrize("optimizers", [["adam"], ["adam_atan2", "adamw"], ["adafactor"]])
def test_a_nonzero_decay_is_refused_for_a_variant_without_it(optimizers):
    with pytest.raises(ValidationError,
                       match=f"constants.weight_decay: {optimizers[0]} has no weight decay that abcscale transfers"):
        SweepSpec(optimizers=optimizers, constants={"weight_decay": 0.1})
    assert SweepSpec(optimizers=["adamw"], constants={"weight_decay": 0.1}).constants.weight_decay == 0.1


def test_the_cell_key_without_decay_is_the_old_one_and_changes_with_it(tiny_spec, monkeypatch):
    """Folders written before the decay existed still resume: at weight_decay 0 the key is the old formula (at
    XLA's default settings: a forced one keys other runs, and the test suite forces level 0 for speed)."""
    for knob in ("ABCSCALE_XLA_OPT_LEVEL", "ABCSCALE_XLA_FUSION_EMITTERS"):
        monkeypatch.delenv(knob, raising=False)
    spec, sha = tiny_spec.with_overrides(optimizers="adamw"), "h"
    cell = spec.cells()[0]
    fields = spec.model_dump(mode="json", exclude=set(_GRID | _EXECUTION | {"constants"}))
    fields |= spec.constants.model_dump(mode="json", exclude={"gamma", "weight_decay", "weight_decay_mode"})
    fields["base_width"] = spec.base
    blob = json.dumps({"cell": cell.model_dump(mode="json"), "spec": fields, "data": sha}, sort_keys=True)
    # the formula before session 78 (which leaves the byte cap out): the form a folder written then resumes by
    assert cell.key(spec, sha, unread=True) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    decayed = spec.with_overrides(constants={"weight_decay": 0.1})
    independent = spec.with_overrides(constants={"weight_decay": 0.1, "weight_decay_mode": "independent"})
    assert len({cell.key(s, sha) for s in (spec, decayed, independent)}) == 3


@pytest.mark.parametrize("lr_mode", ["per_layer", "global"])
def test_layer_decays_are_theorys_rule(lr_mode):
    """wd_l = wd * (n / base)^c_l with the c the LRs use (the global c in global mode)."""
    spec = _spec("adamw", 0.3, lr_modes=[lr_mode], parameterizations=["mup", "standard"])
    for cell in spec.cells():
        sol = theory.solve_exponents(spec.parameterization(cell.parameterization), "adamw", cell.alignment)
        c = sol.c if lr_mode == "per_layer" else dict.fromkeys(LAYERS, sol.global_c)
        want = [0.3 * (cell.width / spec.base) ** c[layer] for layer in LAYERS] + [0.0, 0.0]  # vector, fixed: none
        np.testing.assert_allclose(sw.layer_hyper(spec, cell).weight_decay, want, rtol=1e-12)
    assert sw.layer_hyper(_spec("adam"), _spec("adam").cells()[0]).weight_decay == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_rows_carry_the_layer_decays_for_adamw_only(runs):
    rows = runs["coupled"][0]
    for width, group in rows.groupby("width"):
        want = sw.layer_hyper(_spec("adamw", 1.0), _spec("adamw", 1.0).cells()[[8, 16].index(width)]).weight_decay
        cols = [f"weight_decay_{r}" for r in sw.ROLE_NAMES[:4]]  # no fixed parameter, so no fixed column
        np.testing.assert_allclose(group[cols].to_numpy()[0], want[:4])
        assert "weight_decay_fixed" not in group.columns and "lr_fixed" not in group.columns
    assert (rows["weight_decay_mode"] == "coupled").all() and (rows["weight_decay_hidden"] > 1.0).any()
    assert not any(c.startswith("weight_decay") for c in runs["adam"][0].columns)


def test_the_decay_shrinks_every_layers_activations(runs):
    """Decayed matrices: smaller activations at the last recorded step, in every layer at every width."""
    last = {name: c[c["step"] == c["step"].max()].set_index(["width", "layer"])["act_rms"]
            for name, (_, c) in runs.items()}
    for name in ("coupled", "independent"):
        assert (last[name] < 0.8 * last["adamw0"]).all(), (name, last[name], last["adamw0"])


def test_coupled_decay_keeps_lr_times_decay_across_widths(runs):
    """Coupled wd_l = wd (n/b)^c_l against lr_l = beta (n/b)^-c_l: each step shrinks W by beta * wd at every
    width, which is the independent form at beta * wd; the two agree to float rounding."""
    a, b = runs["coupled"][0], runs["independent"][0]
    np.testing.assert_allclose(a["eval_loss"], b["eval_loss"], rtol=1e-4)
    assert not np.allclose(a["eval_loss"], runs["adamw0"][0]["eval_loss"], rtol=1e-3)


def test_adamw_without_decay_is_adam_bit_for_bit(runs):
    cols = ["final_loss", "eval_loss", "loss_at_init"]
    pd.testing.assert_frame_equal(runs["adamw0"][0][cols], runs["adam"][0][cols], check_exact=True)
    pd.testing.assert_series_equal(runs["adamw0"][1]["act_rms"], runs["adam"][1]["act_rms"], check_exact=True)
