"""convert(): equivalent settings compute the same function and take the same effective steps.

The reference optimizers below act on raw weights W with gradient dL/dW = m * G, where G is the gradient
with respect to the effective weight m * W. The claim (docs/theory.md section 4) is that after conversion the
effective weight m W and every effective update m dW are unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Layer, Optimizer
from abcscale.schemas.theory import ABTable, LayerExponents, LayerSetting, Setting

quarter = st.sampled_from([-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0])


def _orth(g: np.ndarray) -> np.ndarray:
    """Muon's orthogonalisation, exactly: the polar factor U V^T of g viewed as a 4 x 4 matrix."""
    u, _, vt = np.linalg.svd(g.reshape(4, 4))
    return (u @ vt).reshape(-1)


def _effective_trajectory(opt: Optimizer, m: float, s: float, lr: float, eps: float | None,
                          z: np.ndarray, grads: list[np.ndarray], wd: float | None = None,
                          layer: Layer = Layer.hidden) -> list[np.ndarray]:
    """Effective weights m*W over a few steps of the optimizer, W0 = s * z (AdamW, Lion, Muon: coupled decay wd).
    Muon orthogonalises its momentum on the hidden layer and runs AdamW on the others."""
    w = s * z
    mom, vel = np.zeros_like(w), np.zeros_like(w)
    b1, b2 = 0.9, 0.99
    out = [m * w]
    for t, g_eff in enumerate(grads, start=1):
        g = m * g_eff
        if opt is Optimizer.sgd:
            w = w - lr * g
        elif opt is Optimizer.lion:  # sign of the interpolated momentum (Chen et al. 2023)
            w = w - lr * (np.sign(b1 * mom + (1 - b1) * g) + (wd or 0.0) * w)
            mom = b2 * mom + (1 - b2) * g
        elif opt is Optimizer.muon and layer is Layer.hidden:
            mom = 0.95 * mom + g
            w = w - lr * (_orth(mom) + (wd or 0.0) * w)
        elif opt in (Optimizer.adam, Optimizer.adamw, Optimizer.muon):
            mom = b1 * mom + (1 - b1) * g
            vel = b2 * vel + (1 - b2) * g * g
            mh, vh = mom / (1 - b1**t), vel / (1 - b2**t)
            w = w - lr * (mh / (np.sqrt(vh) + (eps or 0.0)) + (wd or 0.0) * w)  # torch/optax AdamW
        else:  # Adafactor-style parameter scaling: step proportional to rms(W), normalised gradient
            w = w - lr * np.sqrt(np.mean(w * w)) * g / np.sqrt(np.mean(g * g))
        out.append(m * w)
    return out


def _table(a: list[float], b: list[float]) -> ABTable:
    return ABTable(**{l.value: LayerExponents(a=a[i], b=b[i]) for i, l in enumerate(LAYERS)})


@settings(max_examples=60, deadline=None)
@given(
    opt=st.sampled_from(list(Optimizer)),
    a=st.lists(quarter, min_size=3, max_size=3),
    b=st.lists(quarter, min_size=3, max_size=3),
    theta=st.lists(quarter, min_size=3, max_size=3),
    width=st.integers(min_value=8, max_value=8192),
    logs=st.lists(st.floats(-3, 1), min_size=9, max_size=9),
    seed=st.integers(0, 2**31 - 1),
    with_eps=st.booleans(),
)
def test_symmetric_conversion_preserves_function_and_updates(opt, a, b, theta, width, logs, seed, with_eps):
    source = _table(a, b)
    target = _table([a[i] + theta[i] for i in range(3)], [b[i] - theta[i] for i in range(3)])
    rules = theory.layer_rules(opt)
    wd = 0.05 if rules.weight_decay else None  # coupled: lr * wd maps with the LR
    layers = [LayerSetting(layer=l, multiplier=10 ** logs[3 * i], init_std=10 ** logs[3 * i + 1],
                           lr=10 ** logs[3 * i + 2], epsilon=1e-6 if (with_eps and rules[l].has_epsilon) else None,
                           weight_decay=wd) for i, l in enumerate(LAYERS)]
    setting = Setting(optimizer=opt, width=width, layers=layers)
    conv = theory.convert(setting, source, target)
    assert conv.symmetric
    rng = np.random.default_rng(seed)
    for s1, s2 in zip(setting.layers, conv.setting.layers, strict=True):
        z = rng.standard_normal(16)
        grads = [rng.standard_normal(16) for _ in range(4)]
        before = _effective_trajectory(opt, s1.multiplier, s1.init_std, s1.lr, s1.epsilon, z, grads, s1.weight_decay,
                                       s1.layer)
        after = _effective_trajectory(opt, s2.multiplier, s2.init_std, s2.lr, s2.epsilon, z, grads, s2.weight_decay,
                                      s2.layer)
        for x, y in zip(before, after, strict=True):
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(opt=st.sampled_from(list(Optimizer)), width=st.integers(1, 10**6),
       pair=st.sampled_from([("standard", "ntk"), ("mup", "mean_field"), ("standard", "mup"), ("ntk", "mean_field")]),
       lr=st.floats(1e-6, 1.0))
def test_round_trip_returns_the_input(opt, width, pair, lr):
    layers = [LayerSetting(layer=l, multiplier=1.5, init_std=0.02, lr=lr,
                           epsilon=1e-8 if opt is Optimizer.adam else None) for l in LAYERS]
    s = Setting(optimizer=opt, width=width, layers=layers)
    there = theory.convert(s, pair[0], pair[1]).setting
    back = theory.convert(there, pair[1], pair[0]).setting
    for x, y in zip(s.layers, back.layers, strict=True):
        for field in ("multiplier", "init_std", "lr", "epsilon"):
            vx, vy = getattr(x, field), getattr(y, field)
            assert (vx is None and vy is None) or vy == pytest.approx(vx, rel=1e-9)


@pytest.mark.parametrize("opt", list(Optimizer))
@pytest.mark.parametrize("alignment", ["full", "none"])
@pytest.mark.parametrize("pair", [("standard", "ntk"), ("mup", "mean_field")])
def test_symmetry_relates_the_exponent_tables(opt, alignment, pair):
    """c_target = c_source - k * theta for the paper's two symmetry classes."""
    layers = [LayerSetting(layer=l, multiplier=1, init_std=1, lr=1) for l in LAYERS]
    conv = theory.convert(Setting(optimizer=opt, width=64, layers=layers), *pair, alignment=alignment)
    assert conv.symmetric
    for l in LAYERS:
        assert conv.c_to[l] == pytest.approx(conv.c_from[l] - conv.k * conv.theta[l])


def test_non_symmetric_pair_is_flagged():
    layers = [LayerSetting(layer=l, multiplier=1, init_std=1, lr=1) for l in LAYERS]
    conv = theory.convert(Setting(optimizer=Optimizer.adam, width=64, layers=layers), "standard", "mup")
    assert not conv.symmetric
    assert any("readout" in w for w in conv.warnings)
