"""The runner's sgd applies SGD's L2 term (session 49): the theory carried it and the exports applied it since
session 48, but a sweep with ``constants.weight_decay`` and sgd was refused. Now the chain adds wd_l * W to a
matrix's gradient before the momentum, as torch.optim.SGD(weight_decay=) does, with the theory's per-layer wd_l;
an SGD sweep without a decay trains and records exactly what it did before."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from abcscale import theory
from abcscale.runner import sweep as sw
from abcscale.runner.nn import HID, VEC
from abcscale.runner.optim import make_optimizer, scale_by_tree, schedule
from abcscale.runner.spec import SweepSpec
from abcscale.schemas.theory import BaseConfig

TINY = {"widths": [16, 32], "log2_lr": [-3, -2], "steps": 4, "batch": 2, "seq_len": 8, "depth": 1,
        "data": "synthetic", "seeds": 1, "base_width": 16}
LAYERS = {"w": HID, "g": VEC}


def _tree(key: int) -> dict[str, jax.Array]:
    a, b = jax.random.split(jax.random.key(key))
    return {"w": jax.random.normal(a, (4, 3)), "g": jax.random.normal(b, (3,))}


def _steps(opt: optax.GradientTransformation, n: int) -> list[dict[str, jax.Array]]:
    params, state, out = _tree(0), None, []
    state = opt.init(params)
    for i in range(n):
        updates, state = opt.update(_tree(100 + i), state, params)
        out.append(updates)
        params = optax.apply_updates(params, updates)
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_the_l2_term_joins_a_matrixs_gradient_before_the_momentum(momentum):
    """Known truth, torch.optim.SGD's rule: d = g + wd W (matrices only), buf = mu buf + d, W -= lr buf."""
    lr, wd = 0.05, 0.3
    lr_5, wd_5 = jnp.full(5, lr), jnp.array([0.0, wd, 0.0, 0.0, 0.0])
    opt = make_optimizer("sgd", lr_5, jnp.zeros(5), LAYERS, steps=10, schedule_kind="constant", momentum=momentum,
                         wd_3=wd_5)
    got = _steps(opt, 3)
    params, buf = _tree(0), {k: jnp.zeros_like(v) for k, v in _tree(0).items()}
    for i in range(3):
        g = _tree(100 + i)
        d = {"w": g["w"] + wd * params["w"], "g": g["g"]}  # the gain (1-D) is not decayed
        buf = {k: momentum * buf[k] + d[k] for k in d} if momentum else d
        want = {k: -lr * buf[k] for k in buf}
        for k in want:
            np.testing.assert_allclose(got[i][k], want[k], rtol=1e-6, atol=1e-7)
        params = {k: params[k] + want[k] for k in params}


