"""What a review of `abcscale coord-check` found (session 33): a run that diverged made `--json` a usage error
(exit 2, no JSON: +inf is not JSON), a layer that is exactly zero (a zero-initialised readout) counted as
infinite growth, a seed that diverged was averaged away, and an existing folder that refuses files was found only
after the training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from abcscale.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "user_model.py"
#: one program shape for the whole file (the MLP, sgd, 3 steps, 2 seeds, synthetic batches of 4 x 8): the diverged
#: seed's check below runs in it too, and the compiled widths serve every test after the first
TINY = ["--model", "mlp", "--depth", "1", "--widths", "16,32,64", "--steps", "3", "--seeds", "2", "--data", "synthetic",
        "--batch", "4", "--seq-len", "8", "-q"]


def _exit(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def test_a_run_that_diverges_fails_with_json(capsys):
    code = _exit(["coord-check", "-p", "standard", "-o", "sgd", "--lr-mode", "global", "--log2-base-lr", "10",
                  *TINY, "--json"])
    out = capsys.readouterr().out
    assert code == 1, out
    report = json.loads(out)
    assert report["ok"] is False and report["exit_code"] == 1
    bad = [v for v in report["layers"] if v["diverged_steps"]]
    assert bad and all(v["worst_slope"] is None and not v["passed"] for v in bad)
    assert all(s is None for v in bad for i, s in enumerate(v["slopes"]) if i in v["diverged_steps"])


def test_a_zero_initialised_readout_is_not_growth(tmp_path, capsys):
    model = tmp_path / "um_zero.py"
    model.write_text(EXAMPLE.read_text().replace("return UserModel(shapes=shapes, apply=apply)",
                                                 'return UserModel(shapes=shapes, apply=apply, '
                                                 'init={"lm_head.kernel": "zeros"})'))
    assert "lm_head.kernel" in model.read_text()
    code = _exit(["coord-check", "--model", f"{model}:factory", "-p", "mup", "-o", "adam", "--widths", "16,32,64",
                  "--depth", "1", "--steps", "3", "--seeds", "2", "--batch", "8", "--seq-len", "16", "-q", "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    logits = next(v for v in report["layers"] if v["layer"] == "logits")
    assert logits["slopes"][0] == 0.0 and not logits["diverged_steps"]  # step 0: zero at every width
    assert code == (0 if report["ok"] else 1) and "divide by zero" not in captured.err


def test_a_diverged_seed_is_not_averaged_away(monkeypatch):
    import numpy as np
    import pandas as pd

    from abcscale.runner import coord
    from abcscale.runner.spec import SweepSpec

    real = coord.run_cell

    def one_seed_nan(spec, cell, **kw):  # the largest width's second seed blows up at its last step
        out = real(spec, cell, **kw)
        frame = out.coord.copy()
        hit = (cell.width == 64) & (frame["seed"] == 1) & (frame["step"] == frame["step"].max())
        frame.loc[hit, "act_rms"] = np.nan
        return type(out)(out.rows, frame, out.curves) if hasattr(out, "rows") else out

    monkeypatch.setattr(coord, "run_cell", one_seed_nan)
    spec = SweepSpec(model="mlp", depth=1, widths=[16, 32, 64], parameterizations=["mup"], optimizers=["sgd"],
                     data="synthetic", seq_len=8, batch=4)  # TINY's program: its compiled widths are reused
    result = coord.coord_check(spec, log2_lr=-6, steps=3, seeds=2)
    assert not result.passed and all(v.diverged_steps == (3,) for v in result.layers)
    assert isinstance(result.table, pd.DataFrame)


def test_a_folder_that_refuses_files_is_found_before_the_training(tmp_path, monkeypatch, capsys):
    import abcscale.runner.coord as coord

    monkeypatch.setattr(coord, "coord_check", lambda *a, **k: pytest.fail("trained before checking --plots"))
    plots = tmp_path / "ro"
    plots.mkdir()
    real_write = Path.write_bytes

    def refuse(self, data):
        if self.parent == plots:
            raise PermissionError(13, "Permission denied")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", refuse)
    assert _exit(["coord-check", "-p", "mup", "-o", "adam", *TINY, "--plots", str(plots)]) == 2
    assert "--plots: cannot write into" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "said"), [
    (["-o", ""], "error: --optimizer: give at least one value, got none"),
    (["-o", "adam", "-a", "full,none"], "error: --alignment: give one value, got 2 (full, none)"),
    (["-o", "adam", "--widths", "32,32"], "error: --widths: a coordinate check needs at least two different widths"),
    (["-o", "adam", "--data", "/nonexistent/corpus"], "error: --data: no such file or directory"),
])
def test_bad_flags_are_named_alone(flags, said, capsys):
    assert _exit(["coord-check", "-p", "mup", "--model", "mlp", "-q", *flags]) == 2
    assert capsys.readouterr().err.startswith(said)


def test_a_run_that_diverges_says_so_in_text(capsys):
    """The table's verdict for a diverged run said "activations grow with width": it names the divergence and
    the steps, and what to change (session 33's list)."""
    code = _exit(["coord-check", "-p", "standard", "-o", "sgd", "--lr-mode", "global", "--log2-base-lr", "10",
                  *TINY])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1 and "FAIL: training diverged (activations not finite at step(s)" in out, out
    assert "lower --log2-base-lr" in out and "activations grow with width" not in out
