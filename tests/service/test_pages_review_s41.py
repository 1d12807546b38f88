"""Session 41's review of the pages as a team lead uses them, each finding tested (tests/service/test_pages.py
holds the pages' own tests)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.service.conftest import N_BOOT


def _error(html: str, field: str) -> str:
    m = re.search(rf'id="e-{field}" class="error-msg">([^<]*)<', html)
    return unescape(m.group(1)) if m else ""


def _layer_lrs(html: str) -> dict[str, float]:
    return {layer: float(v) for layer, v in re.findall(
        r'<tr data-layer="(\w+)">.*?data-field="lr" data-value="([^"]+)"', html, re.S)}


def _store(client, rows: list[dict], **options) -> str:
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, **options})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def bare_fit(client, sweep) -> str:
    """A fit of a table with no parameterization, optimizer or lr_mode column."""
    rows = json.loads(sweep.drop(columns=["parameterization", "optimizer", "lr_mode"]).to_json(orient="records"))
    return _store(client, rows, name="bare")


@pytest.fixture
def no_lr_mode_fit(client, sweep) -> str:
    return _store(client, json.loads(sweep.drop(columns=["lr_mode"]).to_json(orient="records")), name="no lr_mode")


def test_the_calculator_does_not_fill_a_bare_fits_setup_with_its_theory_defaults(client, bare_fit):
    # the theory form's defaults (mup, adam, per_layer) were taken as the fit's setup: a 200 with LRs 10-100x off
    page = client.get("/", params={"source": "fit", "fit_id": bare_fit, "width": "4096"})
    assert page.status_code == 422, page.text
    assert 'id="result"' not in page.text
    for key in ("parameterization", "optimizer"):
        assert "no such column" in _error(page.text, f"fit_{key}")
        assert re.search(rf'id="f-fit_{key}"[^>]*aria-invalid="true"', page.text)
    api = client.post("/v1/recommend", json={"fit_id": bare_fit, "width": 4096})
    assert api.status_code == 422  # the API's answer too


def test_the_fits_setup_chosen_on_the_page_gives_the_apis_numbers(client, bare_fit):
    setup = {"parameterization": "standard", "optimizer": "sgd", "lr_mode": "global"}
    page = client.get("/", params={"source": "fit", "fit_id": bare_fit, "width": "8192", **setup})
    assert page.status_code == 200, page.text
    assert "standard + sgd, global LR" in unescape(page.text)
    api = client.post("/v1/recommend", json={"fit_id": bare_fit, "width": 8192, **setup}).json()
    assert _layer_lrs(page.text) == {s["layer"]: s["lr"] for s in api["layers"]}
    # the choice stays selected in the fit's fieldset for the next submission
    assert re.search(r'id="f-fit_optimizer"[^>]*>.*?<option value="sgd" selected', page.text, re.S)


def test_a_fit_without_an_lr_mode_column_asks_for_it(client, no_lr_mode_fit):
    page = client.get("/", params={"source": "fit", "fit_id": no_lr_mode_fit, "width": "4096"})
    assert page.status_code == 422
    assert "lr_mode" in _error(page.text, "fit_lr_mode")
    ok = client.get("/", params={"source": "fit", "fit_id": no_lr_mode_fit, "width": "4096", "lr_mode": "global"})
    api = client.post("/v1/recommend", json={"fit_id": no_lr_mode_fit, "width": 4096, "lr_mode": "global"}).json()
    assert ok.status_code == 200 and _layer_lrs(ok.text) == {s["layer"]: s["lr"] for s in api["layers"]}


def test_without_the_script_both_fieldsets_are_sent_and_each_source_takes_its_own(client, bare_fit):
    # the theory fieldset comes first in the form; the fit's setup second
    theory = [("parameterization", "mup"), ("optimizer", "adam"), ("lr_mode", "per_layer"), ("base_width", "256"),
              ("base_lr", "0.003")]
    fit_setup = [("parameterization", "standard"), ("optimizer", "sgd"), ("lr_mode", "global")]
    as_fit = client.get("/", params=[("source", "fit"), ("fit_id", bare_fit), ("width", "4096"), *theory, *fit_setup])
    assert as_fit.status_code == 200 and "standard + sgd, global LR" in unescape(as_fit.text)
    empty = [("parameterization", ""), ("optimizer", ""), ("lr_mode", "")]
    as_theory = client.get("/", params=[("source", "theory"), ("width", "4096"), *theory, *empty])
    assert as_theory.status_code == 200 and "mup + adam, per_layer LR" in unescape(as_theory.text)


def test_the_calculator_names_every_bad_field_at_once(client):
    page = client.get("/", params={"width": "abc", "base_lr": "-1", "gamma": "1,2"})
    assert page.status_code == 422
    for field in ("width", "base_lr", "gamma"):
        assert _error(page.text, field), field
