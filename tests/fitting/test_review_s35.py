"""Session 35's review of fitting a team's own table, each finding on synthetic data with a known truth:

- two model families under one seed id, fitted as one group, gave a confident band for neither that passed
  ``--strict``: the prediction is now unreliable, naming the column;
- the safe-side LR, capped at a loosely bracketed stability edge, fell an octave below LR*'s own 95% band;
- the blow-up rule marked finite, still-training runs diverged without a word;
- a numeric group value was matched as text (``lr_scale=1`` missed the stored 1.0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table, prepare
from abcscale.fitting.predict import UNRELIABLE
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.fits import respeak
from abcscale.usecases.recommend import select_group

MUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
WIDTHS = (64, 128, 256, 512, 1024)


def _sweep(exponent: float = -1.0, *, curvature: float = 0.02, floor: float = 3.0, noise: float = 0.002,
           edge: float = 2.5, seeds: int = 2, seed: int = 0, grid: tuple[float, ...] | None = None) -> pd.DataFrame:
    """A foreign table on a fixed half-octave grid (every width the same LRs): loss = floor (1 + curvature d^2)
    with d octaves off LR* = 0.01 (w / 64)^exponent, relative noise, NaN past ``edge`` octaves above LR*."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in WIDTHS:
        star = np.log2(0.01) + exponent * np.log2(w / 64)
        for x in np.arange(-14.0, -2.0, 0.5) if grid is None else np.log2(grid):
            for s in range(seeds):
                d = x - star
                loss = floor * (1 + curvature * d * d) * (1 + noise * rng.standard_normal())
                rows.append({"width": w, "beta": 2.0**x, "seed": s, "final_loss": np.nan if d > edge else loss,
                             **MUP})
    return pd.DataFrame(rows)


def _families(seed_col: bool = True) -> pd.DataFrame:
    """Two families, true exponents -1 and -0.5, under the same seed ids (a wandb export of two projects)."""
    df = pd.concat([_sweep(e, seed=i).assign(family=f, state="finished")
                    for i, (f, e) in enumerate((("gpt-a", -1.0), ("gpt-b", -0.5)))], ignore_index=True)
    return df if seed_col else df.drop(columns="seed")


def test_two_configurations_under_one_group_make_the_prediction_unreliable():
    df = _families()
    fit = fit_table(df, n_boot=50, target_width=4096)
    (g,) = fit.groups
    assert g.mixed_columns == ["family"]
    assert any(w.startswith(UNRELIABLE) and "differ in family" in w for w in g.prediction.warnings)
    assert any("differ in family" in r for r in g.prediction.unreliable)
    # without a seed column too: a column of a few values recurring across widths that differs among a cell's
    # runs is a configuration (session 45; a user review's adamw + lion table without seeds passed --strict)
    bare = fit_table(_families(seed_col=False), n_boot=20, target_width=4096)
    assert bare.groups[0].mixed_columns == ["family"] and any("differ in family" in w for w in bare.warnings)
    # named as a group column, each family is its own fit, near its truth, and reliable on this count
    fit = fit_table(df, ColumnMapping(group_cols=[*MUP, "family"]), n_boot=50, target_width=4096)
    for g in fit.groups:
        assert g.mixed_columns == []
        truth = -1.0 if g.group["family"] == "gpt-a" else -0.5
        assert g.exponent.estimate == pytest.approx(truth, abs=0.15)


def test_replicate_and_provenance_columns_are_not_configurations():
    """A code review's cases: replicates under a second seed column beside a constant `seed`, a `host` that
    differs between a cell's replicates, and one seed rerun on another host in a few cells."""
    df = _sweep(seeds=3)
    fit = fit_table(df.assign(data_seed=df["seed"], seed=0), n_boot=20, target_width=4096)
    assert fit.groups[0].mixed_columns == []
    hosts = df.assign(host=np.where(df["seed"] == 1, "b", "a"))
    assert fit_table(hosts, n_boot=20, target_width=4096).groups[0].mixed_columns == []
    rerun = df[df["seed"] == 0].iloc[:5].assign(host="c")  # five cells' seed 0 again, elsewhere
    with_rerun = pd.concat([hosts, rerun], ignore_index=True)
    assert fit_table(with_rerun, n_boot=20, target_width=4096).groups[0].mixed_columns == []


def test_a_state_column_that_follows_divergence_is_not_a_configuration():
    df = _sweep().drop(columns="seed")
    df["state"] = np.where(np.isfinite(df["final_loss"]), "finished", "crashed")
    fit = fit_table(df, n_boot=50, target_width=4096)
    assert fit.groups[0].mixed_columns == []
    assert not any("differ in" in r for r in fit.groups[0].prediction.unreliable)


