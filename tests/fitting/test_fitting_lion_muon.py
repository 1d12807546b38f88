"""The fitter's theory verdicts know Lion and Muon (issue 15): a sweep labelled lion or muon is checked against
the exponent docs/theory.md section 11 derives, per-layer and global, by `fit_table` and `abcscale fit
--expect-theory`; a Muon sweep that drifts like Adam's global LR is flagged."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep

# section 11's hand derivation under muP, full alignment: Lion takes Adam's global c (1, the hidden layer's),
# Muon's hidden c is 0, so the embedding and readout's 1/2 bind a global LR; a per-layer rule does not move
HAND = {("lion", "global"): -1.0, ("lion", "per_layer"): 0.0, ("muon", "global"): -0.5, ("muon", "per_layer"): 0.0}


def _group(optimizer: str, lr_mode: str) -> dict[str, str]:
    return {"parameterization": "mup", "optimizer": optimizer, "alignment": "full", "lr_mode": lr_mode}


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return pd.concat([synthetic_sweep(group=_group(o, m), exponent=e, seed=40 + i)
                      for i, ((o, m), e) in enumerate(HAND.items())], ignore_index=True)


def test_fit_checks_lion_and_muon_against_their_theory(sweep):
    fit = fit_table(sweep, n_boot=100)
    got = {(g.group["optimizer"], g.group["lr_mode"]): g for g in fit.groups}
    assert set(got) == set(HAND)
    for key, g in got.items():
        assert g.theory_exponent == pytest.approx(HAND[key]), key
        assert g.consistent is True, (key, g.exponent, g.warnings)
        assert not [w for w in g.warnings if "no theory exponent" in w], key


def test_expect_theory_passes_on_lion_muon_and_flags_a_muon_sweep_off_theory(sweep, tmp_path):
    ok = tmp_path / "ok.csv"
    sweep.to_csv(ok, index=False)
    res = CliRunner().invoke(app, ["fit", str(ok), "--expect-theory", "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    # a Muon global LR falling like Adam's (n^-1) is not Muon's n^-1/2
    off = tmp_path / "off.csv"
    synthetic_sweep(group=_group("muon", "global"), exponent=-1.0, seed=50).to_csv(off, index=False)
    res = CliRunner().invoke(app, ["fit", str(off), "--expect-theory", "--n-boot", "100"])
    assert res.exit_code == 1
    assert "inconsistent" in res.output and "optimizer=muon" in res.output and "theory -0.5" in res.output
