"""The 'fixed' role of a linear over the tokens (docs/theory.md section 10, "Why 'fixed' for a token linear"),
checked on a simulation rather than taken on the derivation's word.

A token linear W [P, P] mixes the P positions of X [P, n] and is shared by the n channels, so its gradient sums n
channel terms of the residual stream's gradient. The derivation says that sum is Theta(1) at every width: the
readout's random init contributes n^(1/2 - (a_r + b_r)) (flat under standard, (n/b)^(-1/2) under muP) and what the
readout learned contributes Theta(1) (the sum its stable LR keeps the logits' change to). So the role's constant
LR and epsilon (c = 0) hold. A first reading (session 69's note) had SGD's gradient growing as sqrt(n) under
standard; this simulation is what refuted it, and would fail on it (a 4x growth from width 64 to 1024).

The model: fixed Theta(1) token features X = E[tokens], H = X + W X, one output per position f = m_r u . H, a
squared loss against a width-free target that W has to learn (T mixes the positions); W and u trained by SGD at the
parameterization's LRs (u's exponent from section 3's table, full alignment), numpy, no JAX.
"""

from __future__ import annotations

import numpy as np

P, V, B = 8, 16, 16
BASE = 64


def token_linear_grad(n: int, param: str, steps: int, eta: float, seed: int) -> float:
    """RMS of dL/dW at the last of ``steps`` SGD steps (``steps`` = 1: at init)."""
    r = np.random.default_rng(seed)
    E = r.standard_normal((V, n))  # the embedding's output, Theta(1) entries at every width
    W = r.standard_normal((P, P)) / np.sqrt(P)  # fan-in P, fixed
    s = np.random.default_rng(99).standard_normal(V)  # the target's tables: the same at every width
    T = np.random.default_rng(98).standard_normal((P, P)) / np.sqrt(P)
    u = r.standard_normal(n) / np.sqrt(n)  # the readout's init std n^-1/2 in both (b_r = 1/2)
    if param == "standard":  # a_r = 0, c_r = 1: the readout's LR falls as 1/n
        mult, lr_u = 1.0, eta * BASE / n
    else:  # muP: a_r = 1/2 (the multiplier n^-1/2), c_r = 0
        mult, lr_u = n**-0.5, eta * BASE  # at the base width the same step on m_r u as standard's
    g_w = np.zeros((P, P))
    for _ in range(steps):
        tok = r.integers(0, V, (B, P))
        X = E[tok]  # [B, P, n]
        H = X + np.einsum("pq,bqn->bpn", W, X)
        err = (mult * H @ u - np.einsum("pq,bq->bp", T, s[tok])) / (B * P)  # dL/df
        g_w = np.einsum("bpn,bqn->pq", mult * err[..., None] * u, X)  # the sum over the n channels
        g_u = mult * np.einsum("bp,bpn->n", err, H)
        W -= eta * g_w  # the 'fixed' role: the same LR at every width
        u -= lr_u * g_u
    return float(np.sqrt(np.mean(g_w**2)))


def growth(param: str, steps: int, eta: float) -> float:
    """The gradient's RMS at width 1024 over width 64 (16x), geometric mean over seeds."""
    ratios = [token_linear_grad(1024, param, steps, eta, seed) / token_linear_grad(BASE, param, steps, eta, seed)
              for seed in range(4)]
    return float(np.exp(np.mean(np.log(ratios))))


def test_standard_token_linear_gradient_is_flat_in_width_from_init():
    # sqrt(16) = 4 if the random readout's terms added up as aligned ones (the refuted reading); Theta(1) if not
    g0 = growth("standard", steps=1, eta=0.05)
    assert 0.5 < g0 < 2.0, g0  # 1.16 measured
    g = growth("standard", steps=50, eta=0.05)
    assert 0.5 < g < 2.0, g


def test_mup_token_linear_gradient_starts_small_and_is_flat_once_the_readout_has_learned():
    g0 = growth("mup", steps=1, eta=0.05)
    assert 0.125 < g0 < 0.5, g0  # (1024 / 64)^(-1/2) = 1/4: the readout's random init alone (0.26 measured)
    g = growth("mup", steps=50, eta=0.05)
    assert 0.5 < g < 2.0, g  # the learned, aligned part: Theta(1) (0.94 measured)
