"""Session 68's review of sweep-table ingestion: a `;` CSV whose names hold commas, numbers written as text in a group
column beside numbers, `lr_mode` spelt with a space, a tracker history whose `lr` is the schedule's step LR beside its
`max_lr`, a run name per configuration over its seeds, derived columns listed as the table's, and W&B's `config.`
theory columns. Each test is the table as a user meets it; each failed before the fix."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting.reading import read_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError, prepare
from abcscale.schemas.fit import ColumnMapping

MUP_GLOBAL = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def _basin(widths=(128, 256, 512, 1024), lrs=(1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2), seeds=2, seed=0,
           **cols) -> pd.DataFrame:
    """One row per run: a quadratic basin in log2 LR around 8e-3 * 128 / width, with seed noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        for lr in lrs:
            for s in range(seeds):
                d = math.log2(lr) - math.log2(8e-3 * 128 / w)
                rows.append({"width": w, "beta": lr, "seed": s, **cols,
                             "final_loss": 3.0 + 0.05 * d * d - 0.1 * math.log2(w / 128) + rng.normal(0, 0.004)})
    return pd.DataFrame(rows)


# --- 1. a `;` CSV whose header holds more commas than semicolons ----------------------------------------------


def test_a_semicolon_csv_with_commas_in_its_names_is_split_on_semicolons():
    data = b"width;lr;loss (train, final, nats);acc (val, top1, top5)\n128;0.001;3.2;0.5\n256;0.002;3.1;0.6\n"
    df = read_table(data)
    assert df.columns.tolist() == ["width", "lr", "loss (train, final, nats)", "acc (val, top1, top5)"]
    assert df["width"].tolist() == [128, 256] and df["loss (train, final, nats)"].tolist() == [3.2, 3.1]
    # a trailing separator on every row (one field more than the header) too
    trailing = read_table(b"width;lr;loss (a, b, c)\n128;0.001;3.2;\n256;0.002;3.1;\n")
    assert trailing.columns.tolist() == ["width", "lr", "loss (a, b, c)"]


def test_the_separator_rules_that_held_still_hold():
    # a comma CSV with a semicolon inside a name, a European export (decimal commas), a header-only count rule
    comma = read_table(b"width,lr,tags (a;b)\n128,0.001,x\n256,0.002,y\n")
    assert comma.columns.tolist() == ["width", "lr", "tags (a;b)"]
    euro = read_table(b"width;lr;loss\n128;0,001;3,2\n256;0,002;3,1\n")
    assert euro.columns.tolist() == ["width", "lr", "loss"] and euro["lr"].tolist() == ["0,001", "0,002"]
    quoted = read_table(b'width,lr,"loss; final"\n128,0.001,3.2\n256,0.002,3.1\n')
    assert quoted.columns.tolist() == ["width", "lr", "loss; final"]


# --- 2. numbers written as text beside numbers ----------------------------------------------------------------


@pytest.mark.parametrize("column", ["base_width", "depth", "steps"])
def test_numbers_as_text_with_spaces_read_as_numbers_in_every_column(column):
    # JSON rows (POST /v1/fits) where some cells hold the number as text: the width column read " 128 ", the
    # group columns refused it as "a group column mixes numbers and text"
    df = _basin(**MUP_GLOBAL, **{column: 128 if column == "base_width" else 12})
    df[column] = df[column].astype(object)
    df.loc[df.index % 2 == 0, column] = df.loc[df.index % 2 == 0, column].map(lambda v: f" {v} ")
    df["width"] = df["width"].astype(object)
    df.loc[df.index % 3 == 0, "width"] = df.loc[df.index % 3 == 0, "width"].map(lambda v: f" {v} ")
    prep = prepare(df)
    assert len(prep.groups) == 1
    if column == "base_width":
        assert prep.groups[0].base_width == 128


def test_a_base_width_group_column_of_text_sorts_as_numbers():
    df = pd.concat([_basin(**MUP_GLOBAL, base_width=" 1024 "), _basin(**MUP_GLOBAL, base_width="256", seed=1)])
    keys = [g.key["base_width"] for g in prepare(df.reset_index(drop=True)).groups]
    assert sorted(keys) == [256, 1024] and all(isinstance(k, int | float) for k in keys)


def test_a_label_of_digits_or_a_word_among_numbers_is_left_as_written():
    df = _basin(**MUP_GLOBAL).assign(run="001", depth=12)
    df["depth"] = df["depth"].astype(object)
    df.loc[0, "depth"] = "twelve"
    with pytest.raises(TableError, match="depth: a group column mixes numbers and text"):
        prepare(df)


# --- 3. lr_mode spelt with a space ----------------------------------------------------------------------------


@pytest.mark.parametrize("spelt", ["per layer", "Per Layer", "perlayer", "per - layer"])
def test_lr_mode_spelt_with_its_words_apart_reads_as_per_layer(spelt):
    prep = prepare(_basin(**{**MUP_GLOBAL, "lr_mode": spelt}))
    assert prep.groups[0].key["lr_mode"] == "per_layer"
    assert f"lr_mode: {spelt!r} read as 'per_layer' (the spelling theory reads)" in prep.warnings


def test_spellings_theory_reads_merge_as_before_and_a_space_joins_them():
    df = pd.concat([_basin(**{**MUP_GLOBAL, "parameterization": "muP"}),
                    _basin(**{**MUP_GLOBAL, "parameterization": "mup"}, seed=1).iloc[:10],
                    _basin(**{**MUP_GLOBAL, "parameterization": "Mean Field"}, seed=2)], ignore_index=True)
    prep = prepare(df)
    assert sorted(g.key["parameterization"] for g in prep.groups) == ["mean_field", "muP"]
    assert "parameterization: 'mup' read as 'muP' (one setting spelt several ways)" in prep.warnings


