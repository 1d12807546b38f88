"""Session 66's review of team tables (findings 1-5, 7, 8): a scheduled LR logged after its decay, a team's own
per-layer LR columns, two model families on disjoint widths, width multipliers read as widths, a history export
without its step column, an unread weight-decay column, and two optimizers each on its own LR grid. Each was fitted
with nothing said (or said as another problem); each is now said, naming its column, and the runner's own tables
stay as they were."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError, prepare
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.fits import unreliable

#: the theory setup of a table without those columns
MUP_GLOBAL = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
N_BOOT = 50


def _warnings(df: pd.DataFrame, **mapping) -> list[str]:
    return list(prepare(df, ColumnMapping(**mapping)).warnings)


def _with(warnings: list[str], text: str) -> list[str]:
    return [w for w in warnings if text in w]


def _curves(widths, grid, *, lr_star, seeds=2, seed=0, **cols) -> list[dict]:
    """Rows of a quadratic basin in log2 LR around ``lr_star(w)``, on an explicit grid (log2 LR values), with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        for x in grid:
            d = x - np.log2(lr_star(w))
            for s in range(seeds):
                loss = np.nan if d > 2.2 else 2.6 + 6.0 * w ** -0.5 + 0.03 * d * d + rng.normal(0, 0.004)
                rows.append({"width": w, "lr": 2.0 ** x, "seed": s, "val_loss": loss, **cols})
    return rows


def _unreliable() -> str:
    from abcscale.fitting.predict import UNRELIABLE

    return UNRELIABLE


# --- 1. a scheduled LR logged after its decay ------------------------------------------------------------------


def _hf_table() -> pd.DataFrame:
    # Hugging Face's Trainer: learning_rate is the scheduled LR at the last log step (step 990 of 1000 under a
    # linear decay: 10/900 of the peak), config_learning_rate the swept peak
    df = synthetic_sweep(seed=1).drop(columns=["base_width"]).rename(columns={"beta": "config_learning_rate"})
    return df.assign(learning_rate=df["config_learning_rate"] * 10 / 900, **MUP_GLOBAL)


def test_a_scheduled_lr_a_constant_multiple_of_the_swept_peak_is_unreliable():
    said = _with(_warnings(_hf_table(), lr_col="learning_rate"), "in every row")
    assert len(said) == 1, said
    assert said[0].startswith(_unreliable() + "learning_rate: config_learning_rate x 0.0111 in every row: a scheduled "
                              "LR logged after its decay"), said
    assert "fit it with `lr_col` config_learning_rate" in said[0]


