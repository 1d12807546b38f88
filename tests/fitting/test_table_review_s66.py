"""A review of session 66's sweep-table checks (findings 1-5 and 8-11): one setup's grid extended under a `stage`
label read as two configurations; a model change in one group gating every group; a batch-scaled LR (MAE's `blr`,
`base_lr`, `scaled_lr`) called a scheduled LR, unreliable; a `Name` per configuration with its seeds under another
name refused as a history export; `--derive k=2*2` a KeyError; the per-layer LR columns' note where no exponent was
read, and `out_proj_lr` read as the readout's; `config_weight_decay` unsaid; the size-families check run twice per
prepare over every column; wandb's `Group` read as a model family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import UNRELIABLE, TableError, derive_columns, lr_layer_of, prepare
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.fits import unreliable

WIDTHS = (128, 256, 512, 1024)


def _warnings(df: pd.DataFrame, **mapping) -> list[str]:
    return list(prepare(df, ColumnMapping(**mapping)).warnings)


def _with(warnings: list[str], text: str) -> list[str]:
    return [w for w in warnings if text in w]


# --- 1. a coarse grid and its extension under one label ---------------------------------------------------------


def test_a_grid_extended_under_a_stage_label_is_one_curve_not_a_mix():
    df = synthetic_sweep(widths=WIDTHS, base_width=128)
    lowest = df.groupby("width")["beta"].transform("min")
    # the lower 6 LRs of each curve "coarse", the 7 above "refine": disjoint, adjacent ranges, one basin
    df["stage"] = np.where(np.log2(df["beta"] / lowest) < 2.9, "coarse", "refine")
    prep = prepare(df)
    assert [g.mixed for g in prep.groups] == [()]
    assert not [w for w in prep.warnings if w.startswith(UNRELIABLE)], prep.warnings
    assert _with(list(prep.warnings), "stage take(s) several values, each on its own learning rates")


# --- 2. a model change in one group gates that group alone ------------------------------------------------------


def test_a_model_change_in_one_group_makes_that_group_alone_unreliable():
    a = synthetic_sweep(widths=WIDTHS, group={"optimizer": "adam", "parameterization": "mup"}, base_width=128,
                        seeds=2).assign(model="llama")
    b = synthetic_sweep(widths=WIDTHS, group={"optimizer": "lion", "parameterization": "mup"}, base_width=128,
                        seeds=2, seed=1)
    b["model"] = np.where(b["width"] <= 256, "gpt2", "llama")
    df = pd.concat([a, b], ignore_index=True)
    prep = prepare(df)
    said = _with(list(prep.warnings), "one law is fitted across them")
    assert len(said) == 1 and said[0].startswith("model: gpt2 at widths 128, 256; llama at 512, 1024: one law"), said
    assert {g.key["optimizer"]: g.mixed for g in prep.groups} == {"adam": (), "lion": ("model",)}
    fit = abcscale.fit(df, target_width=4096, n_boot=20)
    gates = unreliable(fit)
    assert gates and all("optimizer=lion" in where for where, _ in gates), gates
    rec = abcscale.recommend(fit=fit, width=4096, group={"optimizer": "adam"}, lr_mode="global")
    assert not rec.band.unreliable, rec.band.unreliable


# --- 3. a constant multiple of another LR column: a schedule only where the names say so -------------------------


def _sweep(lr_name: str = "lr") -> pd.DataFrame:
    return synthetic_sweep(widths=WIDTHS, base_width=128, seeds=2).rename(columns={"beta": lr_name})


@pytest.mark.parametrize(("fitted", "other", "factor"), [
    ("blr", "lr", 4096 / 256),  # MAE: lr = blr * batch / 256, blr fitted
    ("lr", "base_lr", 2.0),  # the linear scaling rule at batch 128: the actual lr fitted
    ("learning_rate", "scaled_lr", 8.0),  # nanoGPT-style, world size 8
])
def test_a_batch_scaled_lr_is_a_plain_note(fitted, other, factor):
    df = _sweep(fitted)
    df[other] = df[fitted] * factor
    said = _with(_warnings(df, lr_col=fitted), "in every row")
    assert len(said) == 1, said
    assert said[0].startswith(f"{fitted} is {other} x {1 / factor:.3g} in every row: the fit and its LR* are in "
                              f"{fitted}'s units"), said
    assert f"fit it with `lr_col` {other}" in said[0]


@pytest.mark.parametrize(("fitted", "other"), [("learning_rate", "config_learning_rate"), ("lr", "peak_lr"),
                                               ("train/lr", "config.lr"), ("lr", "max_lr"), ("lr", "initial_lr")])
def test_a_logged_lr_beside_a_configured_or_peak_lr_stays_unreliable(fitted, other):
    df = _sweep(fitted)
    df[other] = df[fitted] * 25.0
    said = _with(_warnings(df, lr_col=fitted), "in every row")
    assert len(said) == 1 and said[0].startswith(f"{UNRELIABLE}{fitted}: {other} x 0.04 in every row: a scheduled "
                                                 "LR logged after its decay"), said


# --- 4. a run id per configuration whose rows differ in a seed or a setting is no history ----------------------


def test_an_id_per_configuration_with_seeds_under_another_name_is_no_history():
    s = synthetic_sweep(widths=WIDTHS, base_width=128)
    a = s.rename(columns={"seed": "random_seed"})
    a["Name"] = [f"w{w}-lr{b:.3g}" for w, b in zip(a["width"], a["beta"], strict=True)]
    said = _with(_warnings(a), "differ in random_seed")
    assert said and "if random_seed is the runs' seed, name it the seed column" in said[0], said
    b = s.rename(columns={"seed": "data_seed"})
    b["run_id"] = [f"w{w}-lr{x:.3g}" for w, x in zip(b["width"], b["beta"], strict=True)]
    assert _with(_warnings(b), "differ in data_seed")
    c = s.assign(Name=[f"run-{i}" for i in range(len(s))])  # long format: each run at one row per eval set
    c = pd.concat([c.assign(eval_set=e, final_loss=c["final_loss"] + k * 0.1)
                   for k, e in enumerate(["wiki", "c4", "pile"])], ignore_index=True)
    assert _with(_warnings(c), "differ in eval_set")


def test_a_history_without_a_seed_column_says_no_seed():
    df = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=1).drop(columns=["seed"])
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    history = pd.concat([df.assign(final_loss=df["final_loss"] + 0.3 * k) for k in (2, 1, 0)], ignore_index=True)
    with pytest.raises(TableError) as exc:
        prepare(history)
    (said,) = exc.value.problems
    assert said.startswith("run_id: the table holds each run at several rows (one run_id at 3 rows of one width and "
                           "LR, a median), a history export"), said


# --- 5. derive: A is a column; a product's number may come first; a number above 0 -----------------------------


def test_derive_refuses_a_spec_without_a_column_and_non_positive_numbers():
    df = pd.DataFrame({"width_mult": [1, 2, 4]})
    with pytest.raises(TableError) as exc:
        derive_columns(df, ["k=2*2"])
    (said,) = exc.value.problems
    assert said.startswith("`derive` 'k=2*2': 2 is a number, not a column"), said
    assert derive_columns(df, ["width=256*width_mult"])["width"].tolist() == [256.0, 512.0, 1024.0]
    for spec, number in (("width=width_mult*-256", "-256"), ("width=width_mult*0", "0"), ("width=-256*width_mult",
                                                                                           "-256")):
        with pytest.raises(TableError) as exc:
            derive_columns(df, [spec])
        (said,) = exc.value.problems
        assert f"{number} is not a positive finite number" in said, said
    with pytest.raises(TableError) as exc:
        derive_columns(df, ["width=width_mult*nope"])
    assert exc.value.problems == ["nope: missing column (named in `derive` 'width=width_mult*nope')"]


def test_derive_k_2_2_is_exit_2_on_the_cli(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    path = tmp_path / "s.csv"
    synthetic_sweep(widths=WIDTHS, base_width=128, seeds=1).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--derive", "k=2*2", "--n-boot", "20"])
    assert res.exit_code == 2, res.output
    assert "2 is a number, not a column" in " ".join(res.output.split())


# --- 8. the per-layer LR columns' note where no exponent is read; an attention output projection ----------------


def test_constant_per_layer_multipliers_named_lr_say_nothing_of_exponents():
    s = synthetic_sweep(widths=(64, 128, 256, 512), group={"parameterization": "mup", "optimizer": "adam",
                                                            "lr_mode": "per_layer"}, exponent=0.0, seeds=2)
    s = s.rename(columns={"beta": "lr"}).assign(emb_lr=10.0, hidden_lr=1.0, head_lr=0.5)
    prep = prepare(s, ColumnMapping(lr_col="lr"))
    assert [g.lr_exponents for g in prep.groups] == [None]
    assert not _with(list(prep.warnings), "read as each layer's own LR"), prep.warnings


@pytest.mark.parametrize(("name", "layer"), [("out_proj_lr", "hidden"), ("o_proj_lr", "hidden"),
                                             ("attn_out_lr", "hidden"), ("attention_output_lr", "hidden"),
                                             ("outProjLR", "hidden"), ("out_lr", "readout"), ("output_lr", "readout"),
                                             ("head_lr", "readout")])
def test_an_attention_output_projection_is_hidden_not_the_readout(name, layer):
    assert lr_layer_of(name) == layer


# --- 9. a weight decay's flattened names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config_weight_decay", "config_wd", "optimizer.weight_decay", "params.wd",
                                  "trainer/optimizer/weight_decay"])
def test_a_flattened_weight_decay_name_is_said(name):
    df = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=1).assign(**{name: 0.1})
    said = _with(_warnings(df), "not read as the runs' weight decay")
    assert len(said) == 1 and said[0].startswith(f"{name}: not read"), said


def test_other_decays_by_their_last_words_are_not_the_runs():
    df = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=1)
    for name in ("independent_weight_decay", "final_wd", "weight_decay_hidden", "wd_mult"):
        assert not _with(_warnings(df.assign(**{name: 0.1})), "not read as the runs' weight decay"), name


# --- 10. the size families once per prepare, the cheap tests first ---------------------------------------------


def test_the_size_families_are_computed_once_per_prepare(monkeypatch):
    import abcscale.fitting.table as table
    from abcscale.fitting.table import _configs, _valid

    calls = []
    real_families, real_numbers = _configs._size_families, _configs._mostly_numbers

    def families(*args, **kwargs):
        calls.append(1)
        return real_families(*args, **kwargs)

    checked: list[str] = []

    def numbers(s):
        checked.append(str(s.name))
        return real_numbers(s)

    monkeypatch.setattr(table, "_size_families", families)  # prepare's own call
    monkeypatch.setattr(_configs, "_size_families", families)  # and any from the checks
    df = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=2)
    rng = np.random.default_rng(0)
    df = df.assign(host=rng.choice(["a", "b"], len(df)), batch=rng.choice([32, 64], len(df)))
    prep = table.prepare(df)
    assert len(calls) == 1
    monkeypatch.setattr(_configs, "_mostly_numbers", numbers)
    _configs._size_families(df, prep.mapping, _valid._iv(df, prep.mapping))
    assert checked == []  # numeric columns by their dtype, a random text column by its values per size


# --- 11. a tracker's labels are no model family ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["Group", "Tags", "group", "job_type", "Sweep", "Notes"])
def test_wandbs_group_and_tags_one_per_size_are_no_family(name):
    df = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=2)
    df[name] = np.where(df["width"] <= 256, "small-sweep", "big-sweep")
    assert not _with(_warnings(df), "one law is fitted across them")
    # a setup's own column one value per size still is
    assert _with(_warnings(df.rename(columns={name: "schedule"})), "one law is fitted across them")
