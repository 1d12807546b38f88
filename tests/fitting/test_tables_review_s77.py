"""Session 77's review of messy user tables: a numeric setting (a batch size) swept at every width on LR grids of
its own is two or more configurations, as the same values written as text were; a CSV's alignment "None" is the
alignment none, not a missing cell (full alignment, 5.7x off in beta against the same table as parquet); spellings
of one alignment or optimizer variant (`full`, `Full`) are one group with a note."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep

SETUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def _batch_sizes(as_text: bool) -> pd.DataFrame:
    """Batch sizes 32 / 64 / 128, each its own optimum (0.007 / 0.01 / 0.014 at width 64, LR* ~ 1/width), each on an
    LR grid centred on its own optimum, 2 seeds, small noise: the pooled fit is for none of them."""
    rng, rows = np.random.default_rng(0), []
    for bs, best in ((32, 0.007), (64, 0.01), (128, 0.014)):
        for w in (64, 128, 256, 512):
            centre = np.log2(best) - np.log2(w / 64)
            for x in centre + np.arange(-3, 3.01, 0.5):
                for s in range(2):
                    d, div = x - centre, x - centre > 2
                    loss = np.nan if div else (2 + 20 * w**-0.5) * (1 + 0.02 * d * d) * (
                        1 + 0.002 * rng.standard_normal())
                    rows.append({"width": w, "beta": 2**x, "seed": s, "final_loss": loss, "diverged": div,
                                 "batch_size": f"bs{bs}" if as_text else bs, **SETUP})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("as_text", [False, True])
def test_a_setting_swept_on_grids_of_its_own_is_unreliable_as_numbers_as_text(as_text):
    fit = abcscale.fit(_batch_sizes(as_text), target_width=2048, n_boot=50)
    (group,) = fit.groups
    assert group.prediction is not None and group.prediction.unreliable, group.prediction
    assert any("differ in batch_size" in why for why in group.prediction.unreliable)
    # and the batch size as a group column fits each apart, with nothing unreliable about the mix
    apart = abcscale.fit(_batch_sizes(as_text), target_width=2048, n_boot=50,
                         mapping={"group_cols": ["parameterization", "optimizer", "lr_mode", "batch_size"]})
    assert len(apart.groups) == 3
    assert not any("differ in batch_size" in why for g in apart.groups for why in (g.prediction.unreliable or []))


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue().encode()


def test_a_csvs_alignment_none_is_the_alignment_none(tmp_path):
    table = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, exponent=-0.5,
                            group={**SETUP, "alignment": "None"})
    (tmp_path / "t.csv").write_bytes(_csv(table))
    table.to_parquet(tmp_path / "t.parquet")
    theory = {}
    for name in ("t.csv", "t.parquet"):
        (group,) = abcscale.fit(str(tmp_path / name), n_boot=50).groups
        theory[name] = group.theory_exponent
        assert str(group.group["alignment"]).lower() == "none"
    assert theory["t.csv"] == theory["t.parquet"] == -0.5  # muP + Adam, global LR, no alignment (full: -1)
    # an empty cell stays missing: the theory columns' rule says it (a run's group cannot be left out)
    blank = table.astype({"alignment": object})
    blank.loc[blank.index[:3], "alignment"] = np.nan
    (tmp_path / "b.csv").write_bytes(_csv(blank))
    with pytest.raises(ValueError, match="alignment: empty in"):
        abcscale.fit(str(tmp_path / "b.csv"), n_boot=50)


@pytest.mark.parametrize(("column", "ways"), [("alignment", ("full", "Full")),
                                               ("alignment", ("0.75,0.5,0.75", "0.75, 0.5, 0.75")),
                                               ("optimizer_variant", ("adam", "Adam"))])
def test_one_setting_spelt_two_ways_is_one_group_with_a_note(column, ways):
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP)
    table[column] = np.where(table["seed"] == 0, ways[0], ways[1])
    fit = abcscale.fit(table, n_boot=50)
    assert len(fit.groups) == 1, [g.group for g in fit.groups]
    assert any(w.startswith(f"{column}: ") and "one setting spelt several ways" in w for w in fit.warnings), \
        fit.warnings


def test_a_group_value_logged_at_two_precisions_is_one_group_with_a_note():
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP)
    table["weight_decay"] = np.where(table["seed"] == 0, 0.1, float(np.float32(0.1)))
    fit = abcscale.fit(table, n_boot=50, mapping={"group_cols": [*SETUP, "weight_decay"]})
    assert [g.group["weight_decay"] for g in fit.groups] == [0.1]
    assert any("two precisions" in w and "0.10000000149011612 as 0.1" in w for w in fit.warnings), fit.warnings
    # settings apart by more than rounding stay apart
    table["weight_decay"] = np.where(table["seed"] == 0, 0.1, 0.1001)
    assert len(abcscale.fit(table, n_boot=50, mapping={"group_cols": [*SETUP, "weight_decay"]}).groups) == 2


def test_a_divergence_flag_under_another_name_is_said_with_its_option():
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP).rename(columns={"diverged": "is_diverged"})
    # a tracker's last logged loss for a diverged run, finite: only the flag says the run diverged
    best = table.groupby("width")["final_loss"].transform("min")
    table["final_loss"] = table["final_loss"].where(~table["is_diverged"], 1.2 * best)
    assert table["is_diverged"].any()
    said = [w for w in abcscale.fit(table, n_boot=50).warnings if w.startswith("is_diverged: ")]
    assert said and "name it with diverged_col 'is_diverged'" in said[0], said  # the CLI says --diverged-col
    named = abcscale.fit(table, n_boot=50, mapping={"diverged_col": "is_diverged"})
    assert named.groups[0].n_diverged >= int(table["is_diverged"].sum())  # the flag read
    assert not any(w.startswith("is_diverged: ") for w in named.warnings)
    # a narrower flag that marks nothing is no divergence column, and a table with one fits as before (a review)
    quiet = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP).drop(columns=["diverged"])
    quiet["diverged_before_warmup"] = False
    assert not any("diverged_before_warmup" in w for w in abcscale.fit(quiet, n_boot=50).warnings)


def test_adam_betas_beside_a_swept_lr_are_refused_naming_the_lr_column():
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP).rename(columns={"beta": "lr"})
    table["beta"] = np.where(table["seed"] == 0, 0.9, 0.95)
    with pytest.raises(ValueError, match=r"beta: 2 values \(0.9, 0.95\) between 0.5 and 1, an optimizer's betas.*"
                                         r"lr looks like the learning rate: name it with lr_col"):
        abcscale.fit(table, n_boot=50)
    assert len(abcscale.fit(table, n_boot=50, mapping={"lr_col": "lr"}).groups) == 1
    # an SGD sweep's LRs of 0.5-0.875 beside a width-derived LR column are LRs (a review)
    sgd = synthetic_sweep(widths=(64, 128, 256), seeds=1, group={**SETUP, "optimizer": "sgd"})
    sgd["beta"] = np.tile([0.5, 0.625, 0.75, 0.875], len(sgd) // 4 + 1)[: len(sgd)]
    sgd["effective_lr"] = sgd["beta"] * 64 / sgd["width"]
    assert abcscale.fit(sgd, n_boot=50).groups


def test_empty_cells_of_a_users_group_column_are_said():
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2, group=SETUP)
    table["opt"] = "adam"
    table.loc[table.index[::7], "opt"] = np.nan
    fit = abcscale.fit(table, n_boot=50, mapping={"group_cols": [*SETUP, "opt"]})
    assert any(w.startswith("opt: empty in ") and "group of their own (opt=nan)" in w for w in fit.warnings), \
        fit.warnings
    whole = table.assign(opt="adam")
    assert not any(w.startswith("opt: empty") for w in abcscale.fit(
        whole, n_boot=50, mapping={"group_cols": [*SETUP, "opt"]}).warnings)


def test_an_adaptive_optimizers_lr_of_one_or_more_at_every_width_is_said():
    table = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, group=SETUP, half_range=2.0, edge_octaves=None)
    table = table[table["final_loss"].notna()].copy()  # a tracker's export of the finished runs
    table["beta"] = -np.log2(table["beta"])
    fit = abcscale.fit(table, n_boot=50, target_width=2048)
    said = [w for w in fit.warnings if "the best learning rate is" in w]
    assert said and "adam runs" in said[0] and "convert it" in said[0], said
    (group,) = fit.groups  # and its prediction is unreliable: `--strict` fails it
    assert any("best learning rate is 1 or more" in why for why in group.prediction.unreliable), group.prediction
    ada = table.assign(optimizer="adafactor")  # a relative step's base LR of about 1 is Adafactor's own
    assert not any("the best learning rate is" in w for w in abcscale.fit(ada, n_boot=50).warnings)
    plain = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, group=SETUP, half_range=2.0, edge_octaves=None)
    plain_fit = abcscale.fit(plain, n_boot=50, target_width=2048)
    assert not any("the best learning rate is" in w for w in plain_fit.warnings)
    assert not any("best learning rate" in why for why in plain_fit.groups[0].prediction.unreliable)
