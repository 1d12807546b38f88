"""Session 62: `abcscale mup import --json`'s document and a
constants object with width and beta, taken by the Python API's recommend() and by `abcscale check --constants`
as `recommend --constants` takes them (tests/cli/test_recommend_mup_review_s62.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from tests.helpers import TOUR_TABLE, tour_fit

runner = CliRunner()
TABLE = TOUR_TABLE


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    return tour_fit(tmp_path_factory.mktemp("fit"))


def _import(tmp_path: Path, *args: str, name: str = "imp.json") -> Path:
    res = runner.invoke(app, ["mup", "import", *args, "--json"])
    assert res.exit_code == 0, res.output
    (tmp_path / name).write_text(res.stdout)
    return tmp_path / name


def test_the_api_takes_mup_import_json_as_the_cli_does(fit_json, tmp_path):
    imp = _import(tmp_path, "-o", "adam", "--base-width", "32", "--lr", "1e-2", "--init-std", "0.02,0.02,0.02")
    cli = json.loads(runner.invoke(app, ["recommend", "-n", "1024", "--constants", str(imp), "--form", "mup",
                                         "--json"]).stdout)
    api = abcscale.recommend(width=1024, constants=imp, form="mup")  # its base width, beta, -p mup and -o
    assert api.model_dump(mode="json") == cli
    fitted = abcscale.recommend(fit=fit_json, width=1024, parameterization="mup", lr_mode="per_layer",
                                constants=str(imp), form="mup")
    assert [s.mup_lr for s in fitted.groups.roles][:4] == pytest.approx([fitted.beta] * 4)
    wide = _import(tmp_path, "-o", "adam", "--base-width", "64", "--lr", "1e-2", name="wide.json")
    with pytest.raises(ValueError, match="tuned at width 64, the fit's base width is 32"):
        abcscale.recommend(fit=fit_json, width=1024, parameterization="mup", lr_mode="per_layer", constants=wide)
    with pytest.raises(ValueError, match="tuned at width 64, the fit's base width is 32"):
        abcscale.recommend_from_fit(fit_json, 1024, group={"parameterization": "mup", "lr_mode": "per_layer"},
                                    constants=wide)  # it read the constants alone: the base width went unchecked
    with pytest.raises(ValueError, match="optimizer: the constants are microsoft/mup's adam setup"):
        abcscale.recommend(width=1024, constants=imp, optimizer="sgd")


def test_check_takes_mup_import_json_as_recommend_does(tmp_path):
    imp = _import(tmp_path, "-o", "adam", "--base-width", "32", "--lr", "1e-2", "--init-std", "0.02,0.02,0.02")
    rec = json.loads(runner.invoke(app, ["recommend", "-n", "1024", "--constants", str(imp), "--form", "mup",
                                         "--json"]).stdout)
    roles = {r["role"]: r for r in rec["groups"]["roles"]}
    run = tmp_path / "run.yaml"
    run.write_text("width: 1024\nform: mup\n" + "".join(
        f"{k}: {{{', '.join(f'{r}: {roles[r][f]}' for r in ('embedding', 'hidden', 'readout'))}}}\n"
        for k, f in (("lr", "lr"), ("init_std", "init_std"), ("multiplier", "multiplier"))))
    res = runner.invoke(app, ["check", str(run), "--constants", str(imp), "--json"])
    assert res.exit_code == 0, res.output  # was: exit 2, "not a constants file from `abcscale tune`"
    out = json.loads(res.stdout)
    assert out["ok"] and {c["setting"] for c in out["checks"]} >= {"lr", "init_std"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(run.read_text() + "base_width: 64\n")
    res = runner.invoke(app, ["check", str(bad), "--constants", str(imp), "--json"])
    assert res.exit_code == 2 and "hold at base width 32; the config says 64" in res.stdout


def test_check_names_each_clash_with_an_import_at_its_key(tmp_path):
    # a code review: the problems were caught and said again as one line under --constants
    from abcscale.usecases.check import ConfigError, load_config, with_constants_file

    imp = _import(tmp_path, "-o", "adam", "--base-width", "256", "--lr", "3e-3")
    run = tmp_path / "run.yaml"
    run.write_text("parameterization: mup\noptimizer: sgd\nwidth: 1024\nbase_width: 512\nlr: 1e-3\n")
    with pytest.raises(ConfigError) as err:
        with_constants_file(load_config(run, with_fit=True), imp, "--constants")
    said = dict(err.value.problems)
    assert set(said) == {"optimizer", "base_width"}, said
    assert "microsoft/mup's adam setup as mup" in said["optimizer"] and "the config says sgd" in said["optimizer"]
