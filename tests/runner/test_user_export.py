"""Issue 13 acceptance: the optax export, applied to the example user model's parameter tree, reproduces the
runner's per-layer LRs and init stds exactly, and its optimizer takes the runner's step.

The two sides are computed independently: the runner from a sweep cell (``runner.sweep.layer_hyper`` and the
model's layout), the export from the public recommendation (``abcscale.recommend(..., form="multiplier_free")``)
through ``abcscale.optax``.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale.runner import sweep as sw
from abcscale.runner import user
from abcscale.runner.optim import make_optimizer
from abcscale.runner.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'user_model.py'}:factory"
BETA, BASE, WIDTH = 2.0**-6, 16, 64


def _runner_side(optimizer: str):
    spec = SweepSpec(model=EXAMPLE, widths=[BASE, WIDTH], depth=2, log2_lr="-6:-6:1", steps=4, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, parameterizations=["mup"], optimizers=[optimizer])
    cell = next(c for c in spec.cells() if c.width == WIDTH)
    hyper = sw.layer_hyper(spec, cell)
    model = user.build(EXAMPLE, WIDTH, 2, 256, 8)
    layout = user.layout(model, WIDTH, hyper.fan_in_exponent)
    return model, layout, hyper, cell


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optax_export_reproduces_the_runner_per_parameter(optimizer):
    model, layout, hyper, cell = _runner_side(optimizer)
    spec = abcscale.recommend("mup", optimizer, width=WIDTH, base_width=BASE, beta=BETA,
                              form="multiplier_free").groups
    params = {name: jnp.zeros(shape) for name, shape in model.shapes.items()}
    lrs, stds = abcoptax.lr_tree(spec, params), abcoptax.init_std_tree(spec, params)
    labels = abcoptax.labels(spec, params)
    assert len(params) > 20
    for name, p in layout.items():
        assert labels[name] == sw.ROLE_NAMES[p.layer], name
        assert lrs[name] == pytest.approx(BETA * hyper.lr_factor[p.layer], rel=1e-12), name
        if p.init == "normal":
            assert stds[name] == pytest.approx(hyper.init_std[p.layer] * p.std_const, rel=1e-12), name
        else:
            assert stds[name] is None, name  # gains and biases keep their ones/zeros


def test_optax_export_takes_the_runner_sgd_step():
    """One SGD step of the export's transformation equals the runner's chain, leaf by leaf."""
    model, layout, hyper, _ = _runner_side("sgd")
    spec = abcscale.recommend("mup", "sgd", width=WIDTH, base_width=BASE, beta=BETA, form="multiplier_free").groups
    params = {name: jnp.ones(shape) for name, shape in model.shapes.items()}
    rng = np.random.default_rng(0)  # numpy's normals: jax.random's compiled a kernel per shape (most of the test)
    grads = {name: jnp.asarray(rng.standard_normal(shape), jnp.float32) for name, shape in sorted(model.shapes.items())}
    ours = abcoptax.transform(spec, params)
    runner = make_optimizer("sgd", BETA * jnp.asarray(hyper.lr_factor), jnp.asarray(hyper.epsilon),
                            {n: p.layer for n, p in layout.items()}, steps=4, schedule_kind="constant")
    u1, _ = ours.update(grads, ours.init(params), params)
    u2, _ = runner.update(grads, runner.init(params), params)
    for name in params:
        np.testing.assert_allclose(np.asarray(u1[name]), np.asarray(u2[name]), rtol=1e-6, err_msg=name)
