"""Grouped initialisation (issue 18 item 2: fewer kernels to compile): parameters of one size draw in one
vmapped call, and every parameter, and so every trained run, is bit-identical to one draw per parameter (the
reference path below, the code before)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import abcscale.runner.train as tr
from abcscale.runner import mlp, transformer
from abcscale.runner.data import load_corpus
from abcscale.runner.nn import ModelConfig, ParamSpec, init_params
from tests.runner.compiled import jit


def reference_init(specs: dict[str, ParamSpec], key: jax.Array, init_std_3: jax.Array) -> dict[str, jax.Array]:
    """One draw per parameter, in name order."""
    keys = jax.random.split(key, len(specs))
    out = {}
    for k, (name, s) in zip(keys, sorted(specs.items()), strict=True):
        if s.init == "ones":
            out[name] = jnp.ones(s.shape, jnp.float32)
        elif s.init == "zeros":
            out[name] = jnp.zeros(s.shape, jnp.float32)
        else:
            out[name] = init_std_3[s.layer] * s.std_const * jax.random.normal(k, s.shape, jnp.float32)
    return out


# A depth-2 transformer has every kind of group a depth-1 one has (several sizes, a one-member size, ones), with
# more members each; a width-16 depth-1 case compiled a 12-draw reference (4 CPU-s) for no other path.
@pytest.mark.parametrize(("module", "width", "depth"), [(transformer, 64, 2), (mlp, 32, 3)])
def test_grouped_init_draws_the_same_numbers_as_one_draw_per_parameter(module, width, depth):
    specs = module.param_specs(ModelConfig(module.__name__.rsplit(".", 1)[1], width, depth, 8, head_dim=8))
    std = jnp.asarray([0.3, width ** -0.5, 1.7], jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    # under jit and under vmap over seeds, compiled as the training program is (tests.runner.compiled)
    new = jit(jax.vmap(lambda k: init_params(specs, k, std)))(keys)
    ref = jit(jax.vmap(lambda k: reference_init(specs, k, std)))(keys)
    assert list(new) == list(ref) == sorted(specs)
    for name in specs:
        np.testing.assert_array_equal(np.asarray(new[name]), np.asarray(ref[name]), err_msg=name)


@pytest.mark.parametrize("emitters", ["on", "off"])
def test_a_run_trains_bit_identically_with_the_reference_init(monkeypatch, emitters):
    # With XLA:CPU's fusion emitters the grouped draw fuses as the per-parameter one did: bit for bit. The loop
    # emitters (small programs' default, train.compiler_options) round the fused scale differently: 1 ulp at
    # init, 1.5e-6 relative three steps on.
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", emitters)
    c = load_corpus("synthetic", 100_000, 0.1, 10)
    prog = tr.Program(ModelConfig("transformer", 16, 2, 8, head_dim=8), "adam", steps=6, batch=4,
                      record_steps=(0, 3), curves=True)
    args = (c.train, c.eval, np.array([1.0, 1.0, 0.5]), np.full(3, 0.25), np.full((2, 4), 2.0 ** -6),
            np.full((2, 4), 1e-8), np.array([0, 1]))
    compiler = tr.Compiler()  # one training program for both runs: only the draw differs, and it is outside it
    new = tr.run_program(prog, *args, compiler=compiler)

    def reference_draw(specs, seeds, init_3, *, options, **data):  # one draw per parameter, the same options
        draw = jax.jit(jax.vmap(lambda s: reference_init(specs, jax.random.split(jax.random.PRNGKey(s))[0],
                                                         jnp.asarray(init_3, jnp.float32))))
        params = jax.tree.map(np.asarray, draw.lower(jnp.asarray(seeds)).compile(options)(jnp.asarray(seeds)))
        return runner_draw(specs, seeds, init_3, options=options, **data)._replace(params=params)

    runner_draw = tr.draws.draw
    monkeypatch.setattr(tr.draws, "draw", reference_draw)
    with compiler:
        ref = tr.run_program(prog, *args, compiler=compiler)
    same = np.testing.assert_array_equal if emitters == "on" else functools.partial(
        np.testing.assert_allclose, rtol=1e-5, atol=1e-7)
    for name in ("loss_at_init", "final_loss", "eval_loss", "curves"):
        same(getattr(new, name), getattr(ref, name), err_msg=name)
    for kind, layers in ref.coord.items():
        for layer, values in layers.items():
            same(new.coord[kind][layer], values, err_msg=f"{kind} {layer}")