def test_a_scheduled_lr_warning_is_in_the_fit_and_names_the_flag_on_the_cli(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    path = tmp_path / "hf.csv"
    _hf_table().to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--lr-col", "learning_rate", "--summary", "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    assert "unreliable: learning_rate: config_learning_rate x 0.0111" in " ".join(res.output.split())
    assert "--lr-col config_learning_rate" in " ".join(res.output.split())


def test_the_swept_peak_and_the_runners_per_layer_lrs_say_nothing_of_a_schedule():
    df = _hf_table()
    assert not _with(_warnings(df, lr_col="config_learning_rate"), "in every row")
    # the runner's own per-layer LRs are beta times a constant at one width (gamma 0.5 in a global sweep): by design
    runner = synthetic_sweep(seed=1).assign(**MUP_GLOBAL, gamma_hidden=0.5)
    runner = runner.assign(lr_embedding=runner["beta"], lr_hidden=runner["beta"] * 0.5, lr_readout=runner["beta"],
                           lr_vector=runner["beta"] * 0.5, log2_lr=np.log2(runner["beta"]))
    assert not _with(_warnings(runner), "in every row")
    # a team's hidden_lr beside it, too; and a layer's own LR fitted is no schedule
    team = runner.assign(hidden_lr=runner["beta"] * 4)
    assert not _with(_warnings(team), "in every row")
    assert not _with(_warnings(team, lr_col="lr_hidden"), "in every row")


def test_the_prefix_is_the_predictions_own():
    from abcscale.fitting.predict import UNRELIABLE
    from abcscale.fitting.table import UNRELIABLE as TABLE_UNRELIABLE

    assert UNRELIABLE == TABLE_UNRELIABLE


# --- 2. a team's own per-layer LR columns ---------------------------------------------------------------------


def _per_layer_table(names: dict[str, str]) -> pd.DataFrame:
    # a per-layer muP + Adam sweep whose layers' LRs scale as c = 0 / 1 / 1 (no multipliers), not full alignment's
    # 0.5 / 1 / 0.5: the fit's per-layer answers under full are not what the runs measured
    df = synthetic_sweep(seed=2, exponent=0.0).assign(parameterization="mup", optimizer="adam", lr_mode="per_layer")
    factor = {"embedding": 1.0, "hidden": None, "readout": None}
    for layer, col in names.items():
        df[col] = df["beta"] * (1.0 if factor[layer] else 64.0 / df["width"])
    return df


@pytest.mark.parametrize("names", [{"embedding": "embed_lr", "hidden": "hidden_lr", "readout": "head_lr"},
                                   {"embedding": "lr/embedding", "hidden": "lr/hidden", "readout": "lr/readout"},
                                   {"embedding": "lr_embedding", "hidden": "lr_hidden", "readout": "lr_readout"}])
def test_a_teams_per_layer_lr_columns_give_the_sweeps_exponents(names):
    df = _per_layer_table(names)
    (g,) = prepare(df).groups
    assert g.lr_exponents == {"embedding": 0.0, "hidden": 1.0, "readout": 1.0}
    fit = abcscale.fit(df, target_width=1024, n_boot=N_BOOT)
    rec = abcscale.recommend(fit=fit, width=64, form="plain")  # at the swept width itself
    # what `recommend --fit --strict` exits 1 on
    assert any("scale as c = 0 / 1 / 1" in why for why in rec.band.unreliable), rec.band.unreliable


def test_team_names_are_said_and_the_runners_are_not():
    team = _warnings(_per_layer_table({"embedding": "embed_lr", "hidden": "hidden_lr", "readout": "head_lr"}))
    assert _with(team, "embed_lr / hidden_lr / head_lr: read as each layer's own LR (the contract's lr_embedding / "
                       "lr_hidden / lr_readout)")
    runner = _warnings(_per_layer_table({"embedding": "lr_embedding", "hidden": "lr_hidden", "readout": "lr_readout"}))
    assert not _with(runner, "read as each layer's own LR")


def test_the_runners_names_win_and_two_columns_of_one_layer_say_nothing_of_it():
    df = _per_layer_table({"embedding": "lr_embedding", "hidden": "lr_hidden", "readout": "lr_readout"})
    both = df.assign(hidden_lr=df["beta"] * 3.0)  # a team's column beside the runner's: the runner's is read
    (g,) = prepare(both).groups
    assert g.lr_exponents == {"embedding": 0.0, "hidden": 1.0, "readout": 1.0}
    team = _per_layer_table({"embedding": "embed_lr", "hidden": "hidden_lr", "readout": "head_lr"})
    two = team.assign(**{"lr/hidden": team["hidden_lr"]})  # which is the hidden layer's? neither is read
    (g,) = prepare(two).groups
    assert g.lr_exponents is None


def test_a_one_valued_beta_points_at_the_swept_lr_not_at_a_layers_own():
    df = synthetic_sweep(seed=3).rename(columns={"beta": "lr"}).assign(beta=0.9)
    df = df.assign(hidden_lr=df["lr"] * 64.0 / df["width"])
    with pytest.raises(TableError) as exc:
        prepare(df)
    said = [p for p in exc.value.problems if p.startswith("beta: one value")]
    assert said and "lr looks like the learning rate" in said[0] and "hidden_lr" not in said[0], said


# --- 3. two model families on disjoint widths; a depth grown with the width -------------------------------------


def _two_families(col: str = "model") -> pd.DataFrame:
    grid = np.arange(-17.0, -4.9, 0.5)
    rows = _curves([128, 256], grid, lr_star=lambda w: 3e-3 * (w / 128) ** -1.0, seed=9, **{col: "gpt2"})
    rows += _curves([512, 1024, 2048], grid, lr_star=lambda w: 1e-3 * (w / 128) ** -0.5, seed=10, **{col: "llama"})
    return pd.DataFrame(rows).assign(**MUP_GLOBAL)


def test_two_model_families_on_disjoint_widths_are_unreliable():
    df = _two_families()
    prep = prepare(df, ColumnMapping(lr_col="lr", loss_col="val_loss"))
    said = _with(list(prep.warnings), "one law is fitted across them")
    assert len(said) == 1, said
    assert said[0].startswith("model: gpt2 at widths 128, 256; llama at 512, 1024, 2048: one law"), said
    assert "name model a group column (`group_cols`)" in said[0]
    assert prep.groups[0].mixed == ("model",)
    result = abcscale.fit(df, mapping={"lr_col": "lr", "loss_col": "val_loss"}, target_width=8192, n_boot=N_BOOT)
    assert any("differ in model" in why for _, why in unreliable(result))  # --strict exits 1


def test_another_setup_on_disjoint_widths_is_said_plainly():
    df = _two_families("schedule").replace({"schedule": {"gpt2": "cosine", "llama": "linear"}})
    prep = prepare(df, ColumnMapping(lr_col="lr", loss_col="val_loss"))
    said = _with(list(prep.warnings), "one law is fitted across them")
    assert len(said) == 1 and said[0].startswith("schedule: cosine at widths 128, 256; linear at 512, 1024, 2048 (one "
                                                 "value per width)"), said
    assert prep.groups[0].mixed == ()


def test_a_size_label_a_group_column_or_a_trackers_column_says_nothing():
    df = _two_families()
    mapping = {"lr_col": "lr", "loss_col": "val_loss"}
    label = df.assign(model=df["width"].map({128: "tiny", 256: "small", 512: "base", 1024: "large", 2048: "xl"}))
    assert not _with(_warnings(label, **mapping), "one law is fitted")
    grouped = prepare(df, ColumnMapping(**mapping, group_cols=["model", *MUP_GLOBAL]))
    assert not _with(list(grouped.warnings), "one law is fitted") and all(not g.mixed for g in grouped.groups)
    commit = df.rename(columns={"model": "git_commit"})
    assert not _with(_warnings(commit, **mapping), "one law is fitted")
    # one model throughout (the runner's `model` column): nothing to say
    assert not _with(_warnings(df.assign(model="transformer"), **mapping), "one law is fitted")


def test_a_depth_grown_with_the_width_is_said():
    df = synthetic_sweep(seed=4)
    depth = df.assign(n_layer=df["width"].map({64: 2, 128: 4, 256: 6, 512: 12, 1024: 24}))
    said = _with(_warnings(depth), "n_layer changes with width")
    assert len(said) == 1 and "(the width and the depth together)" in said[0], said
    assert not _with(_warnings(df.assign(n_layer=6)), "n_layer changes")
    assert not _with(_warnings(df.assign(num_hidden_layers=6)), "changes with width")


# --- 4. width multipliers read as widths ---------------------------------------------------------------------


def test_a_width_multiplier_column_is_refused_with_the_recipe():
    df = synthetic_sweep(seed=5).drop(columns=["base_width"])
    df["width_mult"] = df.pop("width") // 64
    with pytest.raises(TableError) as exc:
        prepare(df, ColumnMapping(size_col="width_mult"))
    (said,) = [p for p in exc.value.problems if p.startswith("width_mult:")]
    assert "a width multiplier by its name" in said and "`derive` width=width_mult*BASE" in said, said
    # the recipe fits: a derived column of a column times a number
    prep = prepare(df, ColumnMapping(size_col="width", derive=["width=width_mult*64"]))
    assert [r.width for r in prep.groups[0].widths] == [64, 128, 256, 512, 1024]


def test_widths_of_16_or_less_are_asked_about_unless_the_table_has_a_base_width():
    df = synthetic_sweep(seed=5)
    small = df.assign(width=df["width"] // 64).drop(columns=["base_width"])
    said = _with(_warnings(small), "width multipliers")
    assert len(said) == 1 and said[0].startswith(_unreliable() + "width: widths 1..16: width multipliers"), said
    assert "`derive` d_model=width*BASE" in said[0]
    # a tiny sweep of the runner's (base_width beside it) is widths
    assert not _with(_warnings(small.assign(base_width=1)), "width multipliers")
    assert not _with(_warnings(df), "width multipliers")


# --- 5. a history export without its step column ------------------------------------------------------------


def _history(copies: int = 3) -> pd.DataFrame:
    df = synthetic_sweep(seed=6, widths=(64, 128, 256, 512))
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    # each run's loss at earlier logged steps: higher, and falling
    return pd.concat([df.assign(final_loss=df["final_loss"] + 0.3 * k) for k in reversed(range(copies))],
                     ignore_index=True)


def test_a_history_with_a_run_id_and_no_step_column_is_refused():
    with pytest.raises(TableError) as exc:
        prepare(_history())
    (said,) = exc.value.problems
    assert said.startswith("run_id: the table holds each run at several rows (one run_id at 3 rows"), said
    assert "history export" in said and "keep one row per run" in said


def test_copies_a_few_reruns_and_an_id_per_row_are_no_history():
    df = synthetic_sweep(seed=6, widths=(64, 128, 256, 512))
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    prepare(df)  # one row per run
    twice = pd.concat([df, df], ignore_index=True)  # an export written twice: its copies are dropped, said
    assert _with(list(prepare(twice).warnings), "repeated runs")
    rerun = pd.concat([df, df.iloc[:4].assign(final_loss=df["final_loss"].iloc[:4] + 0.01)], ignore_index=True)
    assert _with(list(prepare(rerun).warnings), "repeated runs")  # a rerun of 4 runs under their ids: warned
    # a label of many runs (a sweep's) is no run's id
    prepare(pd.concat([df.assign(name="sweep-a", final_loss=df["final_loss"] + 0.001), df.assign(name="sweep-a")],
                      ignore_index=True).drop(columns=["run_id"]))


# --- 7. a weight-decay column the fit does not read ------------------------------------------------------------


def test_an_unread_weight_decay_column_is_said():
    df = synthetic_sweep(seed=7).assign(**{**MUP_GLOBAL, "optimizer": "adamw"})
    for name in ("weight_decay", "wd", "config.weight_decay"):
        said = _with(_warnings(df.assign(**{name: 0.1})), "not read as the runs' weight decay")
        assert len(said) == 1 and said[0].startswith(f"{name}: not read as the runs' weight decay (the contract's "
                                                     "base_weight_decay"), said
        assert "the runs trained with 0.1" in said[0] and "--weight-decay" in said[0]
    # every run's 0 (what a recommendation gives), the contract's columns, the runner's other decay: nothing to say
    assert not _with(_warnings(df.assign(weight_decay=0.0)), "weight decay")
    contract = df.assign(weight_decay=0.1, base_weight_decay=0.1, weight_decay_mode="independent")
    assert not _with(_warnings(contract), "not read as the runs' weight decay")
    assert not _with(_warnings(df.assign(independent_weight_decay=0.1)), "not read as the runs' weight decay")


# --- 8. two optimizers, each on its own LR grid ----------------------------------------------------------------


def _own_grids() -> pd.DataFrame:
    widths = [128, 256, 512, 1024]
    rows = _curves(widths, np.arange(-14.0, -4.9, 0.5), lr_star=lambda w: 3e-3 * 128 / w, seed=14, optim="adamw")
    rows += _curves(widths, np.arange(-19.0, -12.9, 0.5), lr_star=lambda w: 3e-4 * 128 / w, seed=15, optim="lion")
    return pd.DataFrame(rows).assign(**MUP_GLOBAL)


def test_two_optimizers_each_on_its_own_grid_are_a_mix_whatever_their_overlap():
    df = _own_grids()
    mapping = {"lr_col": "lr", "loss_col": "val_loss"}
    prep = prepare(df, ColumnMapping(**mapping))
    assert prep.groups[0].mixed == ("optim",)
    result = abcscale.fit(df, mapping=mapping, target_width=4096, n_boot=N_BOOT)
    assert any("differ in optim" in why for _, why in unreliable(result))  # --strict exits 1


def test_a_group_column_or_a_few_relabelled_runs_are_no_mix():
    df = _own_grids()
    mapping = {"lr_col": "lr", "loss_col": "val_loss"}
    grouped = prepare(df, ColumnMapping(**mapping, group_cols=["optim", *MUP_GLOBAL]))
    assert all(not g.mixed for g in grouped.groups)
    one = df[df["optim"] == "adamw"].reset_index(drop=True)
    tagged = one.assign(tag=np.where((one["width"] == 256) & (one["seed"] == 0) & (one.index % 7 == 0), "rerun", "-"))
    assert prepare(tagged, ColumnMapping(**mapping)).groups[0].mixed == ()


# --- the table's unreliable warnings gate (--strict, band.unreliable) ------------------------------------------


def test_the_tables_own_unreliable_warnings_fail_strict(tmp_path):
    # said only among the fit's own warnings, a scheduled LR fitted passed `fit --strict` and `recommend --strict`
    from typer.testing import CliRunner

    from abcscale.cli import app

    fit = abcscale.fit(_hf_table(), mapping={"lr_col": "learning_rate"}, target_width=4096, n_boot=50)
    assert any("scheduled LR" in why for _, why in unreliable(fit))
    rec = abcscale.recommend(fit=fit, width=4096)
    assert any("scheduled LR" in why for why in rec.band.unreliable)
    assert abcscale.fit(_hf_table(), mapping={"lr_col": "config_learning_rate"}, target_width=4096,
                        n_boot=50).warnings == [w for w in fit.warnings if not w.startswith(_unreliable())]
    path = tmp_path / "hf.csv"
    _hf_table().to_csv(path, index=False)
    run = CliRunner().invoke
    res = run(app, ["fit", str(path), "--lr-col", "learning_rate", "--target-width", "4096", "--strict",
                    "--n-boot", "20", "--out", str(tmp_path / "f")])
    assert res.exit_code == 1 and "scheduled LR" in " ".join(res.output.split()), res.output
    res = run(app, ["recommend", "--fit", str(tmp_path / "f" / "fit.json"), "-n", "4096", "--strict"])
    assert res.exit_code == 1 and "scheduled LR" in " ".join(res.output.split()), res.output
    res = run(app, ["fit", str(path), "--lr-col", "config_learning_rate", "--target-width", "4096", "--strict",
                    "--n-boot", "20"])
    assert res.exit_code == 0, res.output
