"""Session 57: a review of `abcscale fit` on tables a team brings. --strict passed where --covariates gave no joint
law (no prediction at all); --expect-exponent judged the per-curve groups, which have no exponent, not the joint
law; --at took the last of a repeated name; a column that differed in 2 of 72 runs "changed only with the seed";
a header name with a stray space was advised unquoted (the advice failed again); widths read as parameter counts
said nothing; an empty LR cell beside a word was said only after the word was fixed; an explicit --seed-col seed
on a table without it was ignored; `-` was no file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from tests.fitting.covariate_sweeps import TRUTH, covariate_sweep

runner = CliRunner()


def _fit(*args: str):
    return runner.invoke(app, ["fit", *args, "--n-boot", "50", "-q"])


@pytest.fixture(scope="module")
def collinear(tmp_path_factory):
    """Tokens a fixed multiple of the size (D = 20 N, Chinchilla-style): the joint law cannot tell them apart."""
    df = covariate_sweep(tokens=(1e8,), batches=(32,), seeds=1)
    path = tmp_path_factory.mktemp("t") / "collinear.csv"
    df.assign(D=df["N"] * 20e6).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def axes(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "axes.csv"
    covariate_sweep(seeds=1).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def widths(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "widths.csv"
    synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, seed=0).to_csv(path, index=False)
    return path


def test_strict_refuses_a_covariate_fit_without_a_joint_law(collinear):
    res = _fit(str(collinear), "--size-col", "N", "--covariates", "D", "--target-size", "2048", "--at", "D=1e10",
               "--strict")
    assert res.exit_code == 1, res.output
    assert "--strict: unreliable: (all rows): no joint law, so no prediction: " in res.stderr
    assert "collinear" in res.stderr
    js = _fit(str(collinear), "--size-col", "N", "--covariates", "D", "--target-size", "2048", "--strict",
              "--summary", "--json")
    assert js.exit_code == 1 and json.loads(js.stdout)["gates"]["--strict"]["passed"] is False


def test_strict_still_passes_a_covariate_fit_with_its_law(axes):
    res = _fit(str(axes), "--size-col", "N", "--covariates", "D,batch_size", "--target-size", "2048", "--strict")
    assert res.exit_code == 0, res.output


def test_expect_exponent_judges_the_joint_law(axes):
    ok = _fit(str(axes), "--size-col", "N", "--covariates", "D,batch_size", *(
        x for k, v in TRUTH.items() for x in ("--expect-exponent", f"{'size' if k == 'N' else k}={v}")))
    assert ok.exit_code == 0, ok.output
    bad = _fit(str(axes), "--size-col", "N", "--covariates", "D,batch_size", "--expect-exponent", "N=-0.5",
               "--expect-exponent", "D=-0.3")
    assert bad.exit_code == 1, bad.output
    lines = [x for x in bad.stderr.splitlines() if x.startswith("--expect-exponent")]
    assert len(lines) == 1 and "inconsistent with N=-0.5" in lines[0] and "joint law's exponent of N -0." in lines[0]
    unknown = _fit(str(axes), "--size-col", "N", "--covariates", "D", "--expect-exponent", "tokens=-0.3")
    assert unknown.exit_code == 2
    assert "'tokens' is no fitted exponent; this fit has 'size' (or 'N') and the covariates' 'D'" in unknown.output


def test_expect_exponent_without_a_joint_law_is_not_a_pass(collinear):
    res = _fit(str(collinear), "--size-col", "N", "--covariates", "D", "--expect-exponent", "size=-0.8")
    assert res.exit_code == 1, res.output
    assert "--expect-exponent: not checked: size=-0.8: no joint law for all rows" in res.stderr


def test_at_names_each_covariate_once(axes):
    for at in (["--at", "D=1e10,D=2e10"], ["--at", "D=1e10", "--at", "D=2e10"]):
        res = _fit(str(axes), "--size-col", "N", "--covariates", "D,batch_size", "--target-size", "2048", *at)
        assert res.exit_code == 2 and "--at: D: given twice; each covariate once" in res.output
    # repeatable, a pair each: both are used (the last one alone was, a code review)
    both = _fit(str(axes), "--size-col", "N", "--covariates", "D,batch_size", "--target-size", "2048",
                "--at", "D=1e10", "--at", "batch_size=128")
    assert both.exit_code == 0 and "prediction at N=2048, D=1e+10, batch_size=128" in both.stdout, both.output


def test_a_column_that_differs_in_a_few_runs_is_not_said_to_move_with_the_seed(widths, tmp_path):
    import pandas as pd

    df = pd.read_csv(widths).assign(precision="bf16")
    df.loc[[3, 40], "precision"] = "fp32"
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = _fit(str(path), "--json")
    said = [w for w in json.loads(res.stdout)["warnings"] if "precision" in w]
    assert len(said) == 1 and "averaged as if they were seeds" in said[0], said
    # a column that does move with the seed along every curve keeps its own warning
    df["precision"] = np.where(df["seed"] == 0, "bf16", "fp32")
    df.to_csv(path, index=False)
    said = [w for w in json.loads(_fit(str(path), "--json").stdout)["warnings"] if "precision" in w]
    assert len(said) == 1 and "changes only together with the seed column seed" in said[0], said


def test_a_header_name_with_a_stray_space_is_advised_quoted(widths, tmp_path):
    text = widths.read_text().splitlines()
    header = text[0].replace("width", " width").replace("beta", "beta ")
    path = tmp_path / "h.csv"
    path.write_text("\n".join([header, *text[1:]]) + "\n")
    res = _fit(str(path))
    assert res.exit_code == 2
    assert "' width' looks like it: name it with --size-col ' width'" in res.output
    assert "'beta ' looks like it: name it with --lr-col 'beta '" in res.output
    assert _fit(str(path), "--size-col", " width", "--lr-col", "beta ").exit_code == 0


def test_widths_read_as_parameter_counts_are_said(widths):
    res = _fit(str(widths), "--size-kind", "params", "--json")
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if "looks like widths" in w]
    assert len(said) == 1 and "--size-kind" in said[0]
    plain = _fit(str(widths), "--json")
    assert not any("looks like" in w for w in json.loads(plain.stdout)["warnings"])


def test_an_empty_lr_is_said_beside_a_word(widths, tmp_path):
    import pandas as pd

    df = pd.read_csv(widths).astype({"beta": object})
    df.loc[5, "beta"], df.loc[6, "beta"] = "abc", None
    path = tmp_path / "lr.csv"
    df.to_csv(path, index=False)
    res = _fit(str(path))
    assert res.exit_code == 2
    assert "beta: not a number in row(s) 5" in res.output and "not in row(s) 6 (empty)" in res.output


def test_a_seed_column_named_explicitly_must_be_there(widths, tmp_path):
    import pandas as pd

    path = tmp_path / "noseed.csv"
    pd.read_csv(widths).drop(columns=["seed"]).to_csv(path, index=False)
    res = _fit(str(path), "--seed-col", "seed")
    assert res.exit_code == 2 and "seed: missing column (the --seed-col column)" in res.output
    assert _fit(str(path)).exit_code == 0  # the contract's seed may be absent when not named


def test_a_dash_reads_standard_input(widths):
    piped = runner.invoke(app, ["fit", "-", "--n-boot", "50", "-q", "--json"], input=widths.read_text())
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["groups"] == json.loads(_fit(str(widths), "--json").stdout)["groups"]
    empty = runner.invoke(app, ["fit", "-", "-q"], input="")
    assert empty.exit_code == 2 and "table: standard input is empty" in empty.output


def test_a_fit_read_back_plots_a_table_without_seeds(widths, tmp_path):
    """`--seed-col` named explicitly must be in the table; a fit read back from its JSON holds every mapping field,
    seed_col too, and its plots must still read a table without seeds (a code review found them refused)."""
    import pandas as pd

    from abcscale.usecases.fits import load_fit, plot_fit

    path = tmp_path / "noseed.csv"
    pd.read_csv(widths).query("seed == 0").drop(columns=["seed"]).to_csv(path, index=False)
    assert _fit(str(path), "--out", str(tmp_path / "f")).exit_code == 0
    drawn = plot_fit(load_fit(tmp_path / "f" / "fit.json"), pd.read_csv(path), tmp_path / "plots")
    assert set(drawn) == {"loss_vs_lr", "lr_vs_width", "loss_vs_width"}


def test_a_dash_on_a_terminal_is_refused_not_waited_on():
    import os
    import pty
    import subprocess
    import sys

    main, sub = pty.openpty()
    try:
        res = subprocess.run([sys.executable, "-m", "abcscale", "fit", "-"], stdin=sub, capture_output=True,
                             text=True, timeout=120)
    finally:
        os.close(main)
        os.close(sub)
    assert res.returncode == 2 and "standard input, which is a terminal here" in " ".join(res.stderr.split())


def test_an_explicit_seed_column_missing_lists_the_other_problems_too(widths, tmp_path):
    import pandas as pd

    path = tmp_path / "noseed.csv"
    pd.read_csv(widths).drop(columns=["seed"]).to_csv(path, index=False)
    res = _fit(str(path), "--seed-col", "rep", "--lr-col", "nope")
    assert res.exit_code == 2
    said = _said_all(res)
    assert said.count("rep: missing column (the --seed-col column)") == 1 and "nope: missing column" in said


def _said_all(res) -> str:
    return " ".join(res.output.split())
