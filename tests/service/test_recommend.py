"""POST /v1/recommend: the answer is the use case's (``abcscale.usecases``, which the CLI calls too), checked
once end to end against the CLI; bad inputs are 4xx naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from abcscale import theory
from abcscale.schemas.api import AnalyticRecommend
from abcscale.schemas.fit import FitResult
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import BaseConfig, Constants, Transfer
from abcscale.theory.groups import DEFAULT_RULES, group_spec
from abcscale.usecases import recommend_analytic, recommend_from_fit
from abcscale.usecases.recommend import far_width_note

EXAMPLE = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 256, "beta": 0.003}}


def test_issue_example_matches_theory_engine(client):
    r = client.post("/v1/recommend", json=EXAMPLE)
    assert r.status_code == 200, r.text
    got = r.json()
    want = theory.transfer("mup", "adam", BaseConfig(width=256, beta=0.003), 4096, "full", "per_layer")
    groups = group_spec(want, "abc", DEFAULT_RULES).model_dump(mode="json")  # abc form, default rules: the defaults
    assert got == {**want.model_dump(mode="json"), "source": "theory", "beta": 0.003, "band": None, "fit_id": None,
                   "group": None, "groups": groups, "epsilon_mode": "per_layer"}
    assert got["source"] == "theory" and [x["layer"] for x in got["layers"]] == ["embedding", "hidden", "readout"]
    # muP + Adam, full alignment: hidden and readout LRs shrink as (n/b)^-1, i.e. by 16 from 256 to 4096.
    hidden = next(x for x in got["layers"] if x["layer"] == "hidden")
    assert hidden["lr"] == pytest.approx(0.003 / 16)


def test_rest_answer_is_the_use_case(client):
    body = {**EXAMPLE, "alignment": "none", "lr_mode": "global",
            "base": {"width": 256, "beta": 0.003, "gamma": {"embedding": 1, "hidden": 2, "readout": 0.5},
                     "epsilon_mode": "constant"}}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == recommend_analytic(AnalyticRecommend.model_validate(body)).model_dump(mode="json")
    # the constants took effect: global mode, so every LR is beta * gamma_l * (4096/256)^-global_c
    lrs = {x["layer"]: x["lr"] for x in r.json()["layers"]}
    assert lrs["hidden"] / lrs["embedding"] == pytest.approx(2.0)
    assert lrs["readout"] / lrs["embedding"] == pytest.approx(0.5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    p=st.sampled_from(["standard", "ntk", "mup", "mean_field", "sp", "MF"]),
    opt=st.sampled_from(["sgd", "adam", "adafactor"]),
    width=st.integers(1, 2**20),
    base_width=st.integers(1, 2**14),
    beta=st.floats(1e-6, 10.0),
    alignment=st.sampled_from(["full", "none", {"alpha": 1.0, "omega": 0.5, "u": 0.5}]),
    mode=st.sampled_from(["per_layer", "global"]),
)
def test_any_valid_request_matches_theory(client, p, opt, width, base_width, beta, alignment, mode):
    body = {"parameterization": p, "optimizer": opt, "width": width, "alignment": alignment, "lr_mode": mode,
            "base": {"width": base_width, "beta": beta}}
    r = client.post("/v1/recommend", json=body)
    want = theory.transfer(p, opt, BaseConfig(width=base_width, beta=beta), width, alignment, mode)
    assert r.status_code == 200, r.text
    got = Recommendation.model_validate(r.json())
    assert got.source == "theory" and got.beta == beta
    # the answer's own note on a width more than 1024x from the base width (a zero too many?) is no theory's
    far = far_width_note(width, base_width)
    assert (far in got.warnings) == (far is not None)
    got = got.model_copy(update={"warnings": [w for w in got.warnings if w != far]})
    assert Transfer.model_validate(got.model_dump(include=set(Transfer.model_fields))) == want


def test_repeated_request_is_served_identically(client):
    first = client.post("/v1/recommend", json=EXAMPLE).content
    assert client.post("/v1/recommend", json=EXAMPLE).content == first


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"width": 0}, "width"),
        ({"width": -4096}, "width"),
        ({"width": 2**60}, "width"),
        ({"width": 40.5}, "width"),
        ({"base": {"width": 0, "beta": 0.003}}, "width"),
        ({"base": {"width": -256, "beta": 0.003}}, "width"),
        ({"base": {"width": 256, "beta": 0}}, "beta"),
        ({"base": {"width": 256, "beta": -0.003}}, "beta"),
        ({"base": {"width": 256, "beta": 0.003, "gamma": {"hidden": 0}}}, "hidden"),
        ({"base": {"width": 256, "beta": 0.003, "epsilon_mode": "sometimes"}}, "epsilon_mode"),
        ({"parameterization": "mupp"}, "parameterization"),
        ({"optimizer": "shampoo"}, "optimizer"),
        ({"lr_mode": "layerwise"}, "lr_mode"),
        ({"alignment": "partial"}, "alignment"),
        ({"alignment": {"alpha": 3, "omega": 0.5, "u": 1}}, "alpha"),
        ({"widht": 4096}, "widht"),
        ({"fit_id": "abc"}, "body"),  # both sources
        ({"base": None}, "body"),  # neither
        ({"parameterization": None}, "body"),  # analytic mode without it
        ({"constants": {"epsilon": 1e-6}}, "body"),  # fit-mode field with `base`
        ({"fit_id": "abc", "base": None, "constants": {"epsilon": -1}}, "epsilon"),
    ],
)
def test_bad_request_is_422_naming_the_field(client, patch, field):
    body = {**EXAMPLE, **patch}
    r = client.post("/v1/recommend", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(field in [str(x) for x in e["loc"]] for e in r.json()["detail"]), r.json()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_json_float_literals_are_422(client, literal):
    raw = json.dumps(EXAMPLE).replace("0.003", literal)
    r = client.post("/v1/recommend", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert literal.lstrip("-") in r.text or "finite" in r.text


def test_extreme_inputs_are_422_naming_the_bound_and_the_extremes_inside_it_compute(client):
    # a beta so small that beta * ratio^-c would underflow to 0 is outside the schema's range (SCALE_MIN)
    body = {**EXAMPLE, "width": 2**40, "base": {"width": 1, "beta": 1e-320}}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "beta" and "1e-30" in r.json()["detail"][0]["msg"].replace(
        "0.000000000000000000000000000001", "1e-30")
    # the extremes of the range, with the widest width ratio, give finite nonzero settings
    for beta in (1e-30, 1e30):
        body = {**EXAMPLE, "width": 2**40, "base": {"width": 1, "beta": beta, "gamma": {"hidden": beta}}}
        assert client.post("/v1/recommend", json=body).status_code == 200


def test_fit_based_matches_fitting_predict(reader, read_fit):
    r = reader.post("/v1/recommend", json={"fit_id": read_fit["id"], "width": 2048})
    assert r.status_code == 200, r.text
    fit = FitResult.model_validate(read_fit["result"])
    want = recommend_from_fit(fit, 2048, selector={}, constants=Constants())
    got = r.json()
    assert got["fit_id"] == read_fit["id"]
    assert {**got, "fit_id": None} == want.model_dump(mode="json")
    assert got["source"] == "fit" and got["band"]["ci95"][0] < got["band"]["lr"] < got["band"]["ci95"][1]
    # the synthetic truth: LR* = 1e-2 (w/64)^-1, so ~3.1e-4 at 2048; the 95% band holds it
    assert got["band"]["ci95"][0] < 1e-2 / 32 < got["band"]["ci95"][1]
    assert got["band"]["extrapolation_factor"] == pytest.approx(2048 / 512)


def test_fit_based_equals_cli_recommend_from_fit_file(reader, read_fit, tmp_path):
    from abcscale.cli import app

    path = tmp_path / "fit.json"
    path.write_text(json.dumps(read_fit["result"]))
    out = CliRunner().invoke(app, ["recommend", "--fit", str(path), "-n", "4096", "--gamma", "1,0.5,2",
                                   "--epsilon", "1e-6", "--epsilon-mode", "constant", "--json"])
    assert out.exit_code == 0, out.output
    r = reader.post("/v1/recommend", json={
        "fit_id": read_fit["id"], "width": 4096,
        "constants": {"gamma": {"embedding": 1, "hidden": 0.5, "readout": 2}, "epsilon": 1e-6,
                      "epsilon_mode": "constant"}})
    assert r.status_code == 200, r.text
    assert {**r.json(), "fit_id": None} == json.loads(out.output)
    assert {x["epsilon"] for x in r.json()["layers"]} == {1e-6}


def test_fit_based_selector_that_matches_nothing_is_422(reader, read_fit):
    r = reader.post("/v1/recommend", json={"fit_id": read_fit["id"], "width": 2048, "optimizer": "sgd"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "optimizer"]  # the field whose value matches no group
    # the service's words, not the CLI's flags
    msg = r.json()["detail"][0]["msg"]
    assert "select one with `group` (an object, column: value)" in msg and "--" not in msg  # REST's words (s36)
    assert "key=value" not in msg
    r = reader.post("/v1/recommend", json={"fit_id": read_fit["id"], "width": 2048, "optimizer": "sgd",
                                           "lr_mode": "global"})  # two fields: one loc, the first
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] in (["body", "lr_mode"], ["body", "optimizer"])


def test_fit_based_band_carries_the_interval_at_the_fits_level(client, sweep_rows):
    posted = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": 50, "confidence_level": 0.5})
    assert posted.status_code == 201, posted.text
    band = client.post("/v1/recommend", json={"fit_id": posted.json()["id"], "width": 2048}).json()["band"]
    assert band["ci"]["confidence_level"] == 0.5
    # a 50% interval sits inside the fixed 68% band around the same estimate
    assert band["ci68"][0] < band["ci"]["low"] < band["lr"] < band["ci"]["high"] < band["ci68"][1]


def test_unknown_fit_is_404(client):
    r = client.post("/v1/recommend", json={"fit_id": "0" * 32, "width": 2048})
    assert r.status_code == 404 and r.json()["detail"].startswith("Fit not found: no stored fit has the id ")


@pytest.mark.parametrize("patch", [{"fit_id": "abc"}, {"base": None}, {"base": None, "fit_id": None}])
def test_exactly_one_source_is_422_saying_so(client, patch):
    r = client.post("/v1/recommend", json={**EXAMPLE, **patch})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"] == ("give exactly one of `base` (analytic transfer), `fit_id` (a stored fit) "
                                            "or `tuned` (a constants file from `abcscale tune`)")


def test_fit_fields_with_base_are_422_saying_where_they_go(client):
    r = client.post("/v1/recommend", json={**EXAMPLE, "constants": {"epsilon": 1e-6}})
    assert r.status_code == 422 and "put constants in `base`" in r.json()["detail"][0]["msg"]


def test_explicit_nulls_for_the_other_source_are_accepted(client):
    plain = client.post("/v1/recommend", json=EXAMPLE).json()
    r = client.post("/v1/recommend", json={**EXAMPLE, "fit_id": None, "group": None, "constants": None})
    assert r.status_code == 200 and r.json() == plain
    r = client.post("/v1/recommend", json={"fit_id": "0" * 32, "width": 2048, "base": None})
    assert r.status_code == 404


def test_fit_based_alignment_narrows_only_when_given(reader, read_fit):
    # the fit's groups have no alignment column: a given alignment stands in for it (a hint), and changes the
    # per-layer exponents; without one the fit's own (full) is used
    base = {"fit_id": read_fit["id"], "width": 2048}
    plain, none = (reader.post("/v1/recommend", json={**base, **extra}).json() for extra in ({}, {"alignment": "none"}))
    assert plain["alignment"] == {"alpha": 1.0, "omega": 0.5, "u": 1.0}
    assert none["alignment"] == {"alpha": 0.5, "omega": 0.5, "u": 0.5}
    # the same beta; each layer's LR goes through (n/b)^c (n/b)^-c with the alignment's c: equal up to rounding
    drop = lambda band: {k: v for k, v in band.items() if k != "layer_lrs"}  # noqa: E731
    assert drop(none["band"]) == drop(plain["band"])
    assert none["band"]["layer_lrs"] == pytest.approx(plain["band"]["layer_lrs"], rel=1e-12)
