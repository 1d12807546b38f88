"""Lion and Muon in the runner: optax's own transforms with per-layer LRs, the Muon/Adam split, training at
tiny size, and one compiled program over the LR grid (issue 15, item 2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

from abcscale.runner.nn import EMB, HID, OUT, VEC
from abcscale.runner.optim import make_optimizer, scale_by_layer_adam, variant
from abcscale.schemas.enums import Optimizer
from tests.runner.compiled import jit
from tests.runner.test_optim import _run


def _grads(shapes: dict[str, tuple[int, ...]], n: int = 4, seed: int = 0) -> list[dict[str, jax.Array]]:
    rng = np.random.default_rng(seed)
    return [{k: jnp.asarray(0.3 + rng.normal(size=s), jnp.float32) for k, s in shapes.items()} for _ in range(n)]


def _jitted(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with its update jitted, as a training step runs it (tests.runner.compiled): eagerly, Muon's
    Newton-Schulz steps compiled op by op (about a hundred small programs, seconds a test)."""
    return optax.GradientTransformation(tx.init, jit(tx.update))


def _matrix_mask(p):
    return jax.tree.map(lambda x: x.ndim >= 2, p)


def test_the_variants_use_the_theory_families():
    assert variant("lion").family is Optimizer.lion and variant("muon").family is Optimizer.muon
    assert not variant("lion").uses_epsilon and variant("muon").uses_epsilon  # Muon's Adam side has one
    assert variant("lion").decays and variant("muon").decays


def test_lion_first_step_is_minus_lr_times_sign_per_layer():
    params = {"e": jnp.ones((2, 3)), "h": jnp.ones((3, 3)), "r": jnp.ones((3, 2)), "g": jnp.ones((3,))}
    layers = {"e": EMB, "h": HID, "r": OUT, "g": VEC}
    g = {k: jnp.asarray(np.random.default_rng(1).normal(size=v.shape), jnp.float32) for k, v in params.items()}
    lr = jnp.asarray([0.1, 0.01, 0.001, 0.5])
    tx = _jitted(make_optimizer("lion", lr, jnp.zeros(4), layers, steps=10, schedule_kind="constant"))
    u, _ = tx.update(g, tx.init(params), params)
    for k, i in layers.items():
        np.testing.assert_allclose(np.asarray(u[k]), -float(lr[i]) * np.sign(np.asarray(g[k])), rtol=1e-6)


def test_lion_is_optax_lion_with_a_matrix_mask():
    params = {"w": jnp.asarray(np.random.default_rng(2).normal(size=(4, 3)), jnp.float32), "b": jnp.ones((3,))}
    grads = _grads({"w": (4, 3), "b": (3,)})
    ours = make_optimizer("lion", jnp.full(4, 3e-2), jnp.zeros(4), {"w": HID, "b": VEC}, steps=5,
                          schedule_kind="constant", wd_3=jnp.full(4, 0.5))
    ref = optax.lion(3e-2, b1=0.9, b2=0.99, weight_decay=0.5, mask=_matrix_mask)
    for a, b in zip(_run(ours, grads, params), _run(ref, grads, params), strict=True):
        for k in params:
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-5, atol=1e-8)