def test_independent_mode_subtracts_the_decay_after_the_lr():
    lr, wd = 0.05, 0.3
    opt = make_optimizer("sgd", jnp.full(5, lr), jnp.zeros(5), LAYERS, steps=10, schedule_kind="constant",
                         wd_3=jnp.array([0.0, wd, 0.0, 0.0, 0.0]), wd_mode="independent")
    (got,) = _steps(opt, 1)
    p, g = _tree(0), _tree(100)
    np.testing.assert_allclose(got["w"], -lr * g["w"] - wd * p["w"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["g"], -lr * g["g"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("jit", [False, True])
def test_without_a_decay_the_updates_are_the_chain_before_it_bit_for_bit(jit):
    """The chain as it was (momentum, schedule, -lr) and today's without a decay (the sweep's wd_mode "none" for
    sgd: no L2 term in the program at all; zeros in it change XLA's fusions by an ulp) give the same bits."""
    lr_5 = jnp.array([0.1, 0.02, 0.03, 0.05, 0.07])
    lr = {"w": -lr_5[HID], "g": -lr_5[VEC]}
    old = optax.chain(optax.trace(decay=0.9), optax.scale_by_schedule(schedule("cosine", 10, 0.1)), scale_by_tree(lr))
    new = make_optimizer("sgd", lr_5, jnp.zeros(5), LAYERS, steps=10, warmup=0.1, momentum=0.9,
                         wd_3=jnp.full(5, 0.5), wd_mode="none")
    if jit:
        old = optax.GradientTransformation(old.init, jax.jit(old.update))
        new = optax.GradientTransformation(new.init, jax.jit(new.update))
    for a, b in zip(_steps(old, 5), _steps(new, 5), strict=True):
        for k in a:
            assert np.array_equal(np.asarray(a[k]), np.asarray(b[k]))


def _sweep(out: Path, **kw) -> pd.DataFrame:
    return sw.run_sweep(SweepSpec(**{**TINY, **kw}), out, progress=False)


def test_an_sgd_sweep_trains_and_records_the_theorys_per_layer_decay(tmp_path):
    # an MLP: the decay's rule is the model's roles', and its programs compile in about half a transformer's time
    decayed = _sweep(tmp_path / "a", model="mlp", parameterizations=["standard"], optimizers=["sgd"],
                     constants={"weight_decay": 0.5})
    plain = _sweep(tmp_path / "b", model="mlp", parameterizations=["standard"], optimizers=["sgd"])
    for width, rows in decayed.groupby("width"):
        tr = theory.transfer("standard", "sgd", BaseConfig(width=16, beta=1.0, weight_decay=0.5), int(width), "full",
                             "per_layer")
        for layer in ("embedding", "hidden", "readout"):
            assert rows[f"weight_decay_{layer}"].unique().tolist() == pytest.approx([tr[layer].weight_decay])
        assert (rows["weight_decay_vector"] == 0).all() and (rows["weight_decay_mode"] == "coupled").all()
        assert (rows["base_weight_decay"] == 0.5).all()  # the base width's, which a fit keeps
    # the transfer keeps each layer's shrink per step, lr_l * wd_l, at the base width's; standard SGD's hidden
    # LR falls with the width, so its decay grows
    step = decayed.assign(s=decayed["lr_hidden"] * decayed["weight_decay_hidden"]).groupby("beta")["s"]
    assert (step.max() / step.min()).max() == pytest.approx(1.0)
    assert decayed.groupby("width")["weight_decay_hidden"].first().is_monotonic_increasing
    assert (decayed["eval_loss"].to_numpy() != plain["eval_loss"].to_numpy()).any()  # the decay did train
    assert not any(c.startswith(("weight_decay_", "base_weight_decay")) for c in plain.columns)  # as before


def test_a_program_holds_the_l2_term_only_where_a_decay_is_given():
    """An SGD sweep without a decay compiles the program it did before (bit-identical runs, its cells still
    resume); with one, the spec's mode. A variant whose chain always decays cannot drop it."""
    plain = SweepSpec(**{**TINY, "optimizers": ["sgd", "adamw"]})
    decayed = SweepSpec(**{**TINY, "optimizers": ["sgd"], "constants": {"weight_decay": 0.1,
                                                                        "weight_decay_mode": "independent"}})
    modes = {c.optimizer: sw._program(plain, c, (), False).weight_decay_mode for c in plain.cells()}
    assert modes == {"sgd": "none", "adamw": "coupled"}
    assert {sw._program(decayed, c, (), False).weight_decay_mode for c in decayed.cells()} == {"independent"}
    assert not sw.applies_decay(plain, "sgd") and sw.applies_decay(decayed, "sgd") and sw.applies_decay(plain, "adamw")
    with pytest.raises(ValueError, match="wd_mode 'none': adamw"):
        make_optimizer("adamw", jnp.ones(5), jnp.ones(5), LAYERS, steps=2, wd_mode="none")


def test_an_sgd_program_or_chain_built_by_hand_has_no_l2_term_unless_asked():
    """A review (session 49): the defaults (Program's mode, make_optimizer's wd_mode) gave sgd a zero L2 step, a
    program other than the sweep's. Now the default is none for sgd, and asking for one still works."""
    from abcscale.runner.nn import ModelConfig
    from abcscale.runner.train import Program

    assert Program(ModelConfig("mlp", 16, 1, 8), "sgd", 3, 2).weight_decay_mode is None
    plain = make_optimizer("sgd", jnp.ones(5), jnp.zeros(5), LAYERS, steps=3)
    given = make_optimizer("sgd", jnp.ones(5), jnp.zeros(5), LAYERS, steps=3, wd_3=jnp.full(5, 0.5))
    p, g = _tree(0), _tree(1)
    np.testing.assert_array_equal(plain.update(g, plain.init(p), p)[0]["w"],
                                  make_optimizer("sgd", jnp.ones(5), jnp.zeros(5), LAYERS, steps=3,
                                                 wd_mode="none").update(g, plain.init(p), p)[0]["w"])
    assert not np.allclose(given.update(g, given.init(p), p)[0]["w"], plain.update(g, plain.init(p), p)[0]["w"])
