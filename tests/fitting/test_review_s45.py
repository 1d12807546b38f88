"""Session 45: a data scientist's messy tables (a user review), each with a known truth.

The truth: log2 LR* = log2 3e-3 - log2(width / 128), a quadratic basin in log2 LR, runs past 2.2 octaves above the
optimum diverged (NaN), widths 128-1024, a half-octave grid, 2 seeds. LR* at 4096 is 9.375e-5.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
TRUTH_4096 = 3e-3 / 32


def table(exponent: float = -1.0, c: float = 3e-3, seeds=(0, 1), widths=(128, 256, 512, 1024),
          noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        best = math.log2(c * (w / 128) ** exponent)
        for s in seeds:
            for g in np.arange(-16, -4.5, 0.5):
                d = g - best
                loss = math.nan if d > 2.2 else 2 + 3 * w ** -0.3 + 0.03 * d * d + rng.normal(0, noise)
                rows.append({"width": w, "lr": 2.0 ** g, "seed": s, "loss": loss})
    return pd.DataFrame(rows)


def fit(path, *args: str):
    res = runner.invoke(app, ["fit", str(path), "--lr-col", "lr", "--loss-col", "loss", "--n-boot", "100", "-q",
                              "-p", "mup", "-o", "adam", "--lr-mode", "global", *args])
    return res


def test_two_optimizers_fitted_as_one_fail_strict_whatever_the_seed_ids(tmp_path):
    """adamw + lion runs in one table, the optimizer column unmapped: `--strict` passed an LR 1.4 octaves off unless
    both optimizers used the same seed ids."""
    adamw = table()
    lion = table(exponent=-0.5, c=1e-2, seed=1)
    for layout in ("random", "apart", "none"):
        both = pd.concat([adamw.assign(**{"config.optimizer": "adamw"}), lion.assign(**{"config.optimizer": "lion"})],
                         ignore_index=True)
        if layout == "random":
            both["seed"] = np.random.default_rng(2).permutation(len(both)) + 1000
        elif layout == "apart":
            both.loc[len(adamw):, "seed"] += 2
        else:
            both = both.drop(columns="seed")
        path = tmp_path / f"{layout}.csv"
        both.to_csv(path, index=False)
        res = fit(path, "--target-width", "4096", "--strict")
        assert res.exit_code == 1, (layout, res.output)
        assert "differ in config.optimizer (the table's warnings say how" in " ".join(res.stderr.split())
        # named as a group column: each fitted apart, the gate passes, adamw's prediction on the truth
        res = fit(path, "--target-width", "4096", "--strict", "--group-cols", "config.optimizer", "--json")
        assert res.exit_code == 0, (layout, res.output)
        adamw_fit = next(g for g in json.loads(res.stdout)["groups"] if g["group"]["config.optimizer"] == "adamw")
        assert abs(math.log2(adamw_fit["prediction"]["lr"] / TRUTH_4096)) < 0.25


def test_a_run_id_that_changes_with_the_seed_is_no_configuration(tmp_path):
    t = table()
    t["run"] = [f"run-{i // 23}" for i in range(len(t))]  # one id per curve (width, seed)
    path = tmp_path / "ids.csv"
    t.to_csv(path, index=False)
    res = fit(path, "--target-width", "4096", "--strict")
    assert res.exit_code == 0, res.output


def test_an_inverted_lr_column_fails_strict(tmp_path):
    """A column of -log10(LR) gave LR* 4.2 and `--strict` passed it, though a warning said to convert it."""
    t = table()
    t["lr"] = -np.log10(t["lr"])
    path = tmp_path / "neglog.csv"
    t.to_csv(path, index=False)
    res = fit(path, "--target-width", "4096", "--strict")
    assert res.exit_code == 1, res.output
    said = " ".join(res.stderr.split())
    assert "--strict: unreliable:" in said and "the learning-rate column may fall as the LR grows" in said
    clean = tmp_path / "clean.csv"
    table().to_csv(clean, index=False)
    assert fit(clean, "--target-width", "4096", "--strict").exit_code == 0


def test_one_setting_spelt_two_ways_is_one_group(tmp_path):
    """`mup`/`muP` and `adam`/`Adam` alternating by seed split the runs into two groups of one seed each, unsaid."""
    t = table()
    t["parameterization"] = np.where(t["seed"] == 0, "mup", "muP")
    t["optimizer"] = np.where(t["seed"] == 0, "Adam", "adam")
    path = tmp_path / "case.csv"
    t.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--lr-col", "lr", "--loss-col", "loss", "--n-boot", "100", "-q",
                              "--lr-mode", "global", "--target-width", "4096", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["groups"]) == 1
    assert out["groups"][0]["group"]["parameterization"] in ("mup", "muP")
    assert any("read as" in w and "one setting spelt several ways" in w for w in out["warnings"])
    assert abs(math.log2(out["groups"][0]["prediction"]["lr"] / TRUTH_4096)) < 0.25


def test_two_level_column_headers_are_flattened(tmp_path):
    """`groupby(...).agg({"loss": ["mean", "std"]})` saved to parquet was a TypeError traceback."""
    agg = table().groupby(["width", "lr"]).agg({"loss": ["mean", "std"]}).reset_index()
    path = tmp_path / "agg.parquet"
    agg.to_parquet(path)
    res = fit(path)
    assert res.exit_code == 2 and "loss_mean, loss_std look like it" in res.stderr, res.output
    res = fit(path, "--loss-col", "loss_mean", "--target-width", "4096", "--json")
    assert res.exit_code == 0, res.output
    assert abs(math.log2(json.loads(res.stdout)["groups"][0]["prediction"]["lr"] / TRUTH_4096)) < 0.3


def test_a_spreadsheets_trailing_separators_are_not_columns_or_rows(tmp_path):
    t = table()
    lines = ["width,lr,seed,loss,,"] + [f"{r.width},{r.lr},{r.seed},{'' if math.isnan(r.loss) else r.loss},,"
                                        for r in t.itertuples()] + [",,,,,", ",,,,,"]
    path = tmp_path / "sheet.csv"
    path.write_text("\n".join(lines) + "\n")
    res = fit(path, "--target-width", "4096", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["provenance"]["n_rows"] == len(t)
    # a column named twice is still refused (the second would be dropped silently)
    path.write_text("width,lr,loss,loss\n128,0.001,3.0,3.1\n")
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code == 2 and "loss: duplicated column in the header" in res.stderr


def test_summary_json_has_each_groups_prediction(tmp_path):
    path = tmp_path / "clean.csv"
    table().to_csv(path, index=False)
    res = fit(path, "--target-width", "4096", "--summary", "--json")
    assert res.exit_code == 0, res.output
    g = json.loads(res.stdout)["groups"][0]
    assert g["prediction"]["width"] == 4096 and abs(math.log2(g["prediction"]["lr"] / TRUTH_4096)) < 0.25


@pytest.mark.parametrize("flag", ["4096.0", "4.096e3"])
def test_a_whole_number_written_as_a_float_is_an_integer_option(tmp_path, flag):
    path = tmp_path / "clean.csv"
    table().to_csv(path, index=False)
    res = fit(path, "--target-width", flag, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["groups"][0]["prediction"]["width"] == 4096
    res = fit(path, "--target-width", "4096.5")
    assert res.exit_code == 2 and "--target-width" in res.stderr


def test_sizes_that_are_not_counts_say_how_to_fix_them(tmp_path):
    t = table()
    t["width"] = t["width"] / 256  # muP's width_mult
    path = tmp_path / "mult.csv"
    t.to_csv(path, index=False)
    res = fit(path)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "widths must be integers" in said and "scale the column to whole counts" in said


def test_a_history_export_is_refused_with_how_to_keep_one_row_per_run(tmp_path):
    """One row per run and logged step (wandb's history): rows at steps 1000-5000 were averaged as seeds (0.25
    octave off), and --drop-cut-short kept three steps of five."""
    t = table()
    hist = pd.concat([t.assign(_step=s, loss=t["loss"] + (5000 - s) * 1e-4) for s in (1000, 2000, 3000, 4000, 5000)],
                     ignore_index=True)
    path = tmp_path / "history.csv"
    hist.to_csv(path, index=False)
    for extra in ((), ("--drop-cut-short",)):
        res = fit(path, *extra)
        said = " ".join(res.stderr.split())
        assert res.exit_code == 2 and "_step: the table holds each run at several steps (5 values" in said, res.output
        assert "the rows where _step is 5000" in said
    # the last step's rows: the truth
    last = tmp_path / "last.csv"
    hist[hist["_step"] == 5000].to_csv(last, index=False)
    res = fit(last, "--target-width", "4096", "--json")
    assert res.exit_code == 0 and abs(math.log2(json.loads(res.stdout)["groups"][0]["prediction"]["lr"] / TRUTH_4096)
                                      ) < 0.25
    # a run cut short in a sweep of final rows is no history: the cut-short note, not this error
    short = hist[hist["_step"] == 5000].copy()
    short.iloc[3, short.columns.get_loc("_step")] = 4000
    short.to_csv(last, index=False)
    res = fit(last, "--json")
    assert res.exit_code == 0 and any("cut short" in w for w in json.loads(res.stdout)["warnings"])


def test_seeds_named_by_text_are_ids(tmp_path):
    t = table()
    t["seed"] = "seed-" + t["seed"].astype(str)
    path = tmp_path / "named.csv"
    t.to_csv(path, index=False)
    res = fit(path, "--target-width", "4096", "--json")
    assert res.exit_code == 0, res.output
    assert abs(math.log2(json.loads(res.stdout)["groups"][0]["prediction"]["lr"] / TRUTH_4096)) < 0.25
    # an empty seed among names is still an error
    t.loc[3, "seed"] = None
    t.to_csv(path, index=False)
    res = fit(path)
    assert res.exit_code == 2 and "seed" in res.stderr


def test_a_log_lr_column_says_to_convert_it(tmp_path):
    t = table()
    t["lr"] = np.log10(t["lr"])
    path = tmp_path / "log10.csv"
    t.to_csv(path, index=False)
    res = fit(path)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "if the column holds log10 or log2 of the LR, convert it" in said
    t["lr"] = 0.0  # a tracker's last LR after a decay to 0: no log
    t.to_csv(path, index=False)
    res = fit(path)
    assert res.exit_code == 2 and "log10" not in res.stderr


def test_a_csv_in_a_spreadsheets_encoding_says_save_as_utf8(tmp_path):
    path = tmp_path / "cp1252.csv"
    path.write_bytes("width,lr,seed,loss,µ\n128,0.001,0,3.0,1\n".encode("cp1252"))
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code == 2 and "is not UTF-8 text" in res.stderr and "save it as UTF-8" in res.stderr


def test_a_budget_grouped_per_width_says_so_in_each_groups_refusal(tmp_path):
    t = table()
    t["steps"] = 10 * t["width"]  # a contract column, grouped: each width a group of its own
    path = tmp_path / "steps.csv"
    t.to_csv(path, index=False)
    res = fit(path, "--target-width", "4096", "--strict")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("--strict")]
    assert res.exit_code == 1 and len(lines) == 4
    assert all("in this group (steps=" in ln and "name it a covariate (--covariates)" in ln for ln in lines)


@pytest.mark.parametrize("name, said", [("val_acc", True), ("eval/accuracy", True), ("bleu", True),
                                        ("loss", False), ("accum_loss", False), ("final_loss", False)])
def test_a_score_column_is_said_to_be_minimised(tmp_path, name, said):
    t = table().rename(columns={"loss": name})
    path = tmp_path / "scores.csv"
    t.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--lr-col", "lr", "--loss-col", name, "--n-boot", "50", "-q", "-p",
                              "mup", "-o", "adam", "--lr-mode", "global", "--json"])
    assert res.exit_code == 0, res.output
    warned = any("higher is better" in w for w in json.loads(res.stdout)["warnings"])
    assert warned == said


def _strict(tmp_path, t: pd.DataFrame, name: str):
    path = tmp_path / f"{name}.csv"
    t.to_csv(path, index=False)
    return fit(path, "--target-width", "4096", "--strict", "--json")


def test_columns_that_are_no_configuration_pass_strict(tmp_path):
    """A code review's false alarms of the few-valued rule: the node a run ran on, a replicate label that renames
    the seed, a trial index without a seed column."""
    rng = np.random.default_rng(5)
    t = table()
    res = _strict(tmp_path, t.assign(node=rng.choice(["gpu-a", "gpu-b", "gpu-c"], len(t))), "node")
    assert res.exit_code == 0, res.output
    res = _strict(tmp_path, t.assign(replicate=t["seed"].map({0: "a", 1: "b"})), "replicate")
    assert res.exit_code == 0, res.output
    res = _strict(tmp_path, t.assign(label=t["seed"].map({0: "first", 1: "second"})), "label")
    assert res.exit_code == 0, res.output  # a one-to-one renaming of the seed, whatever its name
    trial = t.drop(columns="seed").assign(trial=t["seed"])
    assert _strict(tmp_path, trial, "trial").exit_code == 0


def test_step_counts_that_are_no_history_are_not_refused(tmp_path):
    """A code review's false alarms of the history check: runs on a wall-clock budget (each its own step count,
    seeds pooled), two batch sizes each with its own step budget (a mixed configuration, said as such)."""
    rng = np.random.default_rng(6)
    t = table(seeds=(0, 1, 2))
    timed = t.drop(columns="seed").assign(_step=rng.integers(4900, 5100, len(t)))
    path = tmp_path / "timed.csv"
    timed.to_csv(path, index=False)
    assert fit(path).exit_code == 0
    two = pd.concat([table().assign(batch_size=32, step=10000), table(c=4e-3).assign(batch_size=64, step=5000)],
                    ignore_index=True)
    res = _strict(tmp_path, two, "two")
    assert res.exit_code == 1 and "differ in batch_size" in " ".join(res.stderr.split()), res.output


def test_rows_with_a_trailing_separator_keep_their_columns(tmp_path):
    t = table()
    lines = ["width,lr,seed,loss"] + [f"{r.width},{r.lr},{r.seed},{'' if math.isnan(r.loss) else r.loss},"
                                      for r in t.itertuples()]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    res = fit(path, "--target-width", "4096", "--json")
    assert res.exit_code == 0, res.output
    assert abs(math.log2(json.loads(res.stdout)["groups"][0]["prediction"]["lr"] / TRUTH_4096)) < 0.25


def test_rows_with_a_value_past_the_header_are_an_error(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("width,lr,seed,loss\n128,0.001,0,3.0,9\n256,0.001,0,3.0,9\n")
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code == 2 and "one field more than the header" in res.stderr, res.output


def test_a_typo_in_a_numeric_seed_column_is_still_an_error(tmp_path):
    t = table().astype({"seed": object})
    t.loc[5, "seed"] = "1O"
    path = tmp_path / "typo.csv"
    t.to_csv(path, index=False)
    res = fit(path)
    assert res.exit_code == 2 and "seed" in res.stderr and "row(s) 5" in res.stderr, res.output


def test_a_number_whole_only_as_a_float_is_not_an_integer_option(tmp_path):
    path = tmp_path / "clean.csv"
    table().to_csv(path, index=False)
    res = fit(path, "--target-width", "4096.00000000000001")
    assert res.exit_code == 2 and "--target-width" in res.stderr


def test_a_thousandfold_extrapolation_fails_strict(tmp_path):
    path = tmp_path / "clean.csv"
    table().to_csv(path, index=False)
    res = fit(path, "--target-width", "100000000", "--strict")  # 97,656x the largest width: a zero too many?
    said = " ".join(res.stderr.split())
    assert res.exit_code == 1 and "beyond 1024x" in said and "a zero too many" in said, res.output
    assert fit(path, "--target-width", "524288", "--strict").exit_code == 0  # 512x: a warning only
