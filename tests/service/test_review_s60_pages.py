"""Session 60: a user review of the Python API, the theory CLI and the web pages. A calculator link with an alias
(`mf`, `Lion`, `plain`) answered for it but drew the form with nothing selected, so the next submit answered
standard + sgd; a whole number written as a float ("4096.0", "4e3") was refused by the calculator and the upload form,
which the CLI and JSON take; a JSON alignment given as the CLI's text was told only 'full' or 'none'."""

from __future__ import annotations

import re

import pytest


def _selected(html: str, name: str) -> list[str]:
    block = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert block, name
    return re.findall(r'<option value="([^"]*)" selected>', block.group(1))


def test_an_alias_in_a_calculator_link_is_selected_in_the_form(client):
    r = client.get("/", params={"source": "theory", "parameterization": "mf", "optimizer": "Lion", "form": "plain",
                                "lr_mode": "Global", "width": "4096", "base_width": "256", "base_lr": "0.003"})
    assert r.status_code == 200, r.text
    assert _selected(r.text, "parameterization") == ["mean_field"]
    assert _selected(r.text, "optimizer") == ["lion"]
    assert _selected(r.text, "form") == ["multiplier_free"]
    assert _selected(r.text, "lr_mode") == ["global"]
    # on an error page too: the fix resubmits the setup the link named
    r = client.get("/", params={"source": "theory", "parameterization": "mf", "width": "-3"})
    assert r.status_code == 422 and _selected(r.text, "parameterization") == ["mean_field"]


@pytest.mark.parametrize("width", ["4096.0", "4e3", "4.096e3"])
def test_the_calculator_takes_a_whole_number_written_as_a_float(client, width):
    r = client.get("/", params={"source": "theory", "width": width, "base_width": "2.56e2", "base_lr": "0.003"})
    assert r.status_code == 200, r.text
    assert "expected a whole number" not in r.text
    bad = client.get("/", params={"source": "theory", "width": "4096.5", "base_width": "256", "base_lr": "0.003"})
    assert bad.status_code == 422 and "expected a whole number" in bad.text


def test_a_json_alignment_as_text_names_the_object_form(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                           "alignment": "0.75,0.5,0.75", "base": {"width": 256, "beta": 0.003}})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"][-1] == "alignment" and "{alpha, omega, u}" in e["msg"] and "--alignment" in e["msg"], e


def test_the_upload_form_takes_integer_options_written_as_floats(client, sweep):
    import io

    data = sweep.to_csv(index=False).encode()
    r = client.post("/fits", data={"target_width": "4e3", "n_boot": "2e1"},
                    files={"file": ("s.csv", io.BytesIO(data), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    bad = client.post("/fits", data={"target_width": "4e3", "n_boot": "20.5"},
                      files={"file": ("s.csv", io.BytesIO(data), "text/csv")})
    assert bad.status_code == 422 and "n_boot" in bad.text


def test_the_reports_predict_box_takes_a_whole_float_too(client, stored_fit):
    ok = client.get(f"/fits/{stored_fit['id']}", params={"group": "0", "width": "4.096e3"})
    assert ok.status_code == 200, ok.text
    bad = client.get(f"/fits/{stored_fit['id']}", params={"group": "0", "width": "4096.5"})
    assert bad.status_code == 422


def test_an_empty_alignment_is_shown_as_the_full_it_was_answered_with(client):
    r = client.get("/", params={"source": "theory", "alignment": "", "width": "4096", "base_width": "256",
                                "base_lr": "0.003"})
    assert r.status_code == 200
    field = re.findall(r'<input[^>]*name="alignment"[^>]*>', r.text)
    assert field and 'value="full"' in field[0], field
