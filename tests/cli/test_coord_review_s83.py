"""Session 83's review of coord-check and user models: inputs refused before any training, in the user's words."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.cli import main
from abcscale.runner.user import _shapes

TINY = ["coord-check", "-p", "mup", "-o", "adam", "--model", "mlp", "--depth", "1", "--widths", "16,32",
        "--data", "synthetic", "--batch", "4", "--seq-len", "8", "-q"]


def _said(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("dims", [(16, 2.5), (16, True), (16, "7"), (16, 1e400), (16, np.float32(2.5))])
def test_a_shape_that_is_no_whole_count_is_refused(dims):
    # int() made 2.5 a 2, True a 1 and "7" a 7 in silence, and 1e400 a traceback (OverflowError)
    with pytest.raises(ValueError, match=r"shapes: 'w' must map to a tuple of positive ints"):
        _shapes({"w": dims})


def test_whole_numbers_of_any_kind_are_sizes():
    assert _shapes({"w": (np.int64(16), 64.0, np.float32(4))}) == {"w": (16, 64, 4)}


@pytest.mark.parametrize("value", ["2000,1,1", "0,-11,1"])
def test_an_lr_exponent_past_any_theory_is_refused(value, capsys):
    code, err = _said([*TINY, "--steps", "1", "--lr-exponents", value], capsys)
    assert code == 2 and "--lr-exponents: each exponent must lie in [-10, 10]" in err and "Traceback" not in err


def test_steps_past_the_limit_are_said_as_typed(capsys):
    code, err = _said([*TINY, "--steps", "10000000"], capsys)
    assert code == 2 and "--steps: a coordinate check trains at most 9,999,999 updates, got 10,000,000" in err


def test_a_limit_of_the_spec_says_the_steps_given(capsys):
    code, err = _said([*TINY, "--steps", "9999999", "--batch", "16"], capsys)
    assert code == 2 and "steps: 9999999 (a coordinate check trains 10000000) x batch 16" in err, err


def test_a_model_file_that_is_a_folder_is_said_so(tmp_path, monkeypatch, capsys):
    (tmp_path / "dir.py").mkdir()
    monkeypatch.chdir(tmp_path)
    code, err = _said([*TINY[:6], "dir.py:factory", *TINY[7:], "--steps", "1"], capsys)
    assert code == 2 and "dir.py is a folder; give a Python file" in err and "no such file" not in err