def _steep() -> pd.DataFrame:
    """A low-loss, steep basin (a fine-tune): finite runs two octaves up sit above 1.5x the best loss while
    still training; runs diverge 3.5 octaves above LR*."""
    coarse = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # a 1-3 grid: the edge bracketed loosely
    return _sweep(curvature=0.2, floor=0.15, noise=0.002, edge=3.5, seeds=3, seed=5, grid=coarse)


def test_the_blowup_rule_says_which_finite_runs_it_made_diverged():
    df = _steep()
    prep = prepare(df)
    note = [w for w in prep.warnings if "count as diverged" in w]
    blown = prep.n_diverged - int(df["final_loss"].isna().sum())
    assert blown > 0 and len(note) == 1 and note[0].startswith(f"{blown} finite run(s) above 1.5x")
    assert "`blowup`" in note[0]
    assert not [w for w in prepare(df, blowup=None).warnings if "count as diverged" in w]
    assert not [w for w in prepare(_sweep()).warnings if "count as diverged" in w]


@pytest.mark.parametrize("blowup", [1.5, None])
def test_the_safe_side_lr_stays_within_the_optimums_band(blowup):
    fit = fit_table(_steep(), n_boot=100, target_width=4096, blowup=blowup)
    p = fit.groups[0].prediction
    truth = 0.01 * (4096 / 64) ** -1.0
    assert p.ci95[0] <= truth <= p.ci95[1]
    assert p.safe_lr >= p.ci95[0] * (1 - 1e-9) and p.safe_lr <= p.lr
    # the edge, bracketed by the 1-3 grid alone (without the blow-up rule), leans on theory's exponent as the
    # optimum does (session 60): it is predicted within an octave of the truth and does not cap the safe side,
    # which stays the expected penalty's minimum (it stopped at the band's low end before, at a larger penalty)
    assert abs(np.log2(p.stability_edge_lr) - np.log2(truth * 2**3.5)) < (1.0 if blowup is None else 1.5)
    assert not any("too uncertain" in w or "capped" in w for w in p.warnings)
    assert p.safe_expected_loss_penalty is not None and p.safe_expected_loss_penalty <= p.expected_loss_penalty


def test_numeric_group_values_match_however_they_are_written():
    df = pd.concat([_sweep(seeds=1).assign(lr_scale=s, batch_size=b) for s, b in ((1.0, 256), (0.5, 512))],
                   ignore_index=True)
    fit = fit_table(df, ColumnMapping(group_cols=[*MUP, "lr_scale", "batch_size"]), n_boot=20)
    for selector in ({"lr_scale": "1"}, {"lr_scale": 1}, {"lr_scale": "1e0", "batch_size": "256.0"}):
        g, _ = select_group(fit, selector)
        assert g.group["lr_scale"] == 1.0
    with pytest.raises(ValueError, match="no group matches"):
        select_group(fit, {"lr_scale": "2"})


def test_rest_words_are_said_back_as_flags():
    flags = {"covariates": "--covariates", "blowup": "--blowup", "group_cols": "--group-cols"}
    said = respeak("as group columns (group_cols) or as covariates (covariates); raise it (blowup)", flags)
    assert said == "as group columns (--group-cols) or as covariates (--covariates); raise it (--blowup)"


def test_a_foreign_tables_measurements_are_not_called_settings():
    """A second loss (inf where a run diverged) and a `state` that says crashed exactly where a run diverged
    were named beside `family` as settings to group by, burying the one warning that mattered."""
    df = _families()
    rng = np.random.default_rng(1)
    df["train_loss"] = np.where(np.isfinite(df["final_loss"]), df["final_loss"] * (1 + 0.01 * rng.random(len(df))),
                                np.inf)
    df["state"] = np.where(np.isfinite(df["final_loss"]), "finished", "crashed")
    notes = prepare(df).warnings
    said = " ".join(notes)
    assert "differ in family," in said and "train_loss" not in said and "state" not in said
    fit = fit_table(df, n_boot=20, target_width=4096)
    assert fit.groups[0].mixed_columns == ["family"]
    # the same columns as real settings still are: a batch size that differs at one LR is named
    two = pd.concat([_sweep().assign(batch_size=b) for b in (256, 512)], ignore_index=True)
    assert any("differ in batch_size" in w for w in prepare(two).warnings)


