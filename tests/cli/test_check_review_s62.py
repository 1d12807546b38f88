"""Session 62's review of `check` with microsoft/mup, end to end as the team ran it: a Hydra config for MuAdam read
through a map file, checked against the fit of their MuAdam sweep (tests/usecases/test_check_review_s62.py has
the arithmetic)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.usecases.check import SAFE_SIDE

runner = CliRunner()

MAP = """[map]
width = "model.d_model"
"mup.base_width" = "mup.base_width"
"mup.lr" = "optimizer.lr"
"mup.output_mult" = "model.output_mult"
"mup.init_std" = "mup.init_std"
"mup.epsilon" = "optimizer.eps"
optimizer = "optimizer.name"

[values]
parameterization = "mup"
"""


def _train(lr: float, base: int = 128) -> str:
    return (f"name: lm-8192-mup\nmodel: {{d_model: 8192, output_mult: 1.0}}\nmup: {{base_width: {base}, init_std: "
            f"0.02}}\noptimizer: {{name: MuAdam, lr: {lr!r}, eps: 1.0e-8}}\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("s62")
    table = synthetic_sweep((128, 256, 512, 1024), exponent=0.0, lr_base=2e-3, base_width=128, seeds=2,
                            group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"})
    fit = fit_table(table, n_boot=50, target_width=8192)
    (d / "fit.json").write_text(fit.model_dump_json())
    (d / "train.map.toml").write_text(MAP)
    pred = fit.groups[0].prediction
    return d, pred.lr, pred.safe_lr


def _check(d, name, text, *extra):
    (d / name).write_text(text)
    return runner.invoke(app, ["check", str(d / name), "--map-file", str(d / "train.map.toml"), "--fit",
                               str(d / "fit.json"), *extra])


def test_muadam_config_at_the_fits_lr_passes(files):
    d, star, _ = files
    res = _check(d, "ok.yaml", _train(float(f"{star:.4g}")), "--json")
    assert res.exit_code == 0, res.output
    assert {c["setting"] for c in json.loads(res.stdout)["checks"]} >= {"lr"}


def test_one_lr_10x_fails_on_every_group(files):
    d, star, _ = files
    res = _check(d, "bad.yaml", _train(10 * star), "--json")
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    rows = {c["layer"]: c for c in report["checks"] if c["setting"] == "lr"}
    assert {r for r, c in rows.items() if c["verdict"] == "too high"} == {"embedding", "hidden", "readout", "vector",
                                                                          "fixed"}
    assert rows["vector"]["recommended"] == pytest.approx(star) and rows["fixed"]["recommended"] == pytest.approx(star)


def test_base_512_against_the_base_128_fit(files):
    d, star, _ = files
    res = _check(d, "b512.yaml", _train(star, base=512), "--json")
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    rows = {c["layer"]: c for c in report["checks"] if c["setting"] == "lr"}
    assert rows["readout"]["verdict"] == "too high" and rows["readout"]["ratio"] == pytest.approx(4, rel=1e-6)
    assert rows["embedding"]["ok"] and rows["embedding"]["ratio"] == pytest.approx(1, rel=1e-6)
    assert any("512" in w and "base width 128" in w for w in report["warnings"])


def test_the_safe_side_passes_in_the_table_and_the_json(files):
    d, star, safe = files
    assert safe < star / 1.01  # the fit's safe side lies below a 1.01x tolerance
    text = _train(float(f"{safe:.4g}"))
    res = _check(d, "safe.yaml", text, "--tolerance", "1.01", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert {c["verdict"] for c in report["checks"] if c["setting"] == "lr"} == {SAFE_SIDE}
    assert any("passed as the fit's safe side" in w for w in report["warnings"])
    shown = _check(d, "safe.yaml", text, "--tolerance", "1.01")
    assert shown.exit_code == 0 and "safe side" in shown.output and "PASS" in shown.output
    below = _check(d, "below.yaml", _train(0.98 * safe), "--tolerance", "1.01")
    assert below.exit_code == 1 and "too low" in below.output
