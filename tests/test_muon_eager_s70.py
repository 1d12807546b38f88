"""``abcscale.optax.transform`` for Muon in a training loop without ``jax.jit``: later steps compile nothing.

optax's Newton-Schulz iteration runs a ``lax.scan`` over a closure it makes anew each call, so an eager update
traced and compiled its scans again at every step (1.3-1.4 s a step at width 64; session 69's note). The export
jits Muon's update; the numbers are the ones a jitted step gives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import abcscale.optax as abcoptax
from abcscale import recommend

D = 32


def _params() -> dict:
    # two hidden matrices: Muon's role alone (the other roles' AdamW compiles op by op eagerly, once, as any
    # eager JAX code does, and would only make the first step slower)
    k = jax.random.split(jax.random.key(0), 2)
    return {"fc1": {"kernel": jax.random.normal(k[0], (D, 4 * D))},
            "fc2": {"kernel": jax.random.normal(k[1], (4 * D, D))}}


def test_eager_muon_updates_compile_only_on_the_first_step_and_equal_the_jitted_step():
    params = _params()
    rec = recommend("mup", "muon", width=D, base_width=D, beta=1e-2, form="multiplier_free")
    tx = abcoptax.transform(rec, params)
    grads = jax.tree.map(lambda p: jnp.tanh(p) * 0.1, params)
    compiles: list[str] = []

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if "backend_compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        state = tx.init(params)
        first = tx.update(grads, state, params)  # the first step compiles
        jax.block_until_ready(first)
        before = len(compiles)
        updates, state = first
        for _ in range(2):
            updates, state = tx.update(grads, state, params)
            jax.block_until_ready(updates)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert before > 0
    assert len(compiles) == before, compiles[before:]  # before the fix: two scan programs again every step
    # and the eager step is the step a jitted training loop takes (eager per-op numbers differed at the ulp)
    jitted = jax.jit(lambda s: tx.update(grads, s, params))(tx.init(params))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