def test_an_unknown_lr_mode_still_names_the_known_values():
    import abcscale

    fit = abcscale.fit(_basin(**{**MUP_GLOBAL, "lr_mode": "layerwise"}), n_boot=20)
    said = " ".join(fit.groups[0].warnings)
    assert "unknown lr_mode 'layerwise'; allowed: global, per_layer" in said


# --- 4a. a tracker history of OneCycleLR: `lr` the step's LR, `max_lr` the swept peak --------------------------


def _one_cycle(steps=(0, 250, 500, 750, 1000)) -> pd.DataFrame:
    rows = []
    for w in (128, 256, 512, 1024):
        for peak in (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2):
            for s in (0, 1):
                d = math.log2(peak) - math.log2(8e-3 * 128 / w)
                final = 3 + 0.05 * d * d - 0.1 * math.log2(w / 128) + 0.002 * s
                for st in steps:
                    p = st / 1000  # warm-up to the peak over 30%, cosine to peak / 1e4
                    lr = (peak / 25 + (peak - peak / 25) * p / 0.3 if p < 0.3 else
                          peak / 1e4 + (peak - peak / 1e4) * (1 + math.cos(math.pi * (p - 0.3) / 0.7)) / 2)
                    rows.append({"width": w, "seed": s, "step": st, "lr": lr, "max_lr": peak,
                                 "loss": final + 2 * (1 - p) ** 2})
    return pd.DataFrame(rows)


def test_a_history_fitted_by_its_step_lr_is_refused_naming_the_peak():
    # before: each step's LR read as a run of its own, the history unseen, the fit made ("cut short" aside)
    with pytest.raises(TableError) as exc:
        prepare(_one_cycle(), ColumnMapping(lr_col="lr", loss_col="loss"))
    (said,) = exc.value.problems
    assert said.startswith("step: the table holds each run at several steps (5 values")
    assert "lr changes along each run's steps" in said and "fit it with `lr_col` max_lr" in said


def test_the_missing_lr_hint_names_the_swept_peak_first():
    for table in (_one_cycle(), _one_cycle(steps=(1000,))):
        with pytest.raises(TableError) as exc:
            prepare(table, ColumnMapping(loss_col="loss"))
        assert "beta: missing column (the `lr_col` column); max_lr, lr look like it" in str(exc.value)
    # the peak fitted: the history refused as before, and the last rows fitted with nothing unreliable
    with pytest.raises(TableError, match="step: the table holds each run at several steps"):
        prepare(_one_cycle(), ColumnMapping(lr_col="max_lr", loss_col="loss"))
    last = prepare(_one_cycle(steps=(1000,)), ColumnMapping(lr_col="max_lr", loss_col="loss"))
    assert not [w for w in last.warnings if w.startswith("unreliable")]


def test_a_constant_or_per_run_second_lr_column_is_no_schedule():
    # min_lr a tenth of each run's lr, warmup_lr one value: one row per run, nothing refused
    df = _basin(**MUP_GLOBAL)
    prepare(df.assign(min_lr=df["beta"] / 10, warmup_lr=1e-6))


# --- 4b. a run name per configuration over its seeds, no seed column -----------------------------------------


def test_a_name_per_configuration_over_its_seeds_is_no_history():
    df = _basin(seeds=3, seed=3).drop(columns="seed")
    df["Name"] = [f"w{w}-lr{lr:g}" for w, lr in zip(df["width"], df["beta"], strict=True)]
    prep = prepare(df)  # refused as "a history export without its step column" before
    assert prep.warnings == prepare(df.drop(columns="Name")).warnings
    assert any(w.startswith("repeated runs") for w in prep.warnings)


def test_a_history_without_its_step_column_is_still_refused_either_order():
    df = synthetic_sweep(seed=6, widths=(64, 128, 256, 512))
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    for order in (reversed(range(3)), range(3)):  # oldest first (loss falls), newest first (rises)
        history = pd.concat([df.assign(final_loss=df["final_loss"] + 0.3 * k) for k in order], ignore_index=True)
        with pytest.raises(TableError, match="run_id: the table holds each run at several rows"):
            prepare(history)


# --- 4c. "columns are: ..." lists the table's columns, not derived ones ----------------------------------------


def test_columns_listed_are_the_tables_own():
    df = _basin().drop(columns="final_loss").assign(val_loss=3.0, width_mult=lambda d: d["width"] / 128)
    df = df.drop(columns="width")
    with pytest.raises(TableError) as exc:
        prepare(df, ColumnMapping(derive=["width=width_mult*128"]))
    assert "columns are: beta, seed, val_loss, width_mult" in str(exc.value)


# --- 4d. W&B's config.-prefixed theory columns -----------------------------------------------------------------


def test_config_prefixed_theory_columns_are_said_with_the_way_to_read_them():
    df = _basin().rename(columns={"width": "config.width", "beta": "config.lr", "seed": "config.seed"})
    df = df.assign(**{f"config.{k}": v for k, v in MUP_GLOBAL.items()})
    mapping = {"size_col": "config.width", "lr_col": "config.lr", "seed_col": "config.seed"}
    warnings = prepare(df, ColumnMapping(**mapping)).warnings
    for name in MUP_GLOBAL:
        assert (f"config.{name}: looks like the {name} column, which the table lacks: it is not read as that "
                f"(theory's exponents need {name}); rename it {name!r}, or copy it so with `derive` "
                f"{name}=config.{name}") in warnings
    derived = prepare(df, ColumnMapping(**mapping, derive=[f"{k}=config.{k}" for k in MUP_GLOBAL]))
    assert derived.groups[0].key == MUP_GLOBAL
    assert not [w for w in derived.warnings if "looks like the" in w]
