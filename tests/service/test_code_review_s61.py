"""Session 61, a code review of the session's fixes: a padded or capitalised calculator `source` answered from the fit
but drew the theory radio; "0e400" read as 10^400; the Python API did not say a beta that replaces a tune file's;
two --map flags for one key kept the later; a constant beside a `constants` table was called an unknown key."""

from __future__ import annotations

import io
import json
import re

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from tests.helpers import tune_file

runner = CliRunner()


@pytest.mark.parametrize("source", [" fit", "Fit", "FIT "])
def test_a_padded_or_capitalised_source_selects_the_fit_radio(reader, read_fit, source):
    r = reader.get("/", params={"source": source, "fit_id": read_fit["id"], "width": "4096"})
    assert r.status_code == 200, r.text
    assert re.search(r'value="fit" id="src-fit" checked', r.text)
    assert not re.search(r'value="theory" id="src-theory" checked', r.text)


def test_a_zero_with_a_large_exponent_is_zero(client, sweep):
    data = sweep.to_csv(index=False).encode()
    for seed in ("0e400", "0.0e500"):
        r = client.post("/v1/fits", data={"seed": seed, "n_boot": "20"},
                        files={"file": ("s.csv", io.BytesIO(data), "text/csv")})
        assert r.status_code == 201, (seed, r.text)


def test_the_python_api_says_a_beta_that_replaces_the_tuned_one(tmp_path):
    tuned, path = tune_file(tmp_path)
    said = [w for w in abcscale.recommend(constants=str(path), beta=0.1, width=1024).warnings if "replaces" in w]
    assert said == [f"beta: 0.1 replaces the beta 0.05 tuned in {path}, whose gammas were tuned jointly with it: "
                    "every LR is 2x the tuned transfer's (drop beta to use the file's)"]
    for beta in (None, 0.05):
        assert not any("replaces" in w for w in abcscale.recommend(constants=str(path), beta=beta, width=1024).warnings)
    assert any("replaces" in w for w in abcscale.recommend(constants=tuned, beta=0.1, width=1024).warnings)


def test_two_map_flags_for_one_key_are_refused(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("optimizer: adam\nparameterization: mup\nmodel: {d_model: 1024, base: 256}\nbase_width: 256\n"
                   "beta: 3.0e-3\nlr: {embedding: 7.5e-4, hidden: 7.5e-4, readout: 7.5e-4}\n")
    res = runner.invoke(app, ["check", str(run), "--map", "width=model.d_model", "--map", "width=model.base", "--json"])
    assert res.exit_code == 2, res.output
    (error,) = json.loads(res.stdout)["errors"]
    assert "--map: width: given twice (mapped to 'model.d_model' and to 'model.base')" in error
    ok = runner.invoke(app, ["check", str(run), "--map", "width=model.d_model", "--map", "base_width=model.base"])
    assert ok.exit_code in (0, 1), ok.output  # two keys over two flags: judged


def test_a_constant_beside_the_constants_table_is_told_to_go_inside(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("constants: {gamma: {hidden: 2}}\nepsilon: 1.0e-6\n")
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--base-width", "32", "--base-lr", "0.01",
                              "-n", "64", "--constants", str(path)])
    assert res.exit_code == 2
    said = " ".join(res.output.split())
    assert "epsilon: a constant beside the `constants` table: put it inside it" in said and "unknown key" not in said
