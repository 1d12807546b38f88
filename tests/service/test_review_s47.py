"""Session 47, a platform engineer's review of the service: a JSON body sent without a Content-Type header
(``requests.post(url, data=json.dumps(body))``) is read as JSON on every route, as POST /v1/fits read it; the
recommend and theory routes answered a 422 blaming the body ("give exactly one of base ... fit_id", "Input should
be a valid dictionary")."""

from __future__ import annotations

import json

import pytest

BODY = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base": {"width": 64, "beta": 3e-3}}


@pytest.mark.parametrize(("url", "body"), [
    ("/v1/recommend", BODY),
    ("/v1/theory/convert", {"optimizer": "adam", "from": "mup", "to": "standard", "width": 1024,
                            "base_width": 64, "base_lr": 3e-3}),
])
def test_a_json_body_without_a_content_type_is_json(client, url, body):
    bare = client.post(url, content=json.dumps(body).encode())
    assert "content-type" not in {k.lower() for k in bare.request.headers}  # sent as requests' data= sends it
    typed = client.post(url, json=body)
    assert typed.status_code == 200, typed.text
    assert bare.status_code == 200, bare.text
    assert bare.json() == typed.json()


def test_a_body_that_is_no_json_still_says_so(client):
    r = client.post("/v1/recommend", content=b"parameterization=mup")
    assert r.status_code == 422 and "json" in r.text.lower(), r.text


def test_a_group_selection_error_points_at_the_field_at_fault(client):
    """A fit of mup + adam and standard + adam, global: `parameterization: ntk` (with optimizer and lr_mode
    right) pointed at `lr_mode` (the first selecting field in name order), and an ambiguous selection at
    `optimizer`, neither of which was wrong."""
    import pandas as pd

    from abcscale.fitting.synthetic import synthetic_sweep

    table = pd.concat([synthetic_sweep((64, 128, 256), seeds=2, group={"parameterization": p, "optimizer": "adam",
                                                                        "lr_mode": "global", "depth": d}, seed=i)
                       for i, (p, d) in enumerate((("mup", 1), ("standard", 1), ("mup", 2)))], ignore_index=True)
    posted = client.post("/v1/fits", json={"rows": json.loads(table.to_json(orient="records")), "n_boot": 30})
    assert posted.status_code == 201, posted.text
    fit_id = posted.json()["id"]
    wrong = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "ntk",
                                               "optimizer": "adam", "lr_mode": "global"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "parameterization"], wrong.text
    several = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "mup",
                                                 "optimizer": "adam", "lr_mode": "global"})
    assert several.status_code == 422 and several.json()["detail"][0]["loc"] == ["body", "group"], several.text
    picked = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "parameterization": "mup",
                                                "optimizer": "adam", "lr_mode": "global", "group": {"depth": 2}})
    assert picked.status_code == 200, picked.text


def test_recommend_from_a_bare_fit_names_the_lr_mode_flag(tmp_path):
    """`recommend --fit` of a table without an lr_mode column said `lr_mode:`, not the flag `--lr-mode`."""
    from typer.testing import CliRunner

    from abcscale.cli import app
    from abcscale.fitting import fit_table
    from abcscale.fitting.synthetic import synthetic_sweep

    (tmp_path / "fit.json").write_text(fit_table(synthetic_sweep((64, 128, 256), seeds=2), n_boot=30)
                                       .model_dump_json())
    res = CliRunner().invoke(app, ["recommend", "--fit", str(tmp_path / "fit.json"), "--width", "1024", "-p", "mup",
                                   "-o", "adam"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --lr-mode: the fit's table has no lr_mode"), res.output
