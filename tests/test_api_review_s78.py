"""A notebook user's review of the Python API (session 78): numbers read from a DataFrame (numpy scalars and arrays)
refused where plain ones pass, and a fit's one-line summary saying other counts and levels in Python than
`abcscale fit --summary` for the same fit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def axes_fit():
    table = pd.read_csv(EXAMPLES / "axes.csv")
    fit = abcscale.fit(table, mapping={"size_col": "N", "size_kind": "params", "covariates": ["D", "batch_size"]},
                       n_boot=50)
    return table, fit


def test_predict_at_takes_numpy_numbers_as_fit_does(axes_fit):
    table, fit = axes_fit
    batch = table["batch_size"].max()  # np.int64, as a DataFrame gives it
    assert isinstance(batch, np.integer)
    plain = abcscale.predict(fit, 2e9, at={"D": 4e10, "batch_size": int(batch)})
    for d, b in ((np.float32(4e10), batch), (np.float64(4e10), np.int32(batch))):
        got = abcscale.predict(fit, 2e9, at={"D": d, "batch_size": b})
        assert got.lr == pytest.approx(plain.lr, rel=1e-6)  # float32's 4e10 is 4e10 to 7 digits
    for bad in (True, np.bool_(True), "4e10", np.float64("nan")):
        with pytest.raises(ValueError, match=r"at: D: expected a (positive )?number"):
            abcscale.predict(fit, 2e9, at={"D": bad})


def test_from_mup_takes_a_numpy_array_per_role_as_a_list():
    as_list = abcscale.from_mup("adam", base_width=256, lr=[1e-3, 2e-3, 3e-3, 4e-3], init_std=[1.0, 0.02, 0.02])
    as_array = abcscale.from_mup("adam", base_width=256, lr=np.array([1e-3, 2e-3, 3e-3, 4e-3]),
                                 init_std=np.array([1.0, 0.02, 0.02]))
    assert as_array.model_dump() == as_list.model_dump()
    one = abcscale.from_mup("adam", base_width=256, lr=np.float64(1e-3))
    assert one.model_dump() == abcscale.from_mup("adam", base_width=256, lr=1e-3).model_dump()


@pytest.fixture(scope="module")
def tour_fits():
    table = str(EXAMPLES / "tour-sweep.parquet")
    return {level: abcscale.fit(table, target_width=1024, n_boot=100, confidence_level=level) for level in (0.95, 0.9)}


def _cli_summary(level: float) -> list[str]:
    res = CliRunner().invoke(app, ["fit", str(EXAMPLES / "tour-sweep.parquet"), "--target-width", "1024", "--n-boot",
                                   "100", "--confidence-level", str(level), "--summary"])
    assert res.exit_code == 0, res.output
    return res.stdout.splitlines()


def test_a_groups_summary_counts_its_warnings_as_the_cli_does(tour_fits):
    fit = tour_fits[0.95]
    # the group whose prediction restates its own "no identified optimum" note: counted twice before
    restating = [g for g in fit.groups if g.prediction is not None and len(g.said_warnings())
                 < len(g.warnings) + len(g.prediction.warnings)]
    assert restating, "the example no longer has a group whose prediction restates a note"
    lines = _cli_summary(0.95)
    for g in fit.groups:
        n = len(g.said_warnings())
        assert g.summary().endswith(f"; {n} warning{'' if n == 1 else 's'}")
        label = " ".join(str(v) for k, v in g.group.items() if k != "optimizer_variant")  # the CLI's label
        row = next(line for line in lines if line.startswith(label) and "theory" in line)
        assert re.search(rf"\b{n} warnings?$", row.rstrip()), (row, n)


def test_the_cli_summary_gives_the_prediction_at_the_fits_level(tour_fits):
    fit = tour_fits[0.9]
    lines = _cli_summary(0.9)
    answers = [line for line in lines if "at width 1024:" in line]
    assert answers and all(", 90% [" in line and "95%" not in line for line in answers), answers
    for g in fit.groups:
        if g.prediction is not None:
            p = g.prediction
            assert "90% CI" in g.summary()
            assert any(f"{p.lr:.4g}, 90% [{p.ci.low:.4g}, {p.ci.high:.4g}]" in line for line in answers), answers


def test_numpy_numbers_are_an_alignment_and_a_bad_out_dir_is_named(tmp_path):
    """A list of an array's items was read as three alignments ("got np.float32(1.0)"); `sweep(spec, None)` was
    pathlib's TypeError and a file's path NotADirectoryError on OUT/cells, neither naming out_dir."""
    plain = abcscale.theory_table("mup", "adam", [1.0, 0.5, 0.5])
    for given in (list(np.array([1, 0.5, 0.5], dtype=np.float32)), (np.int64(1), 0.5, np.float32(0.5))):
        assert abcscale.theory_table("mup", "adam", given) == plain
    afile = tmp_path / "a.toml"
    afile.write_text('model = "mlp"\n')
    for out, said in ((None, "out_dir: expected the path of a folder, got None"),
                      ("", "out_dir: expected the path of a folder, got ''"),
                      (afile, f"out_dir: {afile} is a file, not a folder")):
        with pytest.raises(ValueError, match=re.escape(said)):
            abcscale.sweep('model = "mlp"\nwidths = [8]\n', out)


def test_the_optax_export_of_a_constants_file_checks_width_and_form_in_one_line(tmp_path):
    """A constants file (`mup import --json`, a tune file) at width 0 or "32", or in form "plainn", was a
    multi-line pydantic error about AnalyticRecommend."""
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from abcscale import optax as ao
    from tests.helpers import tune_file

    imported = tmp_path / "imp.json"
    imported.write_text(abcscale.from_mup("adamw", base_width=8, lr=1e-3, weight_decay=0.1).model_dump_json())
    _, tuned = tune_file(tmp_path)
    params = {"embed": {"embedding": jnp.zeros((16, 32))}, "mlp": {"up": {"kernel": jnp.zeros((32, 128))}},
              "lm_head": {"kernel": jnp.zeros((32, 16))}}
    for file in (imported, tuned):
        assert ao.lr_tree(str(file), params, width=32)  # as before
        for kw, said in ((dict(form="plainn"), "form: unknown form 'plainn'"), (dict(width=0), "width: expected a "
                         "positive whole number"), (dict(width="32"), "width: expected a positive whole number")):
            with pytest.raises(ValueError) as raised:
                ao.lr_tree(str(file), params, **{"width": 32, **kw})
            assert str(raised.value).startswith(said.split(" '")[0]) and said in str(raised.value)
            assert "\n" not in str(raised.value) and "AnalyticRecommend" not in str(raised.value)


def test_tunes_errors_name_its_arguments_and_it_takes_mups_optimizer_names():
    """`search=["gama"]` said `tune[0]:`, `"mupp"` said `parameterizations:`, and `optimizer="MuAdam"`, which
    recommend takes, was refused by the runner's list."""
    pytest.importorskip("optuna")
    for kw, said in ((dict(search=["gama"]), "search: Input should be"),
                     (dict(parameterization="mupp"), "parameterization: unknown parameterization 'mupp'"),
                     (dict(optimizer="MuAdam", search=["gama"]), "search: Input should be")):  # MuAdam: read
        args = {"parameterization": "mup", "optimizer": "adam", **kw}
        with pytest.raises(ValueError) as raised:
            abcscale.tune(args.pop("parameterization"), args.pop("optimizer"), base_width=8, model="mlp", steps=3,
                          trials=1, **args)
        assert str(raised.value).startswith(said), raised.value
