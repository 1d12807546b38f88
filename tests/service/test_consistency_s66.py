"""Session 66: a review of the same question asked of three faces (Python, CLI, REST) and the web calculator.

REST refused an alignment "NONE" or "Full" (every enum field of the same body takes any case, as the CLI's and the
Python API's alignment does) and answered a bad alignment object with a spurious literal error before the real
one; a fit-based 422 pointed `loc` at `fit_id` when another body field was at fault; the calculator's groups table
left out mup.init's base-width stds, MuReadout's own multiplier and Adafactor's param-scale floor (which the CLI
prints beside the same numbers), worded the fixed role for a per-layer LR in global mode too, and dropped the fit's
own-level interval from its band. The browser half (the same page in Chromium) is at the end."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import FitResult
from abcscale.service.routes.theory import ALIGNMENT_PATTERN
from tests.service.conftest import N_BOOT

ANALYTIC = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 256, "beta": 0.003}}
MUP_ADAM = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"}


def _store(client, group: dict | None, widths=(64, 128, 256, 512), **options) -> str:
    rows = json.loads(synthetic_sweep(widths=widths, group=group, exponent=0.0, seed=4).to_json(orient="records"))
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, **options})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _fit(client, fit_id: str) -> FitResult:
    return FitResult.model_validate(client.get(f"/v1/fits/{fit_id}").json()["result"])


# --- 1. an alignment name in any letter case, and one error for a bad alignment object --------------------------


@pytest.mark.parametrize("spelt", ["NONE", "None", " none ", "FULL", "Full"])
def test_rest_takes_an_alignment_name_in_any_case(client, spelt):
    word = spelt.strip().lower()
    ours = client.post("/v1/recommend", json={**ANALYTIC, "alignment": spelt})
    assert ours.status_code == 200, ours.text
    assert ours.json() == client.post("/v1/recommend", json={**ANALYTIC, "alignment": word}).json()
    # as the Python API (and the CLI's -a) read it
    assert ours.json()["layers"] == json.loads(abcscale.recommend(
        "mup", "adam", width=4096, base_width=256, beta=0.003, alignment=spelt).model_dump_json())["layers"]
    convert = {"optimizer": "adam", "from": "mup", "to": "standard", "width": 1024, "base_width": 256}
    said = client.post("/v1/theory/convert", json={**convert, "alignment": spelt})
    assert said.status_code == 200 and said.json() == client.post(
        "/v1/theory/convert", json={**convert, "alignment": word}).json()
    table = client.get("/v1/theory/exponents", params={"alignment": spelt.strip(), "optimizer": "adam"})
    assert table.status_code == 200, table.text
    assert table.json() == client.get("/v1/theory/exponents", params={"alignment": word, "optimizer": "adam"}).json()


def test_a_fit_a_fit_request_and_a_tuned_body_take_it_too(client, sweep_rows):
    fit_id = _store(client, MUP_ADAM)
    for spelt in ("FULL", "Full"):
        r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "alignment": spelt})
        assert r.status_code == 200, r.text
        assert r.json() == client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024,
                                                              "alignment": "full"}).json()
    fitted = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "alignment": "NONE"})
    assert fitted.status_code == 201, fitted.text
    same = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "alignment": "none"}).json()
    assert fitted.json()["result"]["groups"] == same["result"]["groups"]
    tuned = {"kind": "abcscale.tuned-constants", "parameterization": "mup", "optimizer": "adam", "alignment": "Full",
             "lr_mode": "per_layer", "base_width": 64, "beta": 0.003, "constants": {"gamma": {"hidden": 2}}}
    r = client.post("/v1/recommend", json={"tuned": tuned, "width": 1024, "alignment": "FULL"})
    assert r.status_code == 200, r.text
    assert r.json() == client.post("/v1/recommend", json={"tuned": {**tuned, "alignment": "full"},
                                                          "width": 1024}).json()


def test_a_string_that_is_neither_name_keeps_its_message(client):
    r = client.post("/v1/recommend", json={**ANALYTIC, "alignment": "0.75,0.5,0.75"})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "analytic", "alignment"]
    assert err["msg"].startswith("Input should be 'full', 'none' or an object {alpha, omega, u}, not a string")
    r = client.post("/v1/fits", json={"rows": [{"width": 64}], "alignment": "sideways"})
    assert r.status_code == 422 and "not a string" in r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("body", "loc"), [
    ({**ANALYTIC, "alignment": {"alpha": 1, "omega": 0.9, "u": 1}}, ["body", "analytic", "alignment", "omega"]),
    ({"fit_id": "0" * 32, "width": 1024, "alignment": {"alpha": 1, "omega": 0.9, "u": 1}},
     ["body", "fit", "alignment", "omega"]),
    ({**ANALYTIC, "alignment": {"alpha": 3, "omega": 0.5, "u": 1}}, ["body", "analytic", "alignment", "alpha"]),
])
def test_a_bad_alignment_object_is_one_error_at_its_number(client, body, loc):
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422
    (err,) = r.json()["detail"]  # not the literal's "Input should be 'full' or 'none'" first
    assert err["loc"] == loc and err["type"] in ("less_than_equal", "greater_than_equal"), err
    convert = {"optimizer": "adam", "from": "mup", "to": "standard", "width": 1024,
               "alignment": {"alpha": 1, "omega": 0.9, "u": 1}}
    (err,) = client.post("/v1/theory/convert", json=convert).json()["detail"]
    assert err["loc"] == ["body", "alignment", "omega"]


def test_the_openapi_says_it(client):
    schema = client.get("/openapi.json").json()
    prop = schema["components"]["schemas"]["AnalyticRecommend"]["properties"]["alignment"]
    assert {"type": "string", "enum": ["full", "none"]} in prop["anyOf"]
    assert {"$ref": "#/components/schemas/Alignment"} in prop["anyOf"]
    assert "any letter case" in prop["description"]
    (param,) = [p for p in schema["paths"]["/v1/theory/exponents"]["get"]["parameters"] if p["name"] == "alignment"]
    assert param["schema"]["anyOf"][0]["items"]["pattern"] == ALIGNMENT_PATTERN
    for ok in ("full", "NONE", "Full", "1,0.5,1"):
        assert re.fullmatch(ALIGNMENT_PATTERN, ok)
    for bad in ("nonee", "ful", " none", "1,0.9,1"):
        assert not re.fullmatch(ALIGNMENT_PATTERN, bad)


# --- 3. a fit-based 422 points at the field at fault ------------------------------------------------------------


def test_a_fit_request_s_error_names_the_field_at_fault(client):
    fit_id = _store(client, MUP_ADAM)
    # the body's parameterization contradicts its group (X08)
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "group": {"parameterization": "mup"},
                                           "parameterization": "sp"})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "parameterization"] and "contradicts the group's parameterization=mup" in err["msg"]
    # a decay adam does not have (F16/X16), where the analytic body names ["body", "base", "weight_decay"]
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "constants": {"weight_decay": 0.1}})
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "constants", "weight_decay"]
    assert err["msg"].startswith("weight_decay: adam has no weight decay that abcscale transfers")
    analytic = client.post("/v1/recommend", json={**ANALYTIC, "base": {**ANALYTIC["base"], "weight_decay": 0.1}})
    assert analytic.json()["detail"][0]["loc"] == ["body", "base", "weight_decay"]
    # the fit's own data stays at fit_id: a setup column theory cannot read
    bad = _store(client, {**MUP_ADAM, "alignment": "0.5,0.9,1"})
    (err,) = client.post("/v1/recommend", json={"fit_id": bad, "width": 1024}).json()["detail"]
    assert err["loc"] == ["body", "fit_id"] and "alignment column" in err["msg"]


def test_a_bare_table_s_missing_setup_is_said_at_the_field_to_give(client):
    fit_id = _store(client, None)
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024})
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "parameterization"]  # G03, as G04 names lr_mode
    assert "per-layer settings need the group's parameterization and optimizer" in err["msg"]
    (err,) = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "mup"}
                         ).json()["detail"]
    assert err["loc"] == ["body", "optimizer"]
    (err,) = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "mup",
                                                "optimizer": "adam"}).json()["detail"]
    assert err["loc"] == ["body", "lr_mode"]
    ok = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "mup",
                                            "optimizer": "adam", "lr_mode": "per_layer"})
    assert ok.status_code == 200, ok.text


# --- 7. strict: REST's 422 and the Python API's ValueError say the same ----------------------------------------


def test_strict_says_the_same_in_python_and_rest(client):
    fit_id = _store(client, {**MUP_ADAM, "alignment": "full"}, widths=(64, 128))
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 512, "strict": True})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    with pytest.raises(ValueError) as raised:
        abcscale.recommend(fit=_fit(client, fit_id), width=512, strict=True)
    assert str(raised.value) == err["msg"]


# --- 4-6. the calculator shows what the CLI prints beside the same numbers -------------------------------------


def _cells(page: str, role: str) -> dict[str, str]:
    block = re.search(rf'data-role="{role}">(.*?)</tr>', page, re.S)
    assert block, f"no row {role}"
    return dict(re.findall(r'data-field="(\w+)" data-value="([^"]*)"', block.group(1)))


def _text(page: str, css_id: str) -> str:
    m = re.search(rf'id="{css_id}"[^>]*>(.*?)</p>', page, re.S)
    assert m, f"no #{css_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", m.group(1))).split())


def test_the_mup_form_shows_mup_init_s_base_width_stds_and_mureadout(client):
    query = {"parameterization": "mup", "optimizer": "adam", "width": "4096", "base_width": "256",
             "base_lr": "0.003", "form": "mup"}
    page = client.get("/", params=query)
    assert page.status_code == 200, page.text
    api = client.post("/v1/recommend", json={**ANALYTIC, "form": "mup"}).json()
    base = api["groups"]["mup"]["init_std"]
    assert base["hidden"] == pytest.approx(0.0625) and base["readout"] == pytest.approx(0.00390625)
    for role in ("embedding", "hidden", "readout", "vector", "fixed"):
        shown = _cells(page.text, role)["mup_init_std"]
        assert (float(shown) if shown else None) == base.get(role)
    assert "mup.init std (base)" in page.text and "0.0625 × r<sup>-1/2</sup>" in page.text
    note = _text(page.text, "mup-note")
    assert "set_base_shapes at base width 256" in note and "MuAdam" in note
    assert "MuReadout(output_mult=1)" in note and "the multiplier column is mup's own" in note
    assert "mup.init with each group's mup.init std (base), not the init std column" in note
    # the abc form has no mup setup: neither the column nor the note
    abc = client.get("/", params={**query, "form": "abc"}).text
    assert "mup.init std (base)" not in abc and 'id="mup-note"' not in abc


def test_adafactor_s_param_scale_floor_is_shown(client):
    query = {"parameterization": "mup", "optimizer": "adafactor", "width": "4096", "base_width": "256",
             "base_lr": "0.01", "form": "multiplier_free"}
    page = client.get("/", params=query)
    assert page.status_code == 200, page.text
    api = client.post("/v1/recommend", json={**ANALYTIC, "optimizer": "adafactor", "form": "multiplier_free",
                                             "base": {"width": 256, "beta": 0.01}}).json()
    floors = {s["role"]: s["param_scale_floor"] for s in api["groups"]["roles"]}
    assert floors["readout"] < 1e-3  # the readout's init std at 4096 is under the default floor: it matters
    for role, floor in floors.items():
        assert float(_cells(page.text, role)["param_scale_floor"]) == floor
    note = _text(page.text, "floor-note")
    assert note.startswith("adafactor scales a step by max(rms(W), floor), floor 1e-3 by default")
    assert f"readout {floors['readout']:.4g}" in note and "torch.optim.Adafactor(eps=(1e-15, floor))" in note
    # in the abc form every floor is the default: nothing to say, as the CLI says nothing
    abc = client.get("/", params={**query, "form": "abc"}).text
    assert 'id="floor-note"' not in abc and "param-scale floor" not in abc


@pytest.mark.parametrize(("lr_mode", "form", "said"), [
    ("per_layer", "abc", "(the vector row's base-width numbers at every width)"),
    ("global", "abc", "(the one global LR, as every row, and the vector row's base-width epsilon at every width)"),
    ("global", "multiplier_free", "(the one global LR as the abc form writes it"),
])
def test_the_fixed_role_s_hint_follows_the_lr_mode(client, lr_mode, form, said):
    page = client.get("/", params={"parameterization": "standard", "optimizer": "muon", "width": "4096",
                                   "base_width": "256", "base_lr": "0.02", "alignment": "0.5,0.5,1",
                                   "lr_mode": lr_mode, "form": form})
    assert page.status_code == 200, page.text
    hint = " ".join(unescape(page.text).split())
    assert said in hint
    if lr_mode == "global":
        assert "base-width numbers at every width" not in hint


def test_the_band_shows_the_fit_s_own_level(client):
    fit_id = _store(client, {**MUP_ADAM, "alignment": "full"}, confidence_level=0.8)
    page = client.get("/", params={"source": "fit", "fit_id": fit_id, "width": "2048"})
    assert page.status_code == 200, page.text
    api = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 2048}).json()
    ci = api["band"]["ci"]
    assert ci["confidence_level"] == 0.8
    own = re.search(r'<dt>80% band \(the fit\'s level\)</dt><dd data-field="ci" data-low="([^"]+)" '
                    r'data-high="([^"]+)" data-level="([^"]+)">', page.text)
    assert own, "no 80% band"
    assert (float(own.group(1)), float(own.group(2)), float(own.group(3))) == (ci["low"], ci["high"], 0.8)
    assert "68% band" in page.text and "95% band" in page.text
    # a fit at 0.95: its own band is the 95% one, shown once (as the CLI's band line)
    default = _store(client, {**MUP_ADAM, "alignment": "full"})
    shown = client.get("/", params={"source": "fit", "fit_id": default, "width": "2048"}).text
    assert 'data-field="ci"' not in shown and shown.count("95% band") == 1


# --- the same page in a real browser (tests/service/test_pages_browser.py's server and Chromium, conftest's -------
# pages_server and pages_browser: one of each a test process, shared with that file; this test only reads)

from tests.service.test_pages_browser import _all, _by, _table, browser, server  # noqa: E402, F401


def test_the_browser_shows_the_mup_and_floor_columns_and_the_hints(server, browser):  # noqa: F811
    browser.get(server.url + "/?parameterization=mup&optimizer=adam&width=4096&base_width=256&base_lr=0.003"
                "&form=mup")
    shown = _table(browser, "role")
    assert shown["hidden"]["mup_init_std"] == pytest.approx(0.0625)
    assert shown["readout"]["mup_init_std"] == pytest.approx(0.00390625)
    assert _by(browser, "#mup-note").is_displayed() and "MuReadout(output_mult=1)" in _by(browser, "#mup-note").text
    browser.get(server.url + "/?parameterization=mup&optimizer=adafactor&width=4096&base_width=256&base_lr=0.01"
                "&form=multiplier_free")
    floors = {role: v["param_scale_floor"] for role, v in _table(browser, "role").items()}
    assert floors["readout"] < 1e-3 and floors["embedding"] > 1e-3
    assert "max(rms(W), floor)" in _by(browser, "#floor-note").text
    browser.get(server.url + "/?parameterization=standard&optimizer=muon&width=4096&base_width=256&base_lr=0.02"
                "&alignment=0.5,0.5,1&lr_mode=global")
    hints = " ".join(h.text for h in _all(browser, "p.hint"))
    assert "the one global LR, as every row" in hints and "base-width numbers at every width" not in hints
