"""Session 57: the printed abc- and mup-form snippets, run as printed, warned that the spec keeps multipliers the
forward might not apply, though their own comment says the forward applies them; the optax one gave no
multipliers to apply."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from tests.cli.test_recommend_groups import _embedded_spec

runner = CliRunner()
ARGS = ["recommend", "-p", "mup", "-o", "adam", "-n", "256", "--base-width", "32", "--base-lr", "1e-2"]


@pytest.mark.parametrize("form", ["abc", "mup"])
def test_an_optax_snippet_keeping_multipliers_runs_quietly_and_gives_them(form):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    import abcscale.optax

    res = runner.invoke(app, [*ARGS, "--form", form, "--format", "optax"])
    assert res.exit_code == 0, res.output
    spec = _embedded_spec(res.stdout)
    namespace: dict = {}
    exec(compile(res.stdout, "snippet", "exec"), namespace)
    params = {"wte": {"embedding": jnp.zeros((512, 256))}, "h0": {"kernel": jnp.zeros((256, 1024))},
              "lm_head": {"kernel": jnp.zeros((256, 512))}, "ln_f": {"scale": jnp.ones((256,))}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the export's "the forward must apply them" would fail here
        new, tx, state, mult = namespace["configure"](params, jax.random.PRNGKey(0))
    assert mult == abcscale.optax.multiplier_tree(spec, new)
    assert mult["lm_head"]["kernel"] == pytest.approx(spec["readout"].multiplier)
    assert mult["h0"]["kernel"] == 1.0
    # the same numbers as the export called with the form said, as before
    assert float(jnp.std(new["h0"]["kernel"])) == pytest.approx(spec.init_std("hidden"), rel=0.05)


def test_the_plain_form_snippet_is_unchanged():
    res = runner.invoke(app, [*ARGS, "--form", "plain", "--format", "optax"])
    assert "form=SPEC.form" not in res.stdout and "multiplier_tree" not in res.stdout
    assert "-> tuple[Any, Any, Any]:" in res.stdout


@pytest.mark.parametrize("form", ["abc", "mup"])
def test_a_torch_snippet_keeping_multipliers_says_its_form(form):
    res = runner.invoke(app, [*ARGS, "--form", form, "--format", "torch"])
    assert res.exit_code == 0, res.output
    compile(res.stdout, "snippet", "exec")  # parses (PyTorch itself is make test-torch's)
    assert "abcscale.torch.init_(model, SPEC, form=SPEC.form)" in res.stdout
    assert "abcscale.torch.param_groups(model, SPEC, form=SPEC.form)" in res.stdout
    plain = runner.invoke(app, [*ARGS, "--form", "plain", "--format", "torch"]).stdout
    assert "form=SPEC.form" not in plain
