"""What issue 18's cheaper training step kept: divergence still flagged without the per-step freeze, coordinate
statistics read from the training forward itself, and the compile options chosen by program size."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from abcscale.runner.nn import Probes, probe_stats
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import _program, layer_hyper, run_cell
from abcscale.runner.train import SMALL_PROGRAM_PARAMS, Compiler, compiler_options, run_program


def _one_step(log2_lrs: list[float]):
    spec = SweepSpec(model="mlp", widths=[16], depth=1, log2_lr=[-6], steps=1, warmup=0.0, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, batching="single")
    cell = spec.cells()[0]
    prog, h, c = _program(spec, cell, (), False), layer_hyper(spec, cell), spec.corpus()
    compiler = Compiler()
    out = []
    for g in log2_lrs:
        with np.errstate(over="ignore"):  # 2^200 is inf in float32, as meant
            lr = (2.0 ** g * np.asarray(h.lr_factor, np.float64))[None].astype(np.float32)
        out.append(run_program(prog, c.train, c.eval, np.asarray(h.multiplier), np.asarray(h.init_std), lr,
                               np.asarray(h.epsilon)[None], np.zeros(1, np.uint32), compiler=compiler))
    compiler.close()
    return out


def test_an_update_that_overflows_on_the_last_step_is_flagged():
    # One step: its loss is taken before the update, so only the check of the final parameters can see that
    # an LR of 2^200 (inf in float32) left them non-finite.
    calm, wild = _one_step([-6.0, 200.0])
    assert not calm.diverged[0] and math.isfinite(calm.final_loss[0]) and math.isfinite(calm.eval_loss[0])
    assert math.isfinite(wild.loss_at_init[0]) and wild.loss_at_init[0] == calm.loss_at_init[0]
    assert wild.diverged[0] and math.isinf(wild.final_loss[0]) and math.isnan(wild.eval_loss[0])


def test_step_zero_coordinates_come_from_the_initial_forward():
    # Recorded from the training step's own forward, before its update: at step 0 every LR of a seed sees the
    # same parameters and window, so the same activations bit for bit; by step 5 the LRs have moved them apart.
    spec = SweepSpec(model="transformer", widths=[16], depth=1, head_dim=8, log2_lr=[-8, -4], steps=6, batch=4,
                     seq_len=8, data="synthetic", eval_batches=1, coord_steps=[0, 5], batching="single")
    coord = run_cell(spec, spec.cells()[0]).coord
    first = coord[coord["step"] == 0].pivot(index="layer", columns="beta", values="act_rms")
    later = coord[coord["step"] == 5].pivot(index="layer", columns="beta", values="act_rms")
    assert len(first) == 8  # every weight: tok_embed, q, k, v, o, mlp_in, mlp_out, readout
    np.testing.assert_array_equal(first.iloc[:, 0], first.iloc[:, 1])
    assert (later.iloc[:, 0] != later.iloc[:, 1]).all()
    upd = coord[coord["step"] == 0].pivot(index="layer", columns="beta", values="update_rms")
    assert (upd.iloc[:, 1] > 4 * upd.iloc[:, 0]).all()  # 16x the LR moves every layer further


def test_probe_stats_are_the_rms_and_alignment_of_the_weights_output():
    rng = np.random.default_rng(0)  # numpy's normals: jax.random's compiled a kernel per shape
    z = jnp.asarray(rng.standard_normal((3, 5, 32)), jnp.float32)
    w = jnp.asarray(0.1 * rng.standard_normal((32, 24)), jnp.float32)
    probes = Probes(True)
    y = probes.dense("w", z, w, jnp.asarray(2.0))
    act, align = probe_stats(probes.captured)["w"]
    zn, wn = np.asarray(z, np.float64).reshape(-1, 32), np.asarray(w, np.float64)
    yn = zn @ wn
    rms = lambda x: np.sqrt(np.mean(np.square(x)))  # noqa: E731
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 24), 2 * yn, rtol=1e-5)
    np.testing.assert_allclose(float(act), 2 * rms(yn), rtol=1e-5)
    np.testing.assert_allclose(float(align), math.log(rms(yn) / (rms(wn) * rms(zn))) / math.log(32), rtol=1e-4)
    off = Probes(False)
    off.dense("w", z, w, jnp.asarray(2.0))
    assert off.captured == {}


def _prog(width: int):
    spec = SweepSpec(widths=[width], depth=1, seq_len=32, head_dim=16, steps=10, batch=8)
    return _program(spec, spec.cells()[0], (), False)


def test_small_programs_compile_with_the_loop_emitters(monkeypatch):
    from abcscale.runner.nn import n_params
    from abcscale.runner.train import OLDER_EMITTERS

    def older(options: dict) -> bool:  # jax 0.11 and later have no such option: nothing to turn off there
        return all(options.get(k) == v for k, v in OLDER_EMITTERS.items()) if OLDER_EMITTERS else False

    monkeypatch.delenv("ABCSCALE_XLA_FUSION_EMITTERS", raising=False)
    small, large = _prog(64), _prog(256)
    assert n_params(small.specs()) < SMALL_PROGRAM_PARAMS < n_params(large.specs())
    assert older(compiler_options(small)) == bool(OLDER_EMITTERS)
    assert not older(compiler_options(large)) and not older(compiler_options())
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "on")
    assert not older(compiler_options(small))
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "off")
    assert older(compiler_options(large)) == bool(OLDER_EMITTERS)
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "maybe")
    with pytest.raises(ValueError, match="ABCSCALE_XLA_FUSION_EMITTERS"):
        compiler_options(small)


def test_a_gpu_compiles_with_xla_defaults(monkeypatch):
    """The level and emitter choices were measured on XLA:CPU; another backend gets XLA's own defaults, while a
    bad setting is still refused there."""
    import jax

    from abcscale.runner import train

    monkeypatch.delenv("ABCSCALE_XLA_FUSION_EMITTERS", raising=False)
    monkeypatch.delenv("ABCSCALE_XLA_OPT_LEVEL", raising=False)
    assert compiler_options(_prog(64))  # the CPU's choices, as above
    monkeypatch.setattr(train.jax, "default_backend", lambda: "gpu")
    assert jax.default_backend() == "gpu"
    # as a user's process compiles: without the suite's JAX_DISABLE_MOST_OPTIMIZATIONS (tests/conftest.py), whose
    # options on a GPU are tests/runner/test_review_s79.py's
    flag = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        assert compiler_options(_prog(64)) == {} == compiler_options(_prog(256))
    finally:
        jax.config.update("jax_disable_most_optimizations", flag)
    monkeypatch.setenv("ABCSCALE_XLA_OPT_LEVEL", "9")
    with pytest.raises(ValueError, match="ABCSCALE_XLA_OPT_LEVEL"):
        compiler_options(_prog(64))


def test_compile_waits_count_once_per_cell():
    import pandas as pd

    from abcscale.runner.sweep import compile_wait_s

    cell = {"parameterization": "mup", "optimizer_variant": "adam", "alignment": "full", "lr_mode": "per_layer"}
    # two calls of width 32 waited side by side for one 2 s compile, a third found it ready; width 64 waited 3 s
    rows = pd.DataFrame([cell | {"width": 32, "compile_s": 2.0}, cell | {"width": 32, "compile_s": 1.9},
                         cell | {"width": 32, "compile_s": 0.0}, cell | {"width": 64, "compile_s": 3.0}])
    assert compile_wait_s(rows) == 5.0
    assert compile_wait_s(rows.iloc[:0]) == 0.0
