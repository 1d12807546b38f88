"""A review of the Python API with hostile arguments (session 81): errors that named no argument or the wrong one,
a message said twice, nonsense taken (strict="no", a numeric string in constants, a subnormal confidence level),
a 0-d array refused, and a tune's diverged trials unsaid in Python."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import abcscale

jnp = pytest.importorskip("jax.numpy")
abcoptax = pytest.importorskip("abcscale.optax")

TREE = {"w": jnp.ones((4, 4))}
TOUR = "examples/tour-sweep.parquet"


@pytest.fixture(scope="module")
def spec():
    return abcscale.recommend("mup", "adam", width=64, base_width=16, beta=1e-3).groups


@pytest.fixture(scope="module")
def imported():
    return abcscale.from_mup("adam", base_width=16, lr=1e-3)


@pytest.mark.parametrize("width", [None, 64])
def test_optax_says_a_missing_spec_file_as_the_file(tmp_path, width):
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=r"^spec: no such file .*nope\.json$"):
        abcoptax.labels(str(missing), TREE, width=width)


def test_optax_says_a_bad_form_as_form(spec, imported):
    for given in (spec, imported):
        with pytest.raises(ValueError, match=r"^form: unknown form 'nonsense'"):
            abcoptax.labels(given, TREE, width=64, form="nonsense")


def test_a_spec_and_from_mup_take_the_same_widths(spec, imported):
    for given in (spec, imported):
        for bad in (-1, 0, 64.5, True, "64"):
            with pytest.raises(ValueError, match=r"^width: expected a positive whole number \(at most 2\*\*40"):
                abcoptax.labels(given, TREE, width=bad)
        # 64.0 is 64 at both doors: past the width check, to the tree's own (4 wide, not 64)
        with pytest.raises(ValueError, match=r"not the spec's 64"):
            abcoptax.labels(given, TREE, width=64.0)
        # and every form recommend() takes (the first check refused these where the spec's own width passed: a review)
        import decimal

        import jax.numpy as jnp
        import numpy as np

        for same in (np.float32(64.0), decimal.Decimal("64"), np.array(64), jnp.array(64), jnp.float32(64)):
            with pytest.raises(ValueError, match=r"not the spec's 64"):
                abcoptax.labels(given, TREE, width=same)


def test_tune_says_a_fractional_base_width_once():
    with pytest.raises(ValueError) as raised:
        abcscale.tune("mup", "adam", base_width=16.5)
    assert str(raised.value).count("base_width:") == 1, raised.value


@pytest.mark.parametrize("bare", [1.0, 3])
def test_a_bare_number_as_params_is_said_as_params(spec, bare):
    with pytest.raises(ValueError, match=r"^params: one bare (float|int) .*not a tree of arrays"):
        abcoptax.labels(spec, bare)


def test_load_fit_says_an_empty_path_as_empty():
    with pytest.raises(ValueError, match=r"^fit: the path is empty"):
        abcscale.load_fit("")


@pytest.mark.parametrize("flag", ["no", 0, None, "False"])
def test_strict_takes_true_or_false_only(flag, tour_fit):
    with pytest.raises(ValueError, match=r"^strict: expected True or False"):
        abcscale.recommend("mup", "adam", width=64, base_width=16, beta=1e-3, strict=flag)
    with pytest.raises(ValueError, match=r"^strict: expected True or False"):  # its sibling too (a review)
        abcscale.recommend_from_fit(tour_fit, 1024, group="parameterization=mup,lr_mode=per_layer", strict=flag)


def test_recommend_from_fit_refuses_a_numeric_string_in_constants_too(tour_fit):
    with pytest.raises(ValueError, match=r"^constants \(epsilon\): a number, not a string"):
        abcscale.recommend_from_fit(tour_fit, 1024, group="parameterization=mup,lr_mode=per_layer",
                                    constants={"epsilon": "1e-8"})
    assert abcscale.recommend_from_fit(tour_fit, 1024, group="parameterization=mup,lr_mode=per_layer",
                                       constants={"epsilon": 1e-8}, strict=False).band is not None


def test_a_numeric_string_in_constants_is_refused_as_convert_refuses_it():
    with pytest.raises(ValueError, match=r"^weight_decay: Input should be a number"):
        abcscale.convert("adamw", "mup", "sp", width=64, base_width=16, weight_decay="0.1")
    for key in ("epsilon", "weight_decay"):
        with pytest.raises(ValueError, match=rf"^constants \({key}\): a number, not a string"):
            abcscale.recommend("mup", "adamw", width=64, base_width=16, beta=1e-3, constants={key: "1e-8"})
    # Python's per-layer forms stay
    assert abcscale.recommend("mup", "adam", width=64, base_width=16, beta=1e-3, constants={"gamma": "1,2,1"})


def test_a_short_alignment_tuple_is_said_as_a_triple():
    with pytest.raises(ValueError) as raised:
        abcscale.theory_table(alignment=(1, 1))
    said = str(raised.value)
    assert "a triple (alpha, omega, u)" in said and "(1, 1)" in said and "got 1\n" not in said + "\n", said


@pytest.fixture(scope="module")
def tour_fit():
    return abcscale.fit(TOUR, n_boot=20)


def test_predict_takes_a_0d_array_as_a_width(tour_fit):
    group = "parameterization=mup,lr_mode=per_layer"
    want = abcscale.predict(tour_fit, 1024, group=group).lr
    assert abcscale.predict(tour_fit, np.array(1024), group=group).lr == want
    assert abcscale.predict(tour_fit, np.array(1024.0), group=group).lr == want
    with pytest.raises(ValueError, match=r"^width: must be a whole number"):
        abcscale.predict(tour_fit, np.array(1024.5), group=group)


@pytest.mark.parametrize("level", [1e-320, 1e-300, 0.001])
def test_fit_refuses_a_confidence_level_below_its_floor(level):
    with pytest.raises(ValueError, match=r"^confidence_level: Input should be greater than or equal to 0\.01"):
        abcscale.fit(TOUR, n_boot=20, confidence_level=level)


def test_true_as_a_width_is_said_in_one_wording():
    said = set()
    for kw in (dict(width=True, base_width=16), dict(width=64, base_width=True)):
        with pytest.raises(ValueError) as raised:
            abcscale.recommend("mup", "adam", beta=1e-3, **kw)
        said.add(str(raised.value).partition(": ")[2])
    assert said == {"Input should be a number, not true/false"}, said


class _NaNAboveOnePercent:
    """The tuner's evaluator with no training: a beta above 0.01 diverges to NaN (its trial FAIL)."""

    def __init__(self, spec):
        self.data_hash, self.runs, self.diverged = "x", 0, 0

    def __call__(self, constants, beta, seed):
        self.runs += 1
        if beta > 0.01:
            self.diverged += 1
            return float("nan")
        return (math.log(beta) + 7) ** 2


