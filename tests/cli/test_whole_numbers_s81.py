"""One reading of a whole number written as text (``schemas.numbers``) for ``--width``, every integer option and a
spec's widths, which had three copies of it (session 81), and how the refusals echo what was typed."""

from __future__ import annotations

import decimal

from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.schemas.numbers import as_said, as_typed, read_whole

LIMIT = 2**63 - 1


@given(st.decimals(allow_nan=False, allow_infinity=False))
@example(decimal.Decimal("1e99999999"))
@example(decimal.Decimal("-1e99999999"))
@example(decimal.Decimal("4096.00000000000001"))
@example(decimal.Decimal("1.6e1"))
def test_the_reading_is_the_exact_decimals(number):
    reading = read_whole(f" {number} ", LIMIT)
    assert reading.number
    assert reading.negative == (number < 0)
    if number.copy_abs() > LIMIT:  # copy_abs: abs() overflows on 1e99999999
        assert reading.too_large and reading.value is None
    elif number == int(number):
        assert reading.value == int(number) and not reading.fraction
    else:
        assert reading.fraction and reading.value is None


@given(st.sampled_from(["", " ", "sixteen", "nan", "-inf", "Infinity", "0x10", "1e", "--1", "_10", "1__0", "10_"]))
def test_no_number_is_none_of_the_three(text):
    reading = read_whole(text, LIMIT)
    assert not reading.number and reading.value is None


def test_a_refused_number_is_said_as_the_float_it_is_or_as_typed():
    assert as_said("4096.50") == "4096.5"  # the float is that number: said as REST and Python say it
    assert as_said("4e-324") == "4e-324"  # the float 5e-324 would be another number
    assert as_said("1.00000000000000000001") == "1.00000000000000000001"
    long = "9" * 5000 + ".5"
    assert len(as_said(long)) < 80 and "5002 characters" in as_said(long)
    assert as_typed("  16  ") == "16"


def _error(args):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    return " ".join(res.output.split())


def test_width_echoes_a_subnormal_as_typed_and_a_long_number_cut():
    base = ["recommend", "-p", "mup", "-o", "adam", "--base-width", "16", "--base-lr", "1e-3", "--width"]
    assert "expected an integer width, got 4e-324" in _error([*base, "4e-324"])  # was 5e-324
    out = _error([*base, "9" * 5000])
    assert "(5000 characters) is beyond any whole number this option takes" in out and len(out) < 600


def test_an_integer_option_and_a_specs_widths_cut_a_long_number_too(tmp_path):
    out = _error(["recommend", "-p", "mup", "-o", "adam", "--width", "64", "--base-lr", "1e-3",
                  "--base-width", "7" * 5000])
    assert "(5000 characters) is beyond any whole number" in out and len(out) < 600
    out = _error(["sweep", "--model", "mlp", "--data", "synthetic", "--out", str(tmp_path), "--widths", "8" * 3000])
    assert "(3000 characters)" in out and len(out) < 600
    assert not (tmp_path / "results.parquet").exists()


def test_a_float_option_refuses_a_number_that_reads_as_zero(tmp_path):
    """``--blowup 1e-99999999`` read as 0, which turns the filter off: a typed threshold did the opposite of what
    it said, in silence. 0 itself still means off, and a small number a float holds is taken."""
    from abcscale.schemas.numbers import reads_as_zero
    from tests.helpers import TOUR_TABLE

    assert reads_as_zero("1e-99999999") and reads_as_zero("-1e-400")
    # past Decimal's exponents, which float() still reads (as 0 and as inf: a review)
    assert reads_as_zero("1e-99999999999999999999") and not reads_as_zero("0e-99999999999999999999")
    assert read_whole("1e99999999999999999999", LIMIT).too_large
    assert read_whole("-1e99999999999999999999", LIMIT).negative
    assert read_whole("1e-99999999999999999999", LIMIT).fraction
    assert not reads_as_zero("0") and not reads_as_zero("-0.0") and not reads_as_zero("5e-324")
    assert not reads_as_zero("abc") and not reads_as_zero("")
    out = _error(["fit", TOUR_TABLE, "-q", "--out", str(tmp_path), "--blowup", "1e-99999999"])
    assert "--blowup" in out and "1e-99999999 is too small for a float: it would read as 0" in out
    assert not (tmp_path / "fit.json").exists()
    assert "too small for a float" in _error(["fit", TOUR_TABLE, "-q", "--out", str(tmp_path), "--blowup",
                                              "1e-99999999999999999999"])
    out = _error(["recommend", "-p", "mup", "-o", "adam", "-n", "64", "--base-width", "16", "--base-lr", "1e-999"])
    assert "--base-lr" in out and "too small for a float" in out
