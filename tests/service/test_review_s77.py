"""Session 77's review of the REST service: a constants file with a custom alignment read as it is, an empty form
field the default, the error of a fit's several groups at `group`, a compressed body refused by name."""

from __future__ import annotations

import gzip
import io
import json

import pandas as pd
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.theory import Alignment
from tests.helpers import tune_file
from tests.service.conftest import N_BOOT


def _custom_file(tmp_path, alignment: str) -> tuple[str, dict]:
    tuned, path = tune_file(tmp_path)
    body = json.loads(path.read_text())
    body["alignment"] = alignment  # as `tune -a 0.75,0.5,0.75` writes it (TunedConstants.alignment is its text)
    path.write_text(json.dumps(body))
    return str(path), body


def test_a_tuned_file_with_a_custom_alignment_is_read_as_it_is_and_answers_as_the_cli(client, tmp_path):
    path, body = _custom_file(tmp_path, "0.75,0.5,0.75")
    r = client.post("/v1/recommend", json={"tuned": body, "width": 1024})
    assert r.status_code == 200, r.text
    assert r.json()["alignment"] == {"alpha": 0.75, "omega": 0.5, "u": 0.75}
    as_object = client.post("/v1/recommend", json={
        "tuned": {**body, "alignment": {"alpha": 0.75, "omega": 0.5, "u": 0.75}}, "width": 1024})
    assert as_object.status_code == 200 and as_object.json()["layers"] == r.json()["layers"]
    cli = CliRunner().invoke(app, ["recommend", "--constants", path, "-n", "1024", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["layers"] == r.json()["layers"]
    # and the file's text is still checked, at the field
    for bad, words in (("0.75,0.9,0.75", "omega in [0, 1/2]"), ("0.75,0.5", "three numbers")):
        r = client.post("/v1/recommend", json={"tuned": {**body, "alignment": bad}, "width": 1024})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "alignment", r.text
        assert words in r.json()["detail"][0]["msg"], r.text


def test_the_schema_says_the_files_alignment_text_and_every_text_it_allows_is_read():
    import re

    from abcscale.schemas.api import _ALIGNMENT_TEXT, TunedFile

    options = TunedFile.model_json_schema()["properties"]["alignment"]["anyOf"]
    assert {"type": "string", "pattern": _ALIGNMENT_TEXT}.items() <= options[1].items()
    pattern = re.compile(_ALIGNMENT_TEXT)
    for text in ("0.75,0.5,0.75", "2,0,2", " .5 , .25 , 1.999 ", "1.,0.50,0"):
        assert pattern.match(text) and Alignment.parse(text)
    for text in ("2.5,0.5,1", "1,0.51,1", "1,0.6,1", "-1,0.5,1", "1,0.5", "a,b,c"):
        assert not pattern.match(text), text


def _two_setups() -> bytes:
    rows = pd.concat([synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=1.5,
                                      group={"parameterization": p, "optimizer": "adam", "lr_mode": "global"})
                      for p in ("mup", "standard")])
    buf = io.StringIO()
    rows.to_csv(buf, index=False)
    return buf.getvalue().encode()


def test_an_empty_form_field_is_the_default_and_an_empty_list_is_none(client):
    """`-F group_cols=$GROUPS` with the variable unset pooled both setups into one group, as if seeds."""
    table = _two_setups()
    groups = {}
    for sent in ("", "[]", None):
        data = {"n_boot": str(N_BOOT), **({} if sent is None else {"group_cols": sent})}
        r = client.post("/v1/fits", files={"file": ("two.csv", table, "text/csv")}, data=data)
        assert r.status_code == 201, r.text
        groups[sent] = [g["group"].get("parameterization") for g in r.json()["result"]["groups"]]
    assert sorted(groups[""]) == sorted(groups[None]) == ["mup", "standard"]
    assert groups["[]"] == [None]  # asked for: one group


def test_a_fit_of_several_groups_asked_with_no_selector_points_at_group(client):
    r = client.post("/v1/fits", files={"file": ("two.csv", _two_setups(), "text/csv")}, data={"n_boot": str(N_BOOT)})
    assert r.status_code == 201, r.text
    answer = client.post("/v1/recommend", json={"fit_id": r.json()["id"], "width": 1024})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "group"], answer.text


def test_a_compressed_body_is_a_415_naming_its_encoding(client, sweep_rows):
    body = json.dumps({"rows": sweep_rows, "n_boot": N_BOOT}).encode()
    for path, content in (("/v1/fits", body), ("/v1/recommend", json.dumps({"width": 1024, "base": {
            "width": 256, "beta": 0.01}, "parameterization": "mup", "optimizer": "adam"}).encode())):
        for coding, sent in (("gzip", gzip.compress(content)), ("br", content)):
            r = client.post(path, content=sent, headers={"Content-Type": "application/json",
                                                         "Content-Encoding": coding})
            assert r.status_code == 415, (path, coding, r.text)
            assert f"Content-Encoding {coding}" in r.json()["detail"] and r.headers["accept-encoding"] == "identity"
        plain = client.post(path, content=content, headers={"Content-Type": "application/json",
                                                            "Content-Encoding": "identity"})
        assert plain.status_code in (200, 201), plain.text


def test_a_table_sent_as_a_text_field_is_named_so(client):
    """`curl -F 'file=<rows.csv'` (a text field) was answered "Field required", though a `file` field was sent."""
    r = client.post("/v1/fits", data={"file": _two_setups().decode(), "n_boot": str(N_BOOT)},
                    files={"other": ("x.txt", b"", "text/plain")})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "file"], r.text
    assert "sent as a text field" in r.json()["detail"][0]["msg"], r.text


def test_a_non_ascii_idempotency_key_is_echoed_as_sent(client, sweep_rows):
    """HTTP hands header bytes over as Latin-1: the 422 echoed a UTF-8 key `ké` as `kÃ©` (a review)."""
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                    headers=[("Idempotency-Key", "ké".encode())])
    assert r.status_code == 422 and r.json()["detail"][0]["input"] == "ké", r.text
    latin = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                        headers=[("Idempotency-Key", "k\xe9".encode("latin-1"))])  # not UTF-8: as it came
    assert latin.status_code == 422 and latin.json()["detail"][0]["input"] == "k\xe9", latin.text