def test_tune_warns_of_its_diverged_trials(monkeypatch):
    pytest.importorskip("optuna")
    import abcscale.runner.tune as runner_tune

    monkeypatch.setattr(runner_tune, "Evaluator", _NaNAboveOnePercent)
    with pytest.warns(UserWarning, match=r"^tune: \d+ trials? diverged \(mean loss NaN") as caught:
        tuned = abcscale.tune("mup", "adam", base_width=16, search=(), trials=8, reeval_seeds=1, top=1,
                              beta_range=(1e-4, 1.0), model="mlp")
    failed = [t for t in tuned.history if t.state == "FAIL"]
    said = [w for w in caught if str(w.message).startswith("tune: ")]
    assert failed and len(said) == 1 and str(said[0].message).startswith(f"tune: {len(failed)} trial")
    assert said[0].filename == __file__  # the caller's line


def test_tune_warns_of_nothing_when_no_trial_diverged(monkeypatch):
    pytest.importorskip("optuna")
    import abcscale.runner.tune as runner_tune

    monkeypatch.setattr(runner_tune, "Evaluator", _NaNAboveOnePercent)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="tune: ")
        abcscale.tune("mup", "adam", base_width=16, search=(), trials=3, reeval_seeds=1, top=1,
                      beta_range=(1e-4, 1e-3), model="mlp")


def test_a_long_alignment_is_said_cut_to_its_ends():
    """``[1] * 10000`` was echoed whole: a 30 KB message (the session's review)."""
    from abcscale.schemas.theory import Alignment

    for value in ([1] * 10000, "x" * 5000):
        with pytest.raises(ValueError, match=r"^alignment must be") as raised:
            Alignment.parse(value)
        assert len(str(raised.value)) < 200 and "characters)" in str(raised.value)


def test_a_number_past_pythons_digits_is_said_not_raised_from_the_message():
    """repr() of an int past 4,300 digits raises: the message that was to name it raised Python's own error."""
    from abcscale.schemas.theory import Alignment

    with pytest.raises(ValueError, match=r"^alignment numbers must be real numbers, got a tuple holding a number"):
        Alignment.parse((10**5000, 0.5, 1))
    from abcscale.usecases.tune import export_width

    with pytest.raises(ValueError, match=r"^width: expected a positive whole number .* got an int past 4300 digits"):
        export_width(10**5000)


@pytest.mark.parametrize("params", [None, {}, [], np.float64(1.0), np.array(1.0)])
def test_no_tree_of_arrays_is_said_as_params(spec, params):
    """None and an empty tree were labelled as no parameters at all, a numpy scalar as one `fixed` leaf: every
    export answered, unsaid (the session's first review)."""
    with pytest.raises(ValueError, match=r"^params: (None|an empty|one bare)"):
        abcoptax.labels(spec, params)
