"""Session 35's findings: a rule's unknown role is refused with the roles and their aliases (``output`` is
accepted, so the message says so) on every path: REST, the Python API and a rules file."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import GroupRule, Role
from abcscale.usecases.recommend import parse_rules, read_rules

EXAMPLE = {"parameterization": "mup", "optimizer": "adamw", "width": 4096,
           "base": {"width": 256, "beta": 0.003}}


def test_rest_names_the_rule_and_the_aliases(client):
    r = client.post("/v1/recommend", json={**EXAMPLE, "rules": [{"pattern": "lm_head", "role": "outptu"}]})
    assert r.status_code == 422, r.text
    text = r.text
    assert "rules" in text and "'outptu'" in text and "output=readout" in text and "bias=vector" in text
    assert "Value error" not in text
    ok = client.post("/v1/recommend", json={**EXAMPLE, "rules": [{"pattern": "lm_head", "role": "Output"}]})
    assert ok.status_code == 200, ok.text


def test_python_and_files_say_the_same(tmp_path):
    with pytest.raises(ValueError, match=r"rules\[0\]: role: unknown role 'outptu'.*output=readout"):
        parse_rules({"lm_head": "outptu"})
    path = tmp_path / "rules.yaml"
    path.write_text("- {pattern: lm_head, role: outptu}\n")
    with pytest.raises(ValueError, match=r"rules.yaml.*output=readout"):
        read_rules(path)
    assert parse_rules([("lm_head", "output")]) == (GroupRule(pattern="lm_head", role=Role.readout),)


def test_rest_group_numbers_match_and_a_miss_points_at_group(client):
    import json

    import pandas as pd

    from tests.fitting.test_review_s35 import _sweep

    df = pd.concat([_sweep(seeds=1).assign(lr_scale=s) for s in (1.0, 0.5)], ignore_index=True)
    r = client.post("/v1/fits", json={"rows": json.loads(df.to_json(orient="records")),
                                      "group_cols": ["parameterization", "optimizer", "lr_mode", "lr_scale"]})
    assert r.status_code == 201, r.text
    fit_id = r.json()["id"]
    for group in ({"lr_scale": 1}, {"lr_scale": "1.0"}, {"lr_scale": 0.5}):  # JSON's 1 is the table's 1.0
        ok = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 4096, "group": group})
        assert ok.status_code == 200, ok.text
    miss = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 4096, "group": {"lr_scale": 2}})
    assert miss.status_code == 422
    (err,) = miss.json()["detail"]
    assert err["loc"] == ["body", "group"] and err["msg"].startswith("no group matches")


def test_rest_and_python_fits_take_the_theory_setup(client):
    """`abcscale fit -p -o --lr-mode` gave a team's table the columns theory needs; the Python API and REST had
    no way to, so their bands were the free fit's (8 octaves) where the CLI's leaned on theory."""
    import json

    import abcscale
    from tests.fitting.test_review_s35 import _sweep

    df = _sweep().drop(columns=["parameterization", "optimizer", "lr_mode"])
    setup = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    bare = abcscale.fit(df, target_width=4096, n_boot=50)
    given = abcscale.fit(df, target_width=4096, n_boot=50, **setup)
    assert bare.groups[0].theory_exponent is None and bare.groups[0].prediction.method == "free"
    assert given.groups[0].group == setup and given.groups[0].prediction.method == "theory_prior"
    r = client.post("/v1/fits", json={"rows": json.loads(df.to_json(orient="records")), "target_width": 4096,
                                      "n_boot": 50, **setup})
    assert r.status_code == 201, r.text
    assert r.json()["result"]["groups"][0]["group"] == setup
    again = client.post("/v1/fits", json={"rows": json.loads(_sweep().to_json(orient="records")), **setup})
    assert again.status_code == 422 and "has its own parameterization column" in again.text


def test_a_rows_level_422_does_not_echo_the_whole_table(client):
    # (a list cell was the rows-level error here until session 36 read it as JSON text): rows sent as an object
    rows = {str(i): {"width": 64, "beta": 0.01, "final_loss": 3.0, "tags": ["a", "b"]} for i in range(300)}
    r = client.post("/v1/fits", json={"rows": rows})
    assert r.status_code == 422
    assert len(r.content) < 20_000  # 300 rows echoed per error were about 60 kB
    assert all(len(repr(e.get("input"))) <= 2_100 for e in r.json()["detail"])


def test_python_mapping_takes_comma_lists_as_rest_and_the_cli_do():
    import abcscale
    from tests.fitting.test_review_s35 import _families

    fit = abcscale.fit(_families(), mapping={"group_cols": "parameterization, optimizer,lr_mode,family"}, n_boot=20)
    assert [g.group["family"] for g in fit.groups] == ["gpt-a", "gpt-b"]


def test_a_long_string_is_not_echoed_either(client):
    r = client.post("/v1/fits", json={"rows": "x" * 100_000})
    assert r.status_code == 422 and len(r.content) < 5_000
    assert "a string of 100000 characters, not echoed" in r.text
