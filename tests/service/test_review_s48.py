"""Session 48: a README review. A `tuned` body that says its setup (`parameterization`, `optimizer`,
`alignment`), as the route table and `recommend --constants -p -o -a` allow, was a 422 `extra_forbidden`."""

from __future__ import annotations

import pytest

TUNED = {"kind": "abcscale.tuned-constants", "parameterization": "mup", "optimizer": "adam", "alignment": "full",
         "lr_mode": "per_layer", "base_width": 64, "beta": 0.003, "constants": {}}


def test_a_tuned_body_may_say_its_files_setup(client):
    plain = client.post("/v1/recommend", json={"width": 1024, "tuned": TUNED})
    assert plain.status_code == 200, plain.text
    said = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "alignment": "full",
                                              "width": 1024, "tuned": TUNED})
    assert said.status_code == 200, said.text
    assert said.json() == plain.json()


@pytest.mark.parametrize(("field", "value", "file"), [("parameterization", "standard", "mup"),
                                                      ("optimizer", "sgd", "adam"), ("alignment", "none", "full")])
def test_a_tuned_body_naming_another_setup_is_refused_at_the_field(client, field, value, file):
    res = client.post("/v1/recommend", json={field: value, "width": 1024, "tuned": TUNED})
    assert res.status_code == 422, res.text
    (err,) = res.json()["detail"]
    assert err["loc"] == ["body", field]
    assert f"tuned for {file}, not {value}" in err["msg"]


def test_a_tuned_bodys_alignment_is_compared_by_its_numbers(client):
    """A code review: the alignment as numbers equal to the file's `full` (1, 1/2, 1) was refused by its name."""
    res = client.post("/v1/recommend", json={"alignment": {"alpha": 1, "omega": 0.5, "u": 1}, "width": 1024,
                                             "tuned": TUNED})
    assert res.status_code == 200, res.text
    res = client.post("/v1/recommend", json={"alignment": {"alpha": 1, "omega": 0.5, "u": 0.75}, "width": 1024,
                                             "tuned": TUNED})
    assert res.status_code == 422 and "tuned for full, not 1,0.5,0.75" in res.json()["detail"][0]["msg"]