def test_the_fit_table_says_why_a_widths_interval_is_wide(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    path = tmp_path / "t.csv"
    _sweep(noise=0.02, seeds=3).to_csv(path, index=False)  # noise that blurs the optimum at some widths
    fit = fit_table(_sweep(noise=0.02, seeds=3), n_boot=20)
    messages = [f"width {o.width}: {o.message}" for o in fit.groups[0].per_width if o.message]
    assert messages
    out = CliRunner().invoke(app, ["fit", str(path), "--n-boot", "20"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert all(" ".join(m.split()) in text for m in messages)


def test_missing_columns_list_the_tables_columns_once():
    from abcscale.fitting import TableError

    with pytest.raises(TableError) as exc:
        prepare(pd.DataFrame({"d_model": [64], "lr": [0.01]}))
    text = str(exc.value)
    assert text.count("columns are: d_model, lr") == 1 and text.endswith("columns are: d_model, lr")
    assert "width: missing column" in text and "final_loss: missing column" in text


@pytest.mark.parametrize("steepness", [50, 200, 400])
def test_a_steep_right_side_does_not_send_the_safe_side_to_an_uncertain_edge(steepness):
    """A code review's case: a basin k times steeper above LR* puts the safe side at or under the band's low end
    by itself; an uncertain edge (its bound under the band) must not then cap it an octave lower."""
    from abcscale.fitting.predict import predict_group

    g = fit_table(_steep(), n_boot=100, blowup=None).groups[0]
    edge = g.edge_law.model_copy(update={"log2_constant": g.edge_law.log2_constant - 1.0})
    basin = g.basin.model_copy(update={"source": "asymmetric", "k_right": g.basin.k_left * steepness})
    p = predict_group(g.model_copy(update={"edge_law": edge, "basin": basin}), 4096)
    unbounded = predict_group(g.model_copy(update={"edge_law": None, "basin": basin}), 4096)
    assert p.safe_lr >= min(unbounded.safe_lr, p.ci95[0]) * (1 - 1e-9)
    assert p.safe_lr >= p.ci95[0] * 0.9  # never the edge's bound, an octave under the band


def test_distinct_group_labels_stay_selectable():
    """A code review's collisions: text labels "1" and "1.0", integers past 2**53, `1_0` against 10."""
    big = 2**53
    df = pd.concat([_sweep(seeds=1).assign(ver=v, job=j) for v, j in (("1", big), ("1.0", big + 1))],
                   ignore_index=True)
    fit = fit_table(df, ColumnMapping(group_cols=[*MUP, "ver", "job"]), n_boot=20)
    assert select_group(fit, {"ver": "1"})[0].group["ver"] == "1"
    assert select_group(fit, {"ver": "1.0"})[0].group["ver"] == "1.0"
    assert select_group(fit, {"job": big + 1})[0].group["job"] == big + 1
    assert select_group(fit, {"job": str(big)})[0].group["job"] == big
    tens = pd.concat([_sweep(seeds=1).assign(n=n) for n in (10, 100)], ignore_index=True)
    fit = fit_table(tens, ColumnMapping(group_cols=[*MUP, "n"]), n_boot=20)
    assert select_group(fit, {"n": "1e1"})[0].group["n"] == 10
    with pytest.raises(ValueError, match="no group matches"):
        select_group(fit, {"n": "1_0"})


def test_a_run_without_a_loss_below_the_optimum_is_said():
    """An unfinished run exported with an empty loss counts as diverged: below its curve's best LR, where runs do
    not diverge, that lowered nothing silently but hid a missing run; it is said now. NaN above the best (the
    usual divergence) is not."""
    df = _sweep()
    said = [w for w in prepare(df).warnings if "without a loss" in w]
    assert not said  # the sweep's NaN are its divergences, above each optimum
    hole = df.copy()
    low = hole.index[(hole["width"] == 128) & (hole["beta"] == hole["beta"].min())]
    hole.loc[low, "final_loss"] = np.nan
    said = [w for w in prepare(hole).warnings if "without a loss" in w]
    assert len(said) == 1 and said[0].startswith(f"{len(low)} run(s) without a loss")


def test_a_declared_divergence_below_the_optimum_is_not_called_missing():
    df = _sweep()
    low = df.index[(df["width"] == 128) & (df["beta"] == df["beta"].min())]
    df.loc[low, "final_loss"] = np.nan
    df["diverged"] = False
    df.loc[low, "diverged"] = True  # the runner's own table flags its diverged runs
    assert not [w for w in prepare(df).warnings if "without a loss" in w]
