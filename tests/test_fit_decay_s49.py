"""A fit keeps the weight decay its runs trained with, and recommend carries it (a review, session 49): the runner
records the base width's decay (`base_weight_decay`, with `weight_decay_mode`), but the fit dropped it, so
`recommend --fit` gave no decay, or another one, without a word, though the fitted LR is the optimum under the
decay the sweep trained with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.theory import Constants
from abcscale.usecases.recommend import recommend_from_fit

GROUP = {"parameterization": "mup", "optimizer": "sgd", "alignment": "full", "lr_mode": "per_layer"}


def _table(optimizer: str = "sgd", decay: float | None = 0.01, mode: str = "coupled") -> pd.DataFrame:
    df = synthetic_sweep((64, 128, 256), exponent=0.0, lr_base=0.1, seeds=2, group={**GROUP, "optimizer": optimizer})
    if decay is not None:
        df = df.assign(base_weight_decay=decay, weight_decay_mode=mode)
    return df


def test_the_fit_records_the_decay_its_group_trained_with():
    g = fit_table(_table(), n_boot=20).groups[0]
    assert (g.weight_decay, g.weight_decay_mode) == (0.01, "coupled")
    assert fit_table(_table(decay=None), n_boot=20).groups[0].weight_decay is None  # a table that does not say
    df = _table()
    df.loc[df["width"] == 64, "base_weight_decay"] = np.nan  # a resumed sweep's cells from before the column
    assert fit_table(df, n_boot=20).groups[0].weight_decay == 0.01
    df.loc[df["width"] == 64, "base_weight_decay"] = 0.5  # two decays in one group: none is the group's
    assert fit_table(df, n_boot=20).groups[0].weight_decay is None


def _hidden_decay(rec) -> float | None:
    return next(s.weight_decay for s in rec.layers if s.layer.value == "hidden")


def test_recommend_carries_the_fits_decay_and_says_when_told_another():
    fit = fit_table(_table(), n_boot=20)
    carried = recommend_from_fit(fit, 1024)
    assert _hidden_decay(carried) == pytest.approx(0.01) and carried.weight_decay_mode.value == "coupled"
    assert any(w.startswith("weight_decay from the fit: 0.01 (coupled)") for w in carried.warnings)
    same = recommend_from_fit(fit, 1024, constants=Constants(weight_decay=0.01))
    assert _hidden_decay(same) == pytest.approx(0.01) and not any("weight_decay" in w for w in same.warnings)
    other = recommend_from_fit(fit, 1024, constants=Constants(weight_decay=0.5, weight_decay_mode="independent"))
    assert _hidden_decay(other) == pytest.approx(0.5)
    assert any("trained with 0.01 (coupled)" in w and "0.5 (independent) may move it" in w for w in other.warnings)
    none = recommend_from_fit(fit, 1024, constants=Constants(weight_decay=0.0))
    assert _hidden_decay(none) is None and any("and none may move it" in w for w in none.warnings)
    # the Python API's recommend(fit=...) reads it the same way
    api = abcscale.recommend(fit=fit, width=1024)
    assert _hidden_decay(api) == pytest.approx(0.01)


def test_a_fit_without_a_decay_and_an_optimizer_without_one_change_nothing():
    plain = recommend_from_fit(fit_table(_table(decay=None), n_boot=20), 1024)
    assert _hidden_decay(plain) is None and not any("weight_decay" in w for w in plain.warnings)
    # an adamw sweep without a decay (0 recorded): 0 carried, and said; adam takes none at all
    zero = recommend_from_fit(fit_table(_table("adamw", 0.0), n_boot=20), 1024)
    assert _hidden_decay(zero) == 0
    assert [w for w in zero.warnings if "weight_decay" in w] == [
        "weight_decay from the fit: 0: its runs trained without one (the fitted LR is the optimum there; give "
        "weight_decay to say another)"]
    adam = recommend_from_fit(fit_table(_table("adam"), n_boot=20), 1024)
    assert _hidden_decay(adam) is None


def test_check_against_a_fit_checks_the_decay_its_runs_trained_with(tmp_path):
    """`check --fit` said "weight_decay from the fit: 0.01" and, two lines on, "not checked, the reference has none";
    the fit's decay is the reference now (a review, session 49)."""
    import json

    import yaml
    from typer.testing import CliRunner

    from abcscale.cli import app

    fit = fit_table(_table(), n_boot=20)
    (tmp_path / "fit.json").write_text(fit.model_dump_json())
    rec = recommend_from_fit(fit, 512)
    lr = {s.layer.value: s.lr for s in rec.layers}
    cfg = {"parameterization": "mup", "optimizer": "sgd", "width": 512, "lr_mode": "per_layer", "lr": lr,
           "weight_decay": {"embedding": 0.01, "hidden": 0.01, "readout": 0.01}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    res = runner.invoke(app, ["check", str(path), "--fit", str(tmp_path / "fit.json"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {c["setting"] for c in out["checks"]} >= {"weight_decay"}
    assert not any("the reference has none" in w for w in out["warnings"])
    path.write_text(yaml.safe_dump(cfg | {"weight_decay": {"embedding": 0.01, "hidden": 0.3, "readout": 0.01}}))
    res = runner.invoke(app, ["check", str(path), "--fit", str(tmp_path / "fit.json"), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["failed"] == ["weight_decay (hidden) too high"]


def test_a_decay_given_without_its_mode_is_read_in_the_fits_mode():
    """A code review: `--weight-decay 0.01` on a fit trained with 0.01 independent applied it coupled (16x the
    hidden decay at 16x the width), unsaid; a mode given without a decay carried the fit's value under it."""
    fit = fit_table(_table(mode="independent"), n_boot=20)
    same = recommend_from_fit(fit, 1024, constants=Constants(weight_decay=0.01))
    assert same.weight_decay_mode.value == "independent" and _hidden_decay(same) == pytest.approx(0.01)
    assert not any("weight_decay" in w for w in same.warnings)
    other = recommend_from_fit(fit, 1024, constants=Constants(weight_decay_mode="coupled"))
    assert other.weight_decay_mode is None and not _hidden_decay(other)  # sgd without a decay carries none
    assert any("trained with 0.01 (independent)" in w and "and none may move it" in w for w in other.warnings)


@pytest.mark.parametrize(("column", "value"), [("weight_decay_mode", "decoupled"), ("base_weight_decay", -0.1),
                                               ("base_weight_decay", np.inf), ("base_weight_decay", True)])
def test_a_decay_the_fit_cannot_read_is_not_carried(column, value):
    """Unreadable values (a mode not coupled/independent, a negative or infinite decay, a flag) made recommend from
    the fit fail with a message that did not name the fit, and `fit --target-width` dropped the layers unsaid."""
    df = _table().assign(**{column: value})
    fit = fit_table(df, n_boot=20)
    assert fit.groups[0].weight_decay is None
    assert _hidden_decay(recommend_from_fit(fit, 1024)) is None


def test_modes_are_read_as_the_enum_names_and_a_mixed_or_absent_mode_carries_nothing():
    assert fit_table(_table(mode="Independent"), n_boot=20).groups[0].weight_decay_mode == "independent"
    df = _table()
    df.loc[df["width"] == 64, "weight_decay_mode"] = "independent"
    assert fit_table(df, n_boot=20).groups[0].weight_decay is None
    assert fit_table(_table().drop(columns="weight_decay_mode"), n_boot=20).groups[0].weight_decay is None


def test_a_resumed_sweeps_older_rows_do_not_read_as_another_configuration():
    """Rows committed before the column (NaN) beside new seeds of the same cells (0.01): the decay is read, and the
    group is not flagged as mixing configurations (which made its band unreliable)."""
    df = synthetic_sweep((64, 128, 256), exponent=0.0, lr_base=0.1, seeds=4, group=GROUP)
    df = df.assign(base_weight_decay=np.where(df["seed"] < 2, np.nan, 0.01), weight_decay_mode="coupled")
    g = fit_table(df, n_boot=20).groups[0]
    assert g.weight_decay == 0.01 and g.mixed_columns == []


def test_check_against_a_service_fit_carries_the_decay_as_a_local_check_does(tmp_path, request):
    """`check --service` sent every constant, its unset weight_decay 0 too, so the service read a decay given (0)
    and checked nothing where a local `check --fit` checked the fit's decay (a code review)."""
    import json

    import httpx
    import yaml
    from typer.testing import CliRunner

    from abcscale.cli import app
    from tests.usecases.test_check_service import shared_service

    df = _table()
    fit = fit_table(df, n_boot=20)
    lr = {s.layer.value: s.lr for s in recommend_from_fit(fit, 512).layers}
    cfg = {"parameterization": "mup", "optimizer": "sgd", "width": 512, "lr_mode": "per_layer", "lr": lr,
           "weight_decay": {"embedding": 0.01, "hidden": 0.3, "readout": 0.01}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    (tmp_path / "fit.json").write_text(fit.model_dump_json())
    runner = CliRunner()
    local = runner.invoke(app, ["check", str(path), "--fit", str(tmp_path / "fit.json"), "--json"])
    url = shared_service(request)
    rows = json.loads(df.to_json(orient="records"))
    posted = httpx.post(f"{url}/v1/fits", json={"rows": rows, "n_boot": 20}, timeout=120)
    assert posted.status_code == 201, posted.text
    remote = runner.invoke(app, ["check", str(path), "--service", url, "--fit-id", posted.json()["id"], "--json"])
    assert local.exit_code == remote.exit_code == 1, (local.output, remote.output)
    failed = ["weight_decay (hidden) too high"]
    assert json.loads(local.stdout)["failed"] == json.loads(remote.stdout)["failed"] == failed
