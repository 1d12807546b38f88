"""``runner.nn.matmul``: the dense layers' product, whose weight gradient XLA:CPU runs as a plain GEMM (issue 18).

Its gradients must be autodiff's (the same numbers up to summation order), under jit and vmap, and the
compiled backward must hold no dot that contracts both operands' first axis (the form XLA:CPU gives to
Eigen, at half YNNPACK's rate on the demo's shapes). A whole training run through it stays at autodiff's
losses within float tolerance.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale.runner import executables, nn
from abcscale.runner import train as tr
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import _program, layer_hyper
from tests.runner.compiled import jit


def _loss(mm, z, w, c):
    return jnp.sum(jnp.tanh(mm(z, w)) * c)


def _plain(z, w):
    return z @ w


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 40), i=st.integers(1, 24), o=st.integers(1, 24), seed=st.integers(0, 2**16))
def test_gradients_are_autodiffs(n, i, o, seed):
    rng = np.random.default_rng(seed)
    z, w, c = (rng.standard_normal(s).astype(np.float32) for s in ((n, i), (i, o), (n, o)))
    # compiled as the runner's programs are here (tests.runner.compiled)
    got = jit(jax.grad(lambda z, w: _loss(nn.matmul, z, w, c), argnums=(0, 1)))(z, w)
    # autodiff's, compiled too: one program per shape, where op-by-op dispatch compiled each of its ~10 ops
    want = jit(jax.grad(lambda z, w: _loss(_plain, z, w, c), argnums=(0, 1)))(z, w)
    for g, ref in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_gradients_under_vmap():
    rng = np.random.default_rng(0)
    z, w, c = (rng.standard_normal(s).astype(np.float32) for s in ((3, 32, 8), (3, 8, 5), (32, 5)))

    def grads(mm):
        return jax.vmap(jax.grad(lambda z, w: _loss(mm, z, w, c), argnums=(0, 1)))(z, w)

    for g, ref in zip(jit(lambda: grads(nn.matmul))(), grads(_plain), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-5, atol=1e-5)


def _transposed_dots(mm) -> list[str]:
    """The top-level dots of the compiled backward of a [256, 128] x [128, 512] layer that contract both
    operands' first axis."""
    z, w, c = jnp.ones((256, 128)), jnp.ones((128, 512)), jnp.ones((256, 512))
    text = jax.jit(jax.grad(lambda z, w: _loss(mm, z, w, c), argnums=(0, 1))).lower(z, w).compile().as_text()
    return [line for line in text.splitlines()
            if re.search(r"= \S+ dot\(", line) and "lhs_contracting_dims={0}" in line]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the form is XLA:CPU's")
def test_no_dot_contracts_the_first_axis_of_both_operands():
    assert _transposed_dots(_plain), "autodiff's weight gradient no longer compiles to a transposed dot"
    assert _transposed_dots(nn.matmul) == []


def _train(width: int) -> tr.Outcome:
    spec = SweepSpec(model="transformer", widths=[width], depth=1, head_dim=16, log2_lr=[-6.0], steps=8,
                     batch=4, seq_len=16, max_bytes=200_000, eval_batches=2, curves=True)
    cell = spec.cells()[0]
    prog, h, c = _program(spec, cell, (0, 7), True), layer_hyper(spec, cell), spec.corpus()
    return tr.run_program(prog, c.train, c.eval, np.asarray(h.multiplier), np.asarray(h.init_std),
                          (2.0 ** -6 * np.asarray(h.lr_factor))[None], np.asarray(h.epsilon)[None],
                          np.zeros(1, np.uint32))


# One width: width 32 already has every kind of product the runner makes (square and not, the readout, the MLP's
# 4x); width 64 too (3 CPU-s more) had no other kind. Any shape is test_gradients_are_autodiffs's.
@pytest.mark.parametrize("width", [32])
def test_training_matches_autodiffs_form(width, monkeypatch):
    # nothing kept on disk: a built-in model's executable is keyed by its Program, not its trace, so with the
    # store on (any sweep earlier in the process turns it on) the second run loaded the first's program
    monkeypatch.setattr(executables, "_folder", None)
    new = _train(width)
    monkeypatch.setattr(nn, "matmul", _plain)
    tr._jitted.cache_clear()
    try:
        old = _train(width)
    finally:
        tr._jitted.cache_clear()
    assert old.curves is not None and new.curves is not None
    np.testing.assert_allclose(new.curves, old.curves, rtol=1e-5)
    np.testing.assert_allclose(new.eval_loss, old.eval_loss, rtol=1e-5)
    for kind, by_name in old.coord.items():
        for name, value in by_name.items():
            np.testing.assert_allclose(new.coord[kind][name], value, rtol=1e-4, atol=1e-7, err_msg=f"{kind} {name}")