def test_muon_on_a_hidden_matrix_is_optax_muon():
    """One hidden [8, 16] matrix: our chain is optax.contrib.muon (Nesterov, 5 Newton-Schulz steps, shape
    factor sqrt(max(1, fan_out / fan_in)) = sqrt(2)), step after step."""
    params = {"h": jnp.asarray(np.random.default_rng(3).normal(size=(8, 16)), jnp.float32)}
    grads = _grads({"h": (8, 16)})
    ours = _jitted(make_optimizer("muon", jnp.full(4, 2e-2), jnp.full(4, 1e-8), {"h": HID}, steps=5,
                                  schedule_kind="constant"))
    ref = _jitted(contrib.muon(2e-2))
    for a, b in zip(_run(ours, grads, params), _run(ref, grads, params), strict=True):
        np.testing.assert_allclose(np.asarray(a["h"]), np.asarray(b["h"]), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("shape", [(16, 32), (32, 16), (24, 24)])
def test_muon_update_on_a_hidden_matrix_is_near_orthogonal(shape):
    """A badly conditioned gradient (singular values spread over 30x) becomes an update with the gradient's
    singular vectors and singular values, once the shape factor and LR are divided out, all near 1 (5 steps of
    Newton-Schulz's quintic leave them in about [0.7, 1.2], not exactly 1): every direction moves alike."""
    rng = np.random.default_rng(4)
    m, n = shape
    k = min(m, n)
    left, _ = np.linalg.qr(rng.normal(size=(m, k)))
    right, _ = np.linalg.qr(rng.normal(size=(n, k)))
    g = (left * np.geomspace(30.0, 1.0, k)) @ right.T
    lr = 0.1
    tx = _jitted(make_optimizer("muon", jnp.full(4, lr), jnp.full(4, 1e-8), {"h": HID}, steps=5,
                                schedule_kind="constant"))
    params = {"h": jnp.zeros(shape)}
    u, _ = tx.update({"h": jnp.asarray(g, jnp.float32)}, tx.init(params), params)
    o = -np.asarray(u["h"]) / (lr * max(1.0, n / m) ** 0.5)
    s_u = np.linalg.svd(o, compute_uv=False)
    assert s_u.min() > 0.6 and s_u.max() < 1.25, s_u
    # the same singular vectors: left.T @ o @ right is diagonal (off-diagonal mass tiny)
    d = left.T @ o @ right
    assert np.abs(d - np.diag(np.diag(d))).max() < 1e-3 * np.abs(np.diag(d)).min()


def test_muon_sends_embeddings_readout_vectors_and_non_matrices_to_adam():
    shapes = {"e": (5, 8), "h": (8, 8), "h_vec": (8,), "h_3d": (2, 4, 4), "r": (8, 5), "g": (8,)}
    layers = {"e": EMB, "h": HID, "h_vec": HID, "h_3d": HID, "r": OUT, "g": VEC}
    params = {k: jnp.zeros(s) for k, s in shapes.items()}
    grads = _grads(shapes, n=3)
    eps = jnp.asarray([1e-3, 1e-2, 1e-4, 1e-5])
    lr = jnp.asarray([0.1, 0.2, 0.3, 0.4])
    ours = _run(_jitted(make_optimizer("muon", lr, eps, layers, steps=5, schedule_kind="constant")), grads, params)[-1]
    adam_keys = [k for k in shapes if k != "h"]
    ref = _run(_jitted(scale_by_layer_adam({k: eps[layers[k]] for k in adam_keys})),
               [{k: g[k] for k in adam_keys} for g in grads], {k: params[k] for k in adam_keys})[-1]
    for k in adam_keys:
        np.testing.assert_allclose(np.asarray(ours[k]), -float(lr[layers[k]]) * np.asarray(ref[k]), rtol=1e-5)
    # the hidden matrix is Muon's: near-orthogonal, not Adam's near-sign update
    s = np.linalg.svd(np.asarray(ours["h"]) / float(lr[HID]), compute_uv=False)
    assert s.max() < 1.25


def test_muon_decays_its_matrices_coupled_to_the_lr():
    """Step 1 with a zero gradient: Muon's and Adam's directions are 0, so the update is -lr_l * wd_l * W on
    matrices (the hidden one included) and nothing on a gain."""
    params = {"h": jnp.full((4, 4), 2.0), "e": jnp.full((3, 4), -1.0), "g": jnp.ones((4,))}
    layers = {"h": HID, "e": EMB, "g": VEC}
    lr, wd = jnp.asarray([0.1, 0.01, 1.0, 1.0]), jnp.asarray([0.5, 3.0, 0.0, 7.0])
    tx = _jitted(make_optimizer("muon", lr, jnp.full(4, 1e-8), layers, steps=5, schedule_kind="constant", wd_3=wd))
    u, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    np.testing.assert_allclose(np.asarray(u["h"]), -0.01 * 3.0 * 2.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(u["e"]), -0.1 * 0.5 * -1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(u["g"]), 0.0, atol=1e-12)


@pytest.fixture(scope="module")
def corpus():
    from abcscale.runner.spec import SweepSpec

    return SweepSpec(model="mlp", widths=[16], data="synthetic", seq_len=8, eval_batches=2).corpus()


@pytest.mark.parametrize("name", ["lion", "muon"])
def test_tiny_runs_learn_and_the_vmapped_lr_grid_is_the_separate_runs(corpus, name):
    """The tiny MLP (its hidden layer is a [16, 16] matrix, so Muon's side runs): finite losses that fall, and
    three LRs in one vmapped program train exactly as three programs of one run each."""
    from abcscale.runner.nn import ModelConfig
    from abcscale.runner.train import Compiler, Program, run_program

    prog = Program(ModelConfig("mlp", 16, 1, 8), name, steps=20, batch=8)
    lr = np.stack([np.asarray([1.0, 0.5, 1.0, 1.0]) * 2.0**g for g in (-8, -6, -4)])  # per-layer factors
    hyper = (np.ones(3), np.full(3, 16**-0.5))
    eps = np.full((3, 4), 1e-8)
    grid = run_program(prog, corpus.train, corpus.eval, *hyper, lr, eps, np.zeros(3), compiler=Compiler())
    assert np.all(np.isfinite(grid.final_loss)) and not grid.diverged.any()
    assert grid.eval_loss.min() < grid.loss_at_init[0] - 0.5
    one = Compiler()
    single = [run_program(prog, corpus.train, corpus.eval, *hyper, lr[i:i + 1], eps[:1], np.zeros(1),
                          compiler=one).final_loss[0] for i in range(3)]
    np.testing.assert_allclose(grid.final_loss, single, rtol=1e-5)


@pytest.mark.e2e
def test_abcscale_sweep_trains_lion_and_muon_at_theorys_per_layer_lrs(tmp_path):
    """``abcscale sweep -o lion,muon``: rows for both, each layer's LR the theory engine's for that optimizer."""
    import pandas as pd

    from abcscale import theory
    from abcscale.cli import main
    from abcscale.schemas.theory import BaseConfig

    argv = ["sweep", "--model", "mlp", "--depth", "1", "--steps", "8", "--batch", "4", "--seq-len", "8", "--data",
            "synthetic", "--eval-batches", "2", "--batching", "vmap", "-p", "mup", "-o", "lion,muon", "--widths",
            "8,32", "--log2-lr", "-5", "--out", str(tmp_path), "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert set(df["optimizer"]) == {"lion", "muon"} and df["final_loss"].notna().all()
    for row in df.to_dict("records"):
        tr = theory.transfer("mup", row["optimizer"], BaseConfig(width=8, beta=row["beta"]), row["width"])
        for layer in ("embedding", "hidden", "readout"):
            assert row[f"lr_{layer}"] == pytest.approx(tr[layer].lr, rel=1e-6)
    assert "epsilon_embedding" in df.columns  # Muon's Adam side reads them (and the rows carry them)
