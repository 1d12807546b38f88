"""`abcscale recommend --fit`: the text says what made the 95% band (theory's prior or a free exponent), and
--strict refuses the band's unreliable reasons, naming them (exit 1), and passes a reliable one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep

runner = CliRunner()
MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}
WIDE = {"COLUMNS": "300"}


def _fit_file(tmp_path_factory, name: str, widths: tuple[int, ...], group: dict | None) -> str:
    path = tmp_path_factory.mktemp("fit") / f"{name}.json"
    fit = fit_table(synthetic_sweep(widths=widths, group=group, exponent=0.0, seed=4), n_boot=50)
    path.write_text(fit.model_dump_json())
    return str(path)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    return _fit_file(tmp_path_factory, "two", (64, 128), MUP)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    return _fit_file(tmp_path_factory, "three", (32, 64, 128), MUP)


def test_strict_names_the_bands_unreliable_reasons(two):
    args = ["recommend", "--fit", two, "-n", "512"]
    reasons = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["band"]["unreliable"]
    assert reasons and any("from 2 widths" in r for r in reasons)
    res = runner.invoke(app, [*args, "--strict"], env=WIDE)
    assert res.exit_code == 1
    for why in reasons:  # every reason, each on its own line
        assert f"--strict: unreliable: {why}" in " ".join(res.stderr.split())
    # the JSON answer is still printed before the refusal
    strict_json = runner.invoke(app, [*args, "--strict", "--json"])
    assert strict_json.exit_code == 1 and json.loads(strict_json.stdout)["band"]["unreliable"] == reasons


def test_strict_passes_a_reliable_band_from_theory(three):
    args = ["recommend", "--fit", three, "-n", "512"]
    band = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["band"]
    assert band["method"] == "theory_prior" and band["unreliable"] == []
    res = runner.invoke(app, [*args, "--strict"], env=WIDE)
    assert res.exit_code == 0, res.output
    prior = f"(centred on {band['prior_exponent']:g}, sd {band['prior_sd']:g})"
    assert f"95% band from theory prior on the exponent {prior}" in res.stdout


def test_text_says_a_band_without_theory_is_a_free_exponent(tmp_path_factory):
    free = _fit_file(tmp_path_factory, "free", (32, 64, 128), None)
    res = runner.invoke(app, ["recommend", "--fit", free, "-n", "512", "-p", "mup", "-o", "adam", "--lr-mode",
                              "per_layer"], env=WIDE)
    assert res.exit_code == 0, res.output
    assert "95% band from a free exponent (the fitted widths alone" in res.stdout
    assert "theory prior on" not in res.stdout
