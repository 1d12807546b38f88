"""Session 63: `coord-check`'s text named neither the LR mode nor that `-p standard` under its per-layer exponents
is not SP as teams train it (one shared LR): a team read "PASS" as "SP passes"."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from abcscale.cli.runner import print_coord_check  # noqa: E402
from abcscale.runner.coord import CoordCheck, LayerVerdict  # noqa: E402
from abcscale.runner.spec import SweepSpec  # noqa: E402


def _result(parameterization, lr_mode, slope=0.05):
    import pandas as pd

    spec = SweepSpec(model="mlp", parameterizations=[parameterization], optimizers=["adam"], lr_modes=[lr_mode],
                     widths=[8, 16], depth=1, data="synthetic")
    ok = slope <= 0.25
    layer = LayerVerdict(layer="hidden0", layer_type="hidden", slopes=(slope,), worst_step=0, worst_slope=slope,
                         passed=ok, intervals=((slope - 0.01, slope + 0.01),), verdict="pass" if ok else "fail")
    return CoordCheck(spec=spec, max_slope=0.25, table=pd.DataFrame(), layers=[layer])


def _printed(capsys, result, exps=None):
    print_coord_check(result, None, exps)
    return " ".join(capsys.readouterr().out.split())


def test_the_verdict_names_the_lr_mode(capsys):
    out = _printed(capsys, _result("mup", "per_layer"))
    assert "PASS (mup + adam, per-layer LRs (theory's c, --lr-mode per_layer))" in out
    assert "coordinate check, mup + adam, per-layer LRs" in out and "note: standard" not in out
    out = _printed(capsys, _result("mup", "global", slope=0.6))
    assert "FAIL: activations grow with width (mup + adam, one shared LR (--lr-mode global))" in out
    out = _printed(capsys, _result("mup", "global"), (0.0, 1.0, 1.0))
    assert "PASS (mup + adam, LR exponents c = 0,1,1 (--lr-exponents))" in out


def test_standard_passing_under_per_layer_lrs_says_what_sp_is(capsys):
    out = _printed(capsys, _result("standard", "per_layer"))
    assert "note: standard passed with its per-layer LR exponents" in out and "--lr-mode global" in out
    assert "PASS (standard + adam, per-layer LRs" in out
    # with one shared LR it is SP as trained: no note
    assert "note: standard" not in _printed(capsys, _result("standard", "global"))
