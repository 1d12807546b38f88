"""What a user review with a team's own exported tables found (session 40): JSON rows refused a loss written as
"nan" that the same table as CSV read as missing; "1,024" was called a decimal comma; a loss written "diverged"
got no hint; an LR column holding -log2 of the LR fitted as LRs of 5-14 with only a note about missing losses;
wandb's State column saying crashed was read as a setting averaged like seeds, not as failed runs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError, prepare
from abcscale.schemas.fit import ColumnMapping

GROUP = {"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"}


def _sweep() -> pd.DataFrame:
    return synthetic_sweep((128, 256, 512), seeds=2, group=GROUP, seed=5)


@pytest.mark.parametrize("word", ["nan", "NaN", "", "null", "None"])
def test_a_missing_loss_written_as_text_reads_as_the_csv_reads_it(word):
    df = _sweep()
    as_text = df.astype({"final_loss": object})
    as_text.loc[as_text["final_loss"].isna(), "final_loss"] = word
    assert (as_text["final_loss"] == word).sum() > 0
    csv = pd.read_csv(io.StringIO(as_text.to_csv(index=False)))  # what the CLI and an upload read
    a, b = prepare(as_text), prepare(csv)
    assert a.n_diverged == b.n_diverged == int(df["final_loss"].isna().sum())
    fa, fb = fit_table(as_text, n_boot=50).groups[0], fit_table(csv, n_boot=50).groups[0]
    assert [w.lr_opt for w in fa.per_width] == [w.lr_opt for w in fb.per_width]


@pytest.mark.parametrize(("cell", "hint"), [
    ("diverged", "a run that diverged: leave its cell empty or write NaN, or flag it in a column named by"),
    ("crashed", "a run that diverged"),
    ("1,024", "a thousands separator or a decimal comma?"),
    ("0,0031", "a decimal comma? write 0.001"),
])
def test_a_word_or_a_comma_in_a_number_gets_its_hint(cell, hint):
    df = _sweep().astype({"final_loss": object})
    df.loc[3, "final_loss"] = cell
    with pytest.raises(TableError, match="final_loss: not a number in row") as exc:
        prepare(df)
    assert hint in str(exc.value)


@pytest.mark.parametrize("flagged", [True, False])
def test_an_lr_column_running_the_other_way_is_said(flagged):
    df = _sweep()
    df["neg_log2_lr"] = -np.log2(df["beta"])  # 2^-k written as k: larger values, smaller LRs
    if not flagged:
        df = df.drop(columns="diverged")  # as exported: a diverged run is a missing loss
    notes = prepare(df, ColumnMapping(lr_col="neg_log2_lr")).warnings
    said = [n for n in notes if "falls as the LR grows" in n]
    assert len(said) == 1 and "every value is" in said[0] and "and 0 above it" in said[0], notes
    # the table the right way round says nothing of it
    assert not any("falls as the LR grows" in n for n in prepare(df).warnings)


def test_runs_a_tracker_says_did_not_finish_are_left_out_and_said():
    df = _sweep()
    df["State"] = "finished"
    trained = df.index[df["final_loss"].notna()]
    df.loc[trained[:3], "State"] = "crashed"
    df.loc[trained[3], "State"] = "killed"
    wrecked = df.copy()
    wrecked.loc[trained[:4], "final_loss"] = 9.0  # where they stopped: far above the curve
    prep = prepare(wrecked)
    said = [n for n in prep.warnings if n.startswith("State:")]
    rows = ", ".join(str(int(i)) for i in trained[:4])
    assert len(said) == 1 and "4 run(s) crashed, killed left out of the fit" in said[0] and rows in said[0]
    assert not any("State" in n and "seeds" in n for n in prep.warnings)  # not "averaged as if they were seeds"
    assert prep.n_rows == len(df) and prep.n_left_out == 4
    assert sum(len(w.x) for g in prep.groups for w in g.widths) == len(df) - 4
    fit, clean = fit_table(wrecked, n_boot=50), fit_table(df.drop(index=trained[:4]), n_boot=50)
    assert [w.lr_opt for w in fit.groups[0].per_width] == [w.lr_opt for w in clean.groups[0].per_width]
    assert fit.provenance.n_rows_used == clean.provenance.n_rows_used
    # later messages name rows as the table given counts them
    bad = wrecked.astype({"beta": object})
    bad.loc[trained[5], "beta"] = "abc"
    with pytest.raises(TableError, match=rf"beta: not a number in row\(s\) {trained[5]} "):
        prepare(bad)
    assert not any(n.startswith("State:") for n in prepare(df.assign(State="finished")).warnings)
    with pytest.raises(TableError, match="left out of the fit"):  # every run unfinished: nothing to fit, said
        prepare(df.assign(State="running"))


def test_a_seed_column_under_another_name_is_pointed_at_the_seed_role():
    df = _sweep().rename(columns={"seed": "config.seed"})
    (said,) = [n for n in prepare(df).warnings if "config.seed" in n]
    assert "averaged as if they were seeds" in said and "name it the seed column (`seed_col`)" in said
    named = prepare(df, ColumnMapping(seed_col="config.seed")).warnings
    assert not any("config.seed" in n for n in named)


def test_a_trackers_column_names_are_suggested_for_the_missing_roles():
    df = _sweep().rename(columns={"width": "config.d_model", "beta": "config.learning_rate",
                                  "final_loss": "train/loss"}).assign(**{"val/loss": 1.0})
    with pytest.raises(TableError) as exc:
        prepare(df)
    said = str(exc.value)
    assert "width: missing column (the `size_col` column); config.d_model looks like it: name it with `size_col`" \
        in said
    assert "config.learning_rate looks like it: name it with `lr_col`" in said
    assert "val/loss, train/loss look like it: name it with `loss_col`" in said  # the held-out one first


def test_no_inverted_column_is_said_of_ordinary_tables():
    df = _sweep()
    top = df["width"] == df["width"].max()
    every_run_diverged = df.assign(final_loss=df["final_loss"].where(~top), diverged=df["diverged"] | top)
    assert not any("falls as the LR grows" in n for n in prepare(every_run_diverged).warnings)
    unfinished = synthetic_sweep((128, 256, 512), seeds=2, group=GROUP, seed=5, edge_octaves=None)
    unfinished = unfinished.drop(columns="diverged")
    smallest = unfinished.groupby("width")["beta"].transform("min") == unfinished["beta"]
    unfinished.loc[smallest & (unfinished["width"] < 512), "final_loss"] = np.nan  # the smallest LR's runs unfinished
    notes = prepare(unfinished).warnings
    assert any("run(s) without a loss" in n for n in notes)  # said as unfinished, not as an inverted column
    assert not any("falls as the LR grows" in n for n in notes), notes


def test_a_leading_zero_before_a_comma_is_a_decimal_comma():
    df = _sweep().astype({"beta": object})
    df.loc[2, "beta"] = "0,001"
    with pytest.raises(TableError, match=r"\(a decimal comma\? write 0.001, not 0,001\)"):
        prepare(df)


def test_the_likely_names_skip_text_measurements_and_put_exact_endings_first():
    df = _sweep().rename(columns={"beta": "config.lr", "final_loss": "train/loss"}).assign(
        **{"config.lr_scheduler": "cosine", "config.warmup_lr": 1e-6})
    df["loss_at_init"] = 5.5
    with pytest.raises(TableError) as exc:
        prepare(df)
    said = str(exc.value)
    assert "config.lr, config.warmup_lr look like it: name it with `lr_col`" in said  # no text column
    assert "train/loss looks like it: name it with `loss_col`" in said  # not the runner's loss at init


def test_the_input_hash_is_the_tables_as_given():
    from abcscale.fitting.table import table_hash

    clean = _sweep()
    mixed = clean.copy()
    mixed.loc[mixed["seed"] == 1, "beta"] = mixed.loc[mixed["seed"] == 1, "beta"].map(lambda x: float(np.float32(x)))
    assert prepare(mixed).input_hash == table_hash(mixed) != prepare(clean).input_hash


def test_close_lrs_of_different_curves_are_not_merged():
    df = _sweep()
    df.loc[df["width"] == 256, "beta"] *= 1 + 5e-4  # each width's own grid, 0.05% apart from the others
    prep = prepare(df)
    assert not any("one grid point" in n for n in prep.warnings)
    by_width = {w.width: set(np.round(w.x, 9)) for g in prep.groups for w in g.widths}
    assert by_width[256].isdisjoint(by_width[128])


def test_derive_copies_a_trackers_setup_columns_under_the_names_theory_reads():
    mixed = pd.concat([synthetic_sweep((128, 256, 512), seeds=2, exponent=e, seed=s,
                                       group={"config.param": p, "config.optim": "AdamW", "lr_mode": m})
                       for p, m, e, s in (("sp", "global", -1.0, 1), ("µP", "per_layer", 0.0, 2))])
    plain = fit_table(mixed, n_boot=50)
    assert all(g.theory_exponent is None for g in plain.groups)  # theory cannot read config.param
    m = ColumnMapping(derive=["parameterization=config.param", "optimizer=config.optim"])
    fit = fit_table(mixed, m, n_boot=50)
    got = {g.group["parameterization"]: g.theory_exponent for g in fit.groups}
    assert got == {"sp": -1.0, "µP": 0.0}
    assert all(g.group["optimizer"] == "AdamW" for g in fit.groups)
    with pytest.raises(TableError, match="parameterization is already a column"):
        prepare(mixed.assign(parameterization="mup"), m)
    with pytest.raises(TableError, match="config.nothing: missing column"):
        prepare(mixed, ColumnMapping(derive=["optimizer=config.nothing"]))
    with pytest.raises(TableError, match="config.param must be numbers to round them"):
        prepare(mixed, ColumnMapping(derive=["x=config.param:round"]))
    from abcscale.fitting.table import derive_columns

    rounded = derive_columns(mixed.assign(d=mixed["width"] + 0.4), ["N=d:round"])
    assert rounded["N"].tolist() == mixed["width"].astype(float).tolist()


def test_notes_after_the_left_out_rows_name_rows_as_given():
    df = _sweep()
    df["State"] = "finished"
    df["_step"] = 1000
    trained = df.index[df["final_loss"].notna()]
    df.loc[trained[:3], "State"] = "crashed"
    short = trained[10]  # after the left-out rows: its position in the fitted table is 3 less
    df.loc[short, "_step"] = 400
    (cut,) = [n for n in prepare(df).warnings if "cut short" in n]
    assert f"row(s) {short}." in cut, cut


def test_plots_of_a_fit_whose_setup_columns_were_derived(tmp_path):
    from abcscale.usecases import plot_fit

    df = _sweep().rename(columns={"parameterization": "config.param"})
    fit = fit_table(df, ColumnMapping(derive=["parameterization=config.param"]), n_boot=50)
    assert fit.groups[0].theory_exponent is not None
    assert sorted(plot_fit(fit, df, tmp_path)) == ["loss_vs_lr", "loss_vs_width", "lr_vs_width"]


def test_waiting_runs_are_no_divergences_and_a_slash_name_is_said():
    df = _sweep()
    df["State"] = "finished"
    top = df.index[(df["width"] == 512) & (df["beta"] == df.loc[df["width"] == 512, "beta"].max())]
    df.loc[top, ["final_loss", "diverged"]] = [np.nan, False]
    df.loc[top, "State"] = "queued"  # not run yet: no loss, and no divergence
    base = prepare(df.drop(index=top)).n_diverged
    prep = prepare(df)
    assert prep.n_diverged == base and prep.n_left_out == len(top)
    with pytest.raises(TableError, match="train/lr is one column, whose name a spec cannot hold"):
        prepare(df.assign(**{"train/lr": 1.0}), ColumnMapping(derive=["l=train/lr"]))
