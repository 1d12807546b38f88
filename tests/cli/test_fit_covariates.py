"""`abcscale fit --covariates` on the command line: the joint law first (text, --summary, --summary --json,
--out), sizes in parameters, --target-size/--at, --strict, what --service sends, and bad input as exit 2
with one line naming the flag or column."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from tests.fitting.covariate_sweeps import covariate_sweep

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "axes.csv"
    covariate_sweep(seeds=1, size_unit=1e6).to_csv(path, index=False)
    return path


def _fit(table, *extra):
    return runner.invoke(app, ["fit", str(table), "--size-col", "N", "--n-boot", "50", "-q", *extra])


def test_text_output_shows_the_joint_law_first_in_parameter_words(table):
    res = _fit(table, "--size-kind", "params", "--covariates", "D,batch_size", "--target-size", "2000000000",
               "--at", "D=1e10,batch_size=64")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert out.index("joint law") < out.index("per curve") < out.index("per N:")
    assert "e_N" in out and "e_D" in out and "e_batch_size" in out and "C (LR* at the bases)" in out
    assert "bases: N=6.4e+07" in out and "median swept value" in out
    assert "prediction at N=2e+09, D=1e+10, batch_size=64: LR*" in out
    assert "loss law: L(N, D)" in out
    assert "per width" not in out and "one width" not in out and "log2(w/base)" not in out


def test_summary_and_its_json(table, tmp_path):
    res = _fit(table, "--covariates", "D,batch_size", "--summary")
    assert res.exit_code == 0, res.output
    assert res.stdout.index("joint law") < res.stdout.index("groups; e with its")
    js = _fit(table, "--covariates", "D,batch_size", "--summary", "--json", "--out", str(tmp_path))
    assert js.exit_code == 0, js.output
    doc = json.loads(js.stdout)
    assert list(doc)[:5] == ["n_rows", "loss_col", "size_col", "size_kind", "joint"]
    assert doc["joint"][0]["names"] == ["N", "D", "batch_size"] and len(doc["groups"]) == 6
    assert set(doc["joint"][0]["exponents"]["N"]) == {"estimate", "low", "high", "confidence_level", "ci"}
    stored = json.loads((tmp_path / "fit.json").read_text())  # --out keeps the whole FitResult
    assert stored["joint"][0]["exponents"]["D"]["estimate"] == doc["joint"][0]["exponents"]["D"]["estimate"]


def test_target_width_stays_the_alias(table):
    a = _fit(table, "--covariates", "D", "--target-width", "1000000000", "--json")
    b = _fit(table, "--covariates", "D", "--target-size", "1000000000", "--json")
    assert a.exit_code == 0 and b.exit_code == 0
    pa, pb = (json.loads(r.stdout)["joint"][0]["prediction"] for r in (a, b))
    assert pa["lr"] == pb["lr"] and pa["size"] == 1e9


def test_strict_exits_1_on_an_unreliable_joint_prediction(tmp_path):
    path = tmp_path / "two_sizes.csv"
    covariate_sweep(sizes=(64, 128), seeds=1, size_unit=1e6).to_csv(path, index=False)
    args = ["--covariates", "D,batch_size", "--target-size", "2000000000"]
    assert _fit(path, *args).exit_code == 0
    res = _fit(path, *args, "--strict")
    assert res.exit_code == 1, res.output
    assert "--strict: unreliable: (all rows): extrapolating from 2 sizes" in res.stderr


@pytest.mark.parametrize(("extra", "said"), [
    (["--covariates", "tokens"], "tokens: missing column (named in --covariates)"),
    (["--covariates", "D", "--at", "depth=4", "--target-size", "100"], "--at: depth is not a covariate"),
    (["--covariates", "D", "--at", "D=4"], "--at: needs --target-size"),
    (["--covariates", "D", "--at", "D=-4", "--target-size", "100"], "--at: D: VALUE must be a positive number"),
    (["--covariates", "D", "--size-kind", "tokens"], "--size-kind: expected width or params"),
    (["--derive", "tpp=D/"], "--derive: 'tpp=D/' is not NAME=A/B"),
])
def test_bad_input_is_exit_2_in_one_line(table, extra, said):
    res = _fit(table, *extra)
    assert res.exit_code == 2, res.output
    assert said in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_bad_covariate_values_name_the_column(table, tmp_path):
    import pandas as pd

    df = pd.read_csv(table)
    for name, bad, said in (("zero.csv", 0.0, "D: values of a covariate (--covariates) must be positive"),
                            ("text.csv", "lots", "D: not a number in row(s) 3")):
        path = tmp_path / name
        df.assign(D=df["D"].astype(object).where(df.index != 3, bad)).to_csv(path, index=False)
        res = _fit(path, "--covariates", "D")
        assert res.exit_code == 2 and said in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_service_gets_the_covariates_and_size_kind(table, monkeypatch):
    sent = {}

    def post(url, content, headers, timeout):
        sent.update(json.loads(content))
        return httpx.Response(422, json={"detail": "stop here"}, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    res = _fit(table, "--size-kind", "params", "--covariates", "D,batch_size", "--target-size", "1000000000",
               "--at", "D=1e10", "--strict", "--service", "http://127.0.0.1:9")
    assert res.exit_code == 2 and "answered 422: stop here" in res.stderr
    assert sent["covariates"] == ["D", "batch_size"] and sent["size_kind"] == "params"
    assert sent["at"] == {"D": 1e10} and sent["size_col"] == "N"
    assert "strict" not in sent  # checked on the returned fit (exit 1), not refused by the service (exit 2)


def test_the_readme_example_table_ships_and_is_the_synthetic_one(table):
    """README's "Tables with more axes" runs `abcscale fit examples/axes.csv ...`: the file ships (a review could
    not follow the example without it) and is exactly the synthetic table these tests fit."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "examples" / "axes.csv"
    assert shipped.read_text() == table.read_text()
    readme = (shipped.parents[1] / "README.md").read_text()
    assert "`abcscale fit examples/axes.csv --size-col N --size-kind params --covariates" in readme
