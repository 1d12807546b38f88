"""``abcscale tune --verify-constants``: the fitter's constants-consistency test, stored in the constants file."""

from __future__ import annotations

import pandas as pd
import pytest

from abcscale.cli import main
from abcscale.usecases.tune import load_constants
from abcscale.usecases.tune_verify import CONSTANT_FACTORS
from tests.cli.test_tune import TINY

pytest.importorskip("optuna")


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


@pytest.mark.e2e
def test_verify_constants_sweeps_each_gamma_and_stores_the_fitter_s_verdict(tmp_path, capsys):
    out = tmp_path / "tuned.json"
    assert _exit(["tune", *TINY, "--model", "mlp", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert _exit(["tune", "--constants", str(out), "--verify-widths", "2x", "--verify-lrs", "2", "--verify-seeds",
                  "2", "--verify-constants", "--quiet"]) == 0
    printed = capsys.readouterr().out
    tuned = load_constants(out)
    check = tuned.constants_check
    assert check is not None and check.widths == [16, 32] and check.factors == list(CONSTANT_FACTORS)
    assert set(check.width_independent) == {"gamma_embedding", "gamma_readout"}
    fits = {f.name: f.drift_exponent for f in check.fits}
    for name, verdict in check.width_independent.items():  # the verdict is the drift interval's (None: no drift)
        drift = fits.get(name)
        assert verdict == (None if drift is None else drift.ci.low <= 0 <= drift.ci.high)
    rows = pd.read_parquet(tmp_path / "tuned.json.constants-sweep" / "results.parquet")  # the last width's
    g = tuned.constants.gamma
    readout = sorted(rows.loc[rows["gamma_embedding"] == g.embedding, "gamma_readout"].unique())
    assert readout == pytest.approx([g.readout * f for f in CONSTANT_FACTORS])
    assert "constants check" in printed and "gamma_readout" in printed


def test_verify_constants_needs_verify_widths(tmp_path, capsys):
    assert _exit(["tune", "--verify-constants", "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --verify-constants") and err.count("\n") == 1
