"""A byte-level MLP language model (predicts the next byte from the current one): fast tests, coord checks.

Shapes: B batch, T sequence, D width, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from abcscale.runner.nn import EMB, HID, OUT, ModelConfig, ParamSpec, Probes


def param_specs(cfg: ModelConfig) -> dict[str, ParamSpec]:
    specs = {"embed": ParamSpec((cfg.vocab, cfg.width), EMB)}  # [V, D]
    for i in range(cfg.depth):
        specs[f"hidden{i}"] = ParamSpec((cfg.width, cfg.width), HID)  # [D, D]
    specs["readout"] = ParamSpec((cfg.width, cfg.vocab), OUT)  # [D, V]
    return specs


def apply(cfg: ModelConfig, params: dict[str, jax.Array], mult_3: jax.Array, tokens_BxT: jax.Array,
          probes: Probes) -> jax.Array:
    x_BxTxD = probes.embed("embed", tokens_BxT, params["embed"], mult_3[EMB])
    for i in range(cfg.depth):
        x_BxTxD = probes.dense(f"hidden{i}", jax.nn.gelu(x_BxTxD), params[f"hidden{i}"], mult_3[HID])
    return probes.dense("readout", jax.nn.gelu(x_BxTxD), params["readout"], mult_3[OUT]).astype(jnp.float32)
