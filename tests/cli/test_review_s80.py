"""Session 80: a float group value (a token budget) named as written, the same everywhere a group is named."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.cli.fit import _group_label, _row_label
from abcscale.fitting.plots import _label as plot_label
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import group_label, value_text
from abcscale.service.pages import group_label as page_label
from abcscale.usecases.recommend import group_text

runner = CliRunner()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_reads_back_as_itself_and_no_longer_than_python_writes_it(x):
    text = value_text(x)
    assert float(text) == x and math.copysign(1, float(text)) == math.copysign(1, x)
    assert len(text) <= len(repr(x))


@pytest.mark.parametrize(("value", "text"), [(1e8, "1e+08"), (2.5e8, "2.5e+08"), (256.0, "256"), (3e-4, "0.0003"),
                                             (123456789.0, "123456789"), (123457000.0, "123457000"), (64, "64"),
                                             ("mup", "mup"), (True, "True")])
def test_group_values_as_written(value, text):
    assert value_text(value) == text


def test_every_label_names_a_token_budget_alike():
    group = {"optimizer": "adam", "tokens": 1e8}
    g = SimpleNamespace(group=group)
    assert group_label(group) == _group_label(group) == page_label(g) == "optimizer=adam, tokens=1e+08"
    assert _row_label(g, ["optimizer", "tokens"]) == "adam 1e+08"
    assert plot_label(g) == "adam / 1e+08"
    # what `--group` takes back, as the headings write it (str() wrote 123456789.0)
    assert group_text({"tokens": 123456789.0}) == "tokens=123456789"
    assert group_text({"tokens": 1e8, "optimizer": "adam"}) == "tokens=1e+08,optimizer=adam"


def test_fit_names_the_groups_as_the_table_wrote_them(tmp_path):
    table = pd.concat([synthetic_sweep((64, 128, 256), seeds=1, group={"tokens": t}, seed=i)
                       for i, t in enumerate((1e8, 2.5e8))])
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--group-cols", "tokens", "--n-boot", "30", "-q"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.stdout.split())
    assert "1e+08" in out and "2.5e+08" in out, out
    assert "100000000.0" not in out and "250000000.0" not in out


def _diverging(params, seed):
    return float("nan") if params["beta"] > 0.01 else (math.log(params["beta"]) + 7) ** 2


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_diverged_trial_is_the_tune_line_alone_without_optunas_warnings(capfd, parallel):
    from abcscale.cli.tune import _Progress
    from abcscale.schemas.tune import TuneSettings
    from abcscale.usecases.tune import search

    settings = TuneSettings(trials=8, reeval_seeds=1, top=1)
    progress = _Progress(settings)
    many = None if parallel == 1 else (lambda jobs: [_diverging(p, s) for p, s in jobs])
    with warnings.catch_warnings(record=True) as caught:  # none (Optuna's UserWarning for a told NaN)
        warnings.simplefilter("always")
        result = search({"beta": (1e-4, 1.0)}, _diverging, settings, on_trial=progress, evaluate_many=many,
                        parallel=parallel)
    assert [w for w in caught if "nan" in str(w.message)] == []
    failed = [t for t in result.history if t.state == "FAIL"]
    assert failed and math.isfinite(result.best.mean)  # the search went on past the diverged trials
    err = capfd.readouterr().err
    assert "not acceptable" not in err and "failed with value" not in err, err
    assert err.count("fail     loss nan") == len(failed), err


@pytest.mark.parametrize(("text", "widths"), [("1.6e1,32", [16, 32]), ("16.0, 3.2e1", [16, 32]), ("64", [64])])
def test_widths_take_a_whole_number_in_a_floats_form_as_width_does(text, widths):
    from abcscale.runner.spec import SweepSpec

    assert SweepSpec(widths=text).widths == widths


@pytest.mark.parametrize(("text", "said"), [
    ("16.5,32", "--widths[0]: expected an integer width, got 16.5"),
    ("16,1e99999999", "--widths[1]: widths must be at most 1099511627776 (2**40), got 1e99999999"),
    ("-1e99999999", "--widths[0]: widths must be positive, got -1e99999999"),
    ("1e-99999999", "--widths[0]: expected an integer width, got 1e-99999999"),
    ("abc", "--widths[0]: Input should be a valid integer")])
def test_widths_that_are_no_width_are_one_line(text, said):
    # a width-less sweep is refused before any program compiles (nothing trains here)
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", "--widths", text, "--steps", "2", "-q"])
    assert res.exit_code == 2 and said in res.output and "Traceback" not in res.output, res.output


@pytest.mark.parametrize("args", [["recommend", "-p", "mup", "-o", "adam", "--width", "1e99999999", "--base-width",
                                   "16", "--base-lr", "1e-3"],
                                  ["recommend", "-p", "mup", "-o", "adam", "--width", "64", "--base-width",
                                   "-1e99999999", "--base-lr", "1e-3"],
                                  ["sweep", "-p", "mup", "-o", "adam", "--steps", "1e99999999"]])
def test_a_whole_number_past_every_bound_is_refused_not_an_overflow(args, tmp_path):
    # decimal.Overflow from to_integral_value() was a traceback (session 80)
    res = runner.invoke(app, [*args, *(["--out", str(tmp_path / "o")] if args[0] == "sweep" else [])])
    assert res.exit_code == 2 and "is beyond any whole number this option takes" in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


# From session 80's review of hostile numbers (a helper's fuzz of every command and the REST API):


@pytest.mark.parametrize(("grid", "said"), [
    ("-8:-7:4e-324", "is more learning rates than a float counts"),  # math.floor(inf): an OverflowError traceback
    ("-8:-7:1e-300", "is about 1e+300 learning rates"),
    ("-8:-7:0.001", "is 1001 learning rates"),
    ("-1e308:1e308:1", "log2 learning rates must be finite numbers within +-1000, got -1e+308")])
def test_a_grid_of_too_many_steps_is_one_line(grid, said, tmp_path):
    res = runner.invoke(app, ["sweep", "-p", "mup", "-o", "adam", "--widths", "32", "--log2-lr", grid, "--steps", "2",
                              "--data", "synthetic", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "error: --log2-lr: " in res.output and said in res.output, res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("fraction", "side"), [("4e-324", "held-out split 0,"), ("0.99999999", "training split 1,")])
def test_an_eval_fraction_that_leaves_a_split_empty_is_said_as_that_flag(fraction, side, tmp_path):
    # it was "--data: synthetic has 100000 tokens, too few ...": the data would do, the split does not
    res = runner.invoke(app, ["sweep", "-p", "mup", "-o", "adam", "--widths", "32", "--log2-lr", "-8", "--steps", "2",
                              "--data", "synthetic", "--eval-fraction", fraction, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    line = " ".join(res.output.split())
    assert line.startswith(f"error: --eval-fraction: synthetic has 100000 tokens; holding out {float(fraction)!r} "
                           f"of them leaves the {side}"), line
    assert "give an eval fraction from 0.00066 to 0.999, or more data" in line


@pytest.mark.parametrize("command", [["sweep", "-p", "mup", "-o", "adam", "--widths", "32", "--log2-lr", "-8"],
                                     ["coord-check", "-p", "mup", "-o", "adam", "--widths", "16,32"]])
def test_a_small_data_file_at_the_default_fraction_is_said_as_the_data(command, tmp_path):
    # the default split, not a flag the user gave (coord-check has none): the data is named, with the way out
    data = tmp_path / "small.txt"
    data.write_text("x" * 500)
    res = runner.invoke(app, [*command, "--steps", "2", "--data", str(data),
                              *(["--out", str(tmp_path / "o")] if command[0] == "sweep" else [])])
    line = " ".join(res.output.split())
    assert res.exit_code == 2 and line.startswith(f"error: --data: {data} has 500 tokens; holding out 0.1 "), line
    assert "give an eval fraction from 0.132 to 0.869, or more data" in line  # 500 tokens: 0.87 keeps 65


@pytest.mark.parametrize("n", [132, 133, 200, 500, 99_999, 100_000, 132_000, 10**6, 10**9])
def test_the_fractions_offered_each_leave_both_splits_a_sequence(n):
    from abcscale.runner.data import _fractions

    low, high = _fractions(n, 66)
    for f in (low, high):
        assert int(n * f) >= 66 and n - int(n * f) >= 66 and 0 < f < 1, (n, f)
    assert len(f"{low:g}".lstrip("0.").replace("e-", "")) <= 6  # three digits, as said


def test_a_spec_file_number_of_5000_digits_is_said_in_the_files_terms(tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text("seeds = " + "9" * 5000 + "\n")
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "a number of 5000 digits, more than any setting has" in res.output, res.output
    assert "set_int_max_str_digits" not in res.output


@pytest.mark.parametrize(("widths", "said"), [("[1e300]", "widths must be at most 1099511627776 (2**40), got 1e+300"),
                                              ("[16.5]", "expected an integer width, got 16.5")])
def test_a_spec_files_float_widths_are_said_as_the_flags_are(widths, said, tmp_path):
    spec = tmp_path / "w.toml"
    spec.write_text(f"widths = {widths}\n")
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and said in res.output, res.output


def test_a_spec_files_float_form_whole_widths_are_read(tmp_path):
    from abcscale.runner.spec import SweepSpec

    spec = tmp_path / "w.toml"
    spec.write_text("widths = [1.6e1, 32.0]\n")
    assert SweepSpec.from_toml(spec).widths == [16, 32]
