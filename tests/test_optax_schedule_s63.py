"""Session 63: the README suggested ``optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, steps)`` to train as
the runner does, which starts at 0 where the runner's warmup starts at 1 / (n + 1): a user's own loop was 0.25 apart
in loss from a runner run at step 1. ``abcscale.optax.schedule`` is the runner's own, and the optax expression the
README gives now equals it at every step."""

from __future__ import annotations

import numpy as np
import pytest

optax = pytest.importorskip("optax")

from abcscale import optax as abcoptax  # noqa: E402
from abcscale.runner.optim import schedule as runner_schedule  # noqa: E402


@pytest.mark.parametrize(("steps", "warmup"), [(40, 0.1), (1000, 0.05), (7, 0.3), (10, 0.0), (1, 0.1)])
@pytest.mark.parametrize("kind", ["cosine", "constant"])
def test_it_is_the_runners_schedule(steps, warmup, kind):
    mine, theirs = abcoptax.schedule(steps, warmup, kind), runner_schedule(kind, steps, warmup)
    t = np.arange(steps + 3)
    assert np.array_equal(np.asarray(mine(t)), np.asarray(theirs(t)))


@pytest.mark.parametrize(("steps", "warmup"), [(40, 0.1), (1000, 0.05), (1001, 0.1), (7, 0.3), (5000, 0.02)])
def test_the_readmes_optax_expression_equals_it(steps, warmup):
    n = round(warmup * steps)
    readme = optax.warmup_cosine_decay_schedule(1 / (n + 1), 1.0, n, steps)
    t = np.arange(steps + 3)
    assert np.array_equal(np.asarray(readme(t)), np.asarray(abcoptax.schedule(steps, warmup)(t)))
    assert all(float(readme(i)) == float(abcoptax.schedule(steps, warmup)(i)) for i in range(min(steps, 60)))


def test_the_warmup_starts_above_zero():
    s = abcoptax.schedule(40, 0.1)
    assert [round(float(s(i)), 6) for i in range(5)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert float(optax.warmup_cosine_decay_schedule(0.0, 1.0, 4, 40)(0)) == 0.0  # the old suggestion: not it


@pytest.mark.parametrize(("args", "said"), [((0,), "steps"), ((10, 1.0), "warmup"), ((10, 0.1, "linear"), "kind")])
def test_bad_arguments_are_said(args, said):
    with pytest.raises(ValueError, match=said):
        abcoptax.schedule(*args)


def test_transform_takes_it_without_a_warning(recwarn):
    import jax.numpy as jnp

    import abcscale

    spec = abcscale.recommend("mup", "adam", width=32, base_width=32, beta=1e-3, form="multiplier_free").groups
    params = {"wte": jnp.zeros((64, 32)), "h": jnp.zeros((32, 32)), "lm_head": jnp.zeros((32, 64))}
    abcoptax.transform(spec, params, schedule=abcoptax.schedule(100))
    assert not [w for w in recwarn if "schedule" in str(w.message)]


def test_numpy_scalars_are_taken():
    """results.parquet's steps and warmup columns are NumPy scalars, the natural input when reproducing a run
    (``np.int64(100)`` was refused as no positive integer: a code review)."""
    t = np.arange(103)
    want = np.asarray(abcoptax.schedule(100, 0.1)(t))
    for steps, warmup in [(np.int64(100), 0.1), (np.int32(100), np.float64(0.1)), (100, np.float32(0.1))]:
        assert np.array_equal(np.asarray(abcoptax.schedule(steps, warmup)(t)), want)


@pytest.mark.parametrize(("args", "said"), [((100, "0.1"), "warmup"), ((100, None), "warmup"),
                                            ((100, float("nan")), "warmup"), ((100, [0.1]), "warmup"),
                                            ((10.0,), "steps"), (("10",), "steps"), ((True,), "steps"),
                                            ((np.float64(10),), "steps")])
def test_non_numbers_are_a_clear_valueerror(args, said):
    """A string or None for the warmup was a bare TypeError from a comparison."""
    with pytest.raises(ValueError, match=f"^{said}: "):
        abcoptax.schedule(*args)
