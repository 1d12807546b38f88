"""Session 58: a library user's review. `rec["embedding"]` on a recommendation asked in the multiplier_free (or
mup) form returned the abc form's numbers in silence (a plain model's embedding LR 32x too small at 1024 over 256)."""

from __future__ import annotations

import pytest

import abcscale


@pytest.mark.parametrize("form", ["multiplier_free", "plain", "mup"])
def test_indexing_a_recommendation_in_another_form_is_refused(form):
    rec = abcscale.recommend("mup", "adamw", width=1024, base_width=256, beta=3e-3, weight_decay=0.1, form=form)
    with pytest.raises(ValueError, match=r"is in the (multiplier_free|mup) form, and rec\['embedding'\] would be"):
        rec["embedding"]
    abc = rec.abc_setting("embedding")  # the abc numbers stay reachable, by name
    assert abc == next(s for s in rec.layers if s.layer.value == "embedding")
    assert rec.groups["embedding"].lr != pytest.approx(abc.lr)  # they differ: that is the point


def test_the_abc_form_indexes_as_before():
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3)
    assert rec["hidden"].lr == pytest.approx(7.5e-4) and rec["hidden"] == rec.abc_setting("hidden")


# --- the Python API's rough edges (a library user's review, session 58) ---

GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


@pytest.fixture(scope="module")
def table():
    from abcscale.fitting.synthetic import synthetic_sweep

    return synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0, group=GROUP)


def test_an_lr_schedule_passed_as_the_multiplier_is_warned():
    # it multiplies every role's LR: an optax LR schedule peaking at 3e-3 made every LR ~300x too small, unsaid
    import warnings

    jnp = pytest.importorskip("jax.numpy")
    optax = pytest.importorskip("optax")
    from abcscale import optax as abcoptax

    spec = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=3e-3, form="multiplier_free").groups
    params = {"wte": jnp.zeros((100, 256)), "h": jnp.zeros((256, 256)), "lm_head": jnp.zeros((256, 100))}
    with pytest.warns(UserWarning, match=r"^schedule: its largest value .* is 0\.003.*divide it by its peak"):
        abcoptax.transform(spec, params, schedule=optax.warmup_cosine_decay_schedule(0.0, 3e-3, 10, 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a multiplier (peak 1) is what it takes: no warning
        abcoptax.transform(spec, params, schedule=optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 1000))


def test_predict_is_typed_by_at():
    # `predict(fit, w).safe_lr` failed type checking: the one signature returned Prediction | JointPrediction
    import typing

    from abcscale import _api

    overloads = typing.get_overloads(_api.predict)
    assert [(o.__annotations__["at"], o.__annotations__["return"]) for o in overloads] == [
        ("None", "Prediction"), ("Mapping[str, float] | Literal['bases']", "JointPrediction")]


def test_the_module_getattr_is_hidden_from_type_checkers():
    # visible, it made every name resolve for mypy: `abcscale.recomend(...)` passed type checking
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(abcscale))
    guarded = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "not TYPE_CHECKING"]
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    assert any(isinstance(f, ast.FunctionDef) and f.name == "__getattr__" for n in guarded for f in n.body)
    with pytest.raises(AttributeError, match="no attribute 'recomend'"):
        abcscale.recomend  # noqa: B018
    assert abcscale.Layer.hidden.value == "hidden"  # the lazy names still load


def test_a_groupby_result_is_told_to_reset_its_index(table):
    # the keys move into the index, where the fitter does not look: "missing column" alone sent a user to the CSV
    from abcscale.fitting import TableError

    means = table.groupby(["parameterization", "optimizer", "lr_mode", "width", "beta"]).mean(numeric_only=True)
    with pytest.raises(TableError, match=r"width, beta: in the DataFrame's index, not its columns .*df\.reset_index"):
        abcscale.fit(means, n_boot=20)
    assert abcscale.fit(means.reset_index(), n_boot=20).groups


def test_row_numbers_say_the_index_label_of_a_filtered_frame(table):
    # rows are counted by position (df.iloc); a filtered frame's df.loc[7] is another row
    import pandas as pd

    from abcscale.fitting import TableError

    shifted = table.astype({"width": float}).set_axis(table.index + 100)
    shifted.iloc[7, shifted.columns.get_loc("width")] = 1.5
    with pytest.raises(TableError, match=r"row\(s\) 7 \(positions, as df\.iloc counts them; this DataFrame's index "
                                         r"labels differ: row 7 is label 107\);"):
        abcscale.fit(shifted, n_boot=20)
    copied = pd.concat([table, table.iloc[[3]]])  # a repeated run: a warning naming row 72, label 3
    said = [w for w in abcscale.fit(copied, n_boot=20).warnings if "repeated runs" in w]
    assert len(said) == 1 and "row(s) 72 (positions, as df.iloc counts them; " in said[0] \
        and "row 72 is label 3)" in said[0]
    plain = abcscale.fit(copied.reset_index(drop=True), n_boot=20).warnings  # the default index: as before
    assert not any("positions" in w for w in plain)


def test_in_names_a_recommendations_layers_and_hash_says_why_not():
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3)
    assert "hidden" in rec and "hid" in rec and abcscale.Layer.readout in rec  # as rec["hid"] takes them
    assert "vector" not in rec and "nope" not in rec and 3 not in rec
    assert "embedding" in abcscale.convert("adam", "mup", "sp", width=1024, base_width=256).source
    with pytest.raises(TypeError, match=r"^a Recommendation is not hashable \(it holds lists\)$"):
        hash(rec)


def test_abcscale_optax_without_optax_names_the_runner_extra():
    import subprocess
    import sys

    code = ("import sys\nsys.modules['optax'] = None\n"
            "try:\n    from abcscale import optax\nexcept ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError abcscale.optax needs the runner extra") \
        and "pip install 'abcscale[runner]'" in out.stdout


def test_convert_says_its_default_epsilon_is_not_recommends():
    # the source setting's epsilon is 1e-8 on every layer unless given; recommend's is per layer
    doc = " ".join(abcscale.convert.__doc__.split())
    assert "1e-8 on every layer" in doc and "epsilon={s.layer.value: s.epsilon for s in rec.layers}" in doc
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3)
    given = abcscale.convert("adam", "mup", "sp", width=1024, base_width=256, beta=3e-3,
                             epsilon={s.layer.value: s.epsilon for s in rec.layers})
    assert [s.epsilon for s in given.source.layers] == [s.epsilon for s in rec.layers]
