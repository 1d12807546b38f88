"""Session 60: a user review of fitting a team's own tables. A column that a list option (covariates,
group_cols, ...) names but the table lacks was a 422 at `rows`, not at the option that named it."""

from __future__ import annotations

import pytest


def _rows() -> list[dict]:
    return [{"width": w, "beta": b, "seed": s, "final_loss": 3.0 + (b - 0.01) ** 2, "tokens": 1e8}
            for w in (64, 128) for b in (0.003, 0.01, 0.03) for s in (0, 1)]


@pytest.mark.parametrize("field", ["covariates", "group_cols", "constant_cols"])
def test_a_missing_column_a_list_option_names_is_a_422_at_that_option(client, field):
    r = client.post("/v1/fits", json={"rows": _rows(), field: ["batch_size"]})
    assert r.status_code == 422, r.text
    (e,) = [d for d in r.json()["detail"] if "batch_size" in d["msg"]]
    assert e["loc"] == ["body", field] and "missing column" in e["msg"], e
