"""What a review of `abcscale theory convert`, `abcscale mup` and the optax export found (session 34): a bad
`--lr` said float's own words, a conversion to the same parameterization said its epsilon was rescaled, an
epsilon given to an optimizer without one was dropped silently, and an int seed given as the optax init's key was
JAX's TypeError from deep inside."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
CONVERT = ["theory", "convert", "--from", "mup", "--width", "1024"]


def _said(res) -> str:
    return " ".join((res.stdout + res.stderr).split())


def test_a_bad_per_layer_number_says_the_form():
    res = runner.invoke(app, [*CONVERT, "--to", "standard", "-o", "adam", "--lr", "x"])
    assert res.exit_code == 2 and "--lr: expected one number or 3 comma-separated numbers (e,h,r), got 'x'" in \
        _said(res), res.output
    res = runner.invoke(app, [*CONVERT, "--to", "standard", "-o", "adam", "--init-std", "0.1,y,0.1"])
    assert res.exit_code == 2 and "--init-std: expected one number or 3" in _said(res), res.output


def test_a_conversion_says_epsilon_was_rescaled_only_where_it_was():
    same = runner.invoke(app, [*CONVERT, "--to", "mup", "-o", "adam", "--lr", "1e-3"])
    assert same.exit_code == 0 and "epsilon was rescaled" not in _said(same), same.output
    other = runner.invoke(app, [*CONVERT, "--to", "standard", "-o", "adam", "--lr", "1e-3"])
    assert other.exit_code == 0 and "epsilon was rescaled" in _said(other), other.output


@pytest.mark.parametrize("argv", [
    [*CONVERT, "--to", "standard", "-o", "sgd", "--lr", "1e-3", "--epsilon", "1e-6"],
    ["mup", "import", "-o", "sgd", "--base-width", "64", "--lr", "0.1", "--epsilon", "1e-6"],
])
def test_an_epsilon_an_optimizer_has_none_of_is_said(argv):
    res = runner.invoke(app, argv)
    assert res.exit_code == 0 and "epsilon: sgd has no epsilon; the 1e-06 given changes nothing" in _said(res), \
        res.output


def test_the_optax_init_names_a_key_that_is_no_key():
    import jax
    import jax.numpy as jnp

    import abcscale
    import abcscale.optax as abcoptax

    spec = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3).groups
    tree = {"params": {"Embed_0": {"embedding": jnp.zeros((300, 256))}, "Dense_0": {"kernel": jnp.zeros((256, 256))},
                       "lm_head": {"kernel": jnp.zeros((256, 300))}}}
    with pytest.raises(ValueError, match="^key: expected one JAX PRNG key"):
        abcoptax.init(spec, tree, 0)
    assert abcoptax.init(spec, tree, jax.random.key(0))["params"]["Dense_0"]["kernel"].std() > 0
