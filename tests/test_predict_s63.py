"""A fit answers any size and covariate values after it was made (session 63): ``abcscale predict FIT``, ``POST
/v1/fits/{id}/predict`` and ``abcscale.predict`` give what ``fit --target-size N --at ...`` would have, without the
table. Before, a stored parameter-count fit could be asked again only by refitting its table (``recommend --fit``
refuses a parameter count: per-layer settings need a width)."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.fitting.covariate_sweeps import covariate_sweep
from tests.helpers import TOUR_TABLE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

N_BOOT = 100
COVS = ["D", "batch_size"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return covariate_sweep(seeds=1, size_unit=1e6)


@pytest.fixture(scope="module")
def covariate_fit(table):
    return fit_table(table, ColumnMapping(size_col="N", size_kind="params", covariates=COVS), n_boot=N_BOOT)


@pytest.fixture(scope="module")
def fit_file(covariate_fit, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("predict") / "fit.json"
    path.write_text(covariate_fit.model_dump_json())
    return str(path)


@pytest.fixture(scope="module")
def service(table, tmp_path_factory):
    """A service holding the table's fit posted over REST (the rows through JSON), no target: a client, the fit's id
    and the body that posted it. The entry-point cases below each post their targeted fit beside it (one app start
    and one untargeted fit for the three: 0.3 CPU-s each, 2026-12-07)."""
    rows = json.loads(table.to_json(orient="records"))
    body = {"rows": rows, "n_boot": N_BOOT, "size_col": "N", "size_kind": "params", "covariates": COVS}
    data = tmp_path_factory.mktemp("service")
    with TestClient(create_app(Settings(data_dir=data, database_url=None, api_token=None))) as c:
        posted = c.post("/v1/fits", json=body)
        assert posted.status_code == 201, posted.text
        yield c, posted.json()["id"], body


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(("size", "at"), [(2e9, {"D": 1e10, "batch_size": 64}), (7e9, {"D": 2e11}),
                                          (1.3e8, {"batch_size": 48})])
def test_every_entry_point_predicts_what_the_fit_would_have(table, fit_file, service, size, at):
    # the fit made with this target (the table again) is the truth the three entry points must give, bit for bit
    want = fit_table(table, ColumnMapping(size_col="N", size_kind="params", covariates=COVS), n_boot=N_BOOT,
                     target_width=int(size), at=at).joint[0].prediction
    assert want is not None
    flags = ["--at", ",".join(f"{k}={v:g}" for k, v in at.items())]
    r = _cli("predict", fit_file, "--size", f"{size:g}", *flags, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["prediction"] is None and got["size_kind"] == "params"
    assert got["joint"] == want.model_dump(mode="json")
    assert abcscale.predict(fit_file, size, at=at) == want
    c, fid, body = service
    # the rows went through JSON (10 digits): the service's own fit with this target is its truth
    targeted = c.post("/v1/fits", json={**body, "target_width": int(size), "at": at}).json()["result"]
    r = c.post(f"/v1/fits/{fid}/predict", json={"size": size, "at": at})
    assert r.status_code == 200, r.text
    assert r.json()["joint"] == targeted["joint"][0]["prediction"]


def test_a_plain_fit_predicts_each_groups_target_as_the_fit_did(tmp_path):
    r = _cli("fit", TOUR_TABLE, "--out", str(tmp_path), "--target-width", "4096", "--n-boot", "200", "--json")
    assert r.exit_code == 0, r.output
    fit = abcscale.load_fit(tmp_path / "fit.json")
    assert len(fit.groups) == 4
    for g in fit.groups:
        selector = ",".join(f"{k}={v}" for k, v in g.group.items())
        r = _cli("predict", str(tmp_path), "--width", "4096", "--group", selector, "--json")
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)
        assert got["joint"] is None and got["group"] == g.group
        assert got["prediction"] == g.prediction.model_dump(mode="json")
    # another width than the fit's target: the law's, not the stored answer
    r = _cli("predict", str(tmp_path), "-n", "512", "--group", "parameterization=mup,lr_mode=per_layer")
    assert r.exit_code == 0, r.output
    assert "LR* at width 512: " in r.stdout and "68% [" in r.stdout


def test_bad_input_names_the_flag_and_exits_2(fit_file, tmp_path):
    cases = [
        (["--size", "7e9"], "--at: this fit has covariates (D, batch_size)"),   # which law: the joint one, with --at
        (["--size", "7e9", "--at", "tokens=1e10"], "--at: tokens is not a fitted covariate"),
        (["--size", "7e9", "--at", "D=-1"], "--at: D: VALUE must be a positive number"),
        (["--size", "2e19", "--at", "D=1e10"], "--size: must be a whole number from 1 to 1000000000000000000 (1e18)"),
        (["--size", "7e9", "--at", "D=1e10", "--group", "depth=2"],
         "--group: group key 'depth': not a group column of this fit's joint laws"),
    ]
    for flags, said in cases:
        r = _cli("predict", fit_file, *flags)
        assert r.exit_code == 2, (flags, r.output)
        assert said in r.output, (flags, r.output)
        assert "Traceback" not in r.output
    r = _cli("predict", str(tmp_path / "none.json"), "--size", "64")
    assert r.exit_code == 2 and "fit: no such file" in r.output


def test_strict_exits_1_on_an_unreliable_prediction_and_0_otherwise(fit_file):
    far = _cli("predict", fit_file, "--size", "1e18", "--at", "D=1e10", "--strict")  # 2e9x past the largest size
    assert far.exit_code == 1, far.output
    assert "--strict: unreliable:" in far.output and "beyond" in far.output
    near = _cli("predict", fit_file, "--size", "2e8", "--at", "D=4e8", "--strict")
    assert near.exit_code == 0, near.output


def test_rest_errors_are_422s_at_the_field_and_strict_refuses(table, tmp_path):
    rows = json.loads(table.to_json(orient="records"))
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token="tok"))) as c:
        fid = c.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "size_col": "N", "size_kind": "params",
                                       "covariates": COVS}, headers={"Authorization": "Bearer tok"}).json()["id"]
        url = f"/v1/fits/{fid}/predict"
        cases = [({"size": 7e9}, ["body", "at"]),
                 ({"size": 7e9, "at": {"tokens": 1e10}}, ["body", "at"]),
                 ({"size": 7e9, "at": {"D": 1e10}, "group": {"depth": 2}}, ["body", "group"]),
                 ({"size": 7.5, "at": {"D": 1e10}}, ["body", "size"]),  # a parameter count is a count
                 ({"size": 7e9, "at": {"D": "1e10"}}, ["body", "at"]),  # "D: Input should be a number"
                 ({"size": True, "at": {"D": 1e10}}, ["body", "size"]),
                 ({"size": 2e19, "at": {"D": 1e10}}, ["body", "size"]),
                 ({"size": 1e18, "at": {"D": 1e10}, "strict": True}, ["body", "strict"])]
        for body, loc in cases:
            r = c.post(url, json=body)  # a read: no token needed
            assert r.status_code == 422, (body, r.text)
            assert r.json()["detail"][0]["loc"] == loc, (body, r.text)
        assert c.post("/v1/fits/nope/predict", json={"size": 1e9}).status_code == 404
        # nothing was stored by asking
        assert c.get("/v1/fits").json()["count"] == 1


def test_a_width_fit_refuses_a_fractional_width_over_rest(tmp_path):
    sweep = synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=2.0)
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as c:
        fid = c.post("/v1/fits", json={"rows": json.loads(sweep.to_json(orient="records")), "n_boot": N_BOOT,
                                       "parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
        assert fid.status_code == 201, fid.text
        _fractional(c, f"/v1/fits/{fid.json()['id']}/predict")


def _fractional(client, url: str) -> None:
    r = client.post(url, json={"size": 4096.5})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "size"], r.text
    assert "whole number" in r.text
    r = client.post(url, json={"size": 4096})
    assert r.status_code == 200, r.text
    assert r.json()["prediction"]["width"] == 4096 and r.json()["joint"] is None


# --- a service team's review of the new command and route (session 63) ---------------------------------------


def test_strict_refuses_a_size_or_covariate_far_below_or_past_the_swept_range(fit_file):
    # `--size 7` for 7e9 answered LR* ~1000 with exit 0; D 62,500x past its range and batch 512x too passed
    cases = [(["--size", "7", "--at", "D=4e8"], "below the smallest swept size"),
             (["--size", "2e8", "--at", "D=1e14"], "D=1e+14 is 6.25e+04x outside the swept range"),
             (["--size", "2e8", "--at", "batch_size=1e6"], "batch_size=1e+06 is")]
    for flags, said in cases:
        r = _cli("predict", fit_file, *flags, "--strict")
        assert r.exit_code == 1, (flags, r.output)
        assert said in r.output, (flags, r.output)
    near = _cli("predict", fit_file, "--size", "2e8", "--at", "D=2e9,batch_size=160", "--strict")  # 1.25x out
    assert near.exit_code == 0, near.output


def test_a_plain_fit_refuses_a_size_far_below_its_widths_under_strict(tmp_path):
    # a parameter-count sweep: 16M-256M parameters, LR* falling as N^-0.5
    table = synthetic_sweep(widths=(16_000_000, 64_000_000, 256_000_000), exponent=-0.5, seeds=1, step=0.5,
                            half_range=2.0, base_width=16_000_000, group={"parameterization": "mup"})
    fit = fit_table(table.rename(columns={"width": "N"}), ColumnMapping(size_col="N", size_kind="params"), n_boot=50)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    r = _cli("predict", str(path), "--size", "7", "--group", "parameterization=mup", "--strict")
    assert r.exit_code == 1 and "below the smallest fitted" in r.output, r.output
    assert "of the largest fitted size" in _cli("predict", str(path), "--size", "1e8", "--group",
                                                  "parameterization=mup").output  # a size, not a width


def test_group_without_at_on_a_covariate_fit_asks_for_at(table, fit_file, covariate_fit, tmp_path):
    # a covariate fit with a group column: `--group optimizer=adam` names its joint law, not one of its 12 curves
    # (it listed them, "6 groups match" and 12 shown: a review); the joint path compares values as the plain one
    fit = fit_table(table.assign(optimizer="adam"), ColumnMapping(size_col="N", size_kind="params", covariates=COVS),
                    n_boot=N_BOOT)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    r = _cli("predict", str(path), "--size", "7e9", "--group", "optimizer=adam")
    assert r.exit_code == 2 and "--at: this fit has covariates" in r.output, r.output
    for selector in ("optimizer=Adam", "optimizer=ADAM"):  # case and aliases, as without --at
        r = _cli("predict", str(path), "--size", "7e9", "--group", selector, "--at", "D=1e9", "--json")
        assert r.exit_code == 0, (selector, r.output)
    for key in ("optimiser", "parameterization"):  # a key no joint law has: refused (a theory key changes nothing)
        r = _cli("predict", str(path), "--size", "7e9", "--group", f"{key}=adam", "--at", "D=1e9")
        assert r.exit_code == 2 and f"--group: group key '{key}': not a group column" in r.output, r.output
    # --at bases: the joint law at every covariate's base, as `fit --target-size` without --at predicts it
    at_bases = _cli("predict", fit_file, "--size", "5e8", "--at", "bases", "--json")
    assert at_bases.exit_code == 0, at_bases.output
    law = covariate_fit.joint[0]
    joint = json.loads(at_bases.stdout)["joint"]
    assert joint["at"] == {k: law.bases[k] for k in COVS}
    # asked for, so not "D not given: at its base" for each covariate; left out, it still says so
    assert not [w for w in joint["warnings"] if "not given" in w], joint["warnings"]
    left_out = _cli("predict", fit_file, "--size", "5e8", "--at", f"{COVS[0]}={law.bases[COVS[0]]}", "--json")
    said = json.loads(left_out.stdout)["joint"]["warnings"]
    assert [w for w in said if "not given" in w] == [f"{k} not given: at its base {law.bases[k]:g}" for k in COVS[1:]]
    assert json.loads(left_out.stdout)["joint"]["lr"] == joint["lr"]  # the same point, the same number
    assert abcscale.predict(fit_file, 5e8, at="bases").lr == joint["lr"]


def test_rest_locates_group_errors_and_refuses_huge_covariates(table, tmp_path):
    sweep = synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=2.0)
    two = pd.concat([sweep.assign(optimizer="adam"), sweep.assign(optimizer="sgd")])
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as c:
        fid = c.post("/v1/fits", json={"rows": json.loads(two.to_json(orient="records")), "n_boot": N_BOOT,
                                       "parameterization": "mup", "lr_mode": "global"}).json()["id"]
        for body in ({"size": 4096}, {"size": 4096, "group": {"optimizer": "lion"}},
                     {"size": 4096, "group": {"optimizer": "x" * 100_000}}):
            r = c.post(f"/v1/fits/{fid}/predict", json=body)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "group"], r.text
            assert len(r.content) < 5_000  # the 100k value is not echoed back
        r = c.post(f"/v1/fits/{fid}/predict", json={"size": 1e19, "group": {"optimizer": "adam"}})
        assert r.status_code == 422 and "2**40" in r.text, r.text  # a width fit's bound, not a parameter count's
        rows = json.loads(table.to_json(orient="records"))
        cid = c.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "size_col": "N", "size_kind": "params",
                                       "covariates": COVS}).json()["id"]
        r = c.post(f"/v1/fits/{cid}/predict", json={"size": 7e9, "at": {"D": 1e200}})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "at"], r.text
        assert "up to 1e+30" in r.text


def test_a_group_without_a_law_fails_strict_as_fit_strict_does(tmp_path):
    one = synthetic_sweep(widths=(256,), seeds=1, step=0.5, half_range=2.0,
                          group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
    fit = fit_table(one, n_boot=50)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    plain = _cli("predict", str(path), "--size", "4096")
    assert plain.exit_code == 2 and "has no law across widths, so no prediction" in plain.output, plain.output
    gate = _cli("predict", str(path), "--size", "4096", "--strict")
    assert gate.exit_code == 1 and "--strict: unreliable:" in gate.output, gate.output


def test_recommend_on_a_parameter_count_fit_points_at_predict(fit_file):
    r = _cli("recommend", "--fit", fit_file, "--width", "4096")
    assert r.exit_code == 2 and "abcscale predict FIT --size 7e9" in r.output, r.output
