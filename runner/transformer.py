"""A NanoDO-style decoder-only transformer (docs/theory.md section 6).

Pre-LayerNorm with scale only, GeLU MLP with F = 4D, learned positional embeddings, no biases, untied
embedding and readout, H = D / head_dim heads, attention logits scaled by 1/sqrt(head_dim) (or
1/head_dim). Shapes: B batch, T sequence, D width, F = 4D, H heads, K head_dim, V vocab.

Layer types: token and positional embeddings are ``embedding``; q, k, v, o and both MLP matrices are
``hidden``; the readout is ``readout``. LayerNorm scales are ``vector``-like (no width-sized fan-in): they
start at 1, take no multiplier and train at the vector-like LR of ``theory.groups.vector_setting`` (the
embedding's, rescaled by its multiplier so their updates move the output as much).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from abcscale.runner.nn import EMB, HID, OUT, VEC, ModelConfig, ParamSpec, Probes


def param_specs(cfg: ModelConfig) -> dict[str, ParamSpec]:
    D, F, V, T = cfg.width, 4 * cfg.width, cfg.vocab, cfg.seq_len
    specs = {
        "tok_embed": ParamSpec((V, D), EMB),  # [V, D]
        "pos_embed": ParamSpec((T, D), EMB),  # [T, D]
        "ln_f": ParamSpec((D,), VEC, init="ones"),
        "readout": ParamSpec((D, V), OUT),  # [D, V]
    }
    for i in range(cfg.depth):
        specs |= {
            f"b{i}.ln1": ParamSpec((D,), VEC, init="ones"),
            f"b{i}.q": ParamSpec((D, D), HID),
            f"b{i}.k": ParamSpec((D, D), HID),
            f"b{i}.v": ParamSpec((D, D), HID),
            f"b{i}.o": ParamSpec((D, D), HID),
            f"b{i}.ln2": ParamSpec((D,), VEC, init="ones"),
            f"b{i}.mlp_in": ParamSpec((D, F), HID),  # [D, F]
            f"b{i}.mlp_out": ParamSpec((F, D), HID, std_const=(D / F) ** 0.5),  # [F, D]: fan-in F = 4D
        }
    return specs


def layer_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-6) * scale


def apply(cfg: ModelConfig, params: dict[str, jax.Array], mult_3: jax.Array, tokens_BxT: jax.Array,
          probes: Probes) -> jax.Array:
    B, T = tokens_BxT.shape
    K = cfg.head_dim
    H = cfg.width // K
    m_hid = mult_3[HID]
    x_BxTxD = probes.embed("tok_embed", tokens_BxT, params["tok_embed"], mult_3[EMB])
    x_BxTxD = x_BxTxD + mult_3[EMB] * params["pos_embed"][:T]
    causal_TxT = jnp.tril(jnp.ones((T, T), bool))
    scale = K ** -0.5 if cfg.attn_scale == "sqrt" else 1.0 / K
    for i in range(cfg.depth):
        p = f"b{i}."
        h_BxTxD = layer_norm(x_BxTxD, params[p + "ln1"])
        q_BxTxHxK = probes.dense(p + "q", h_BxTxD, params[p + "q"], m_hid).reshape(B, T, H, K)
        k_BxTxHxK = probes.dense(p + "k", h_BxTxD, params[p + "k"], m_hid).reshape(B, T, H, K)
        v_BxTxHxK = probes.dense(p + "v", h_BxTxD, params[p + "v"], m_hid).reshape(B, T, H, K)
        att_BxHxTxT = jnp.einsum("bthk,bshk->bhts", q_BxTxHxK, k_BxTxHxK) * scale
        att_BxHxTxT = jax.nn.softmax(jnp.where(causal_TxT, att_BxHxTxT, -1e30), axis=-1)
        y_BxTxD = jnp.einsum("bhts,bshk->bthk", att_BxHxTxT, v_BxTxHxK).reshape(B, T, cfg.width)
        x_BxTxD = x_BxTxD + probes.dense(p + "o", y_BxTxD, params[p + "o"], m_hid)
        h_BxTxD = layer_norm(x_BxTxD, params[p + "ln2"])
        f_BxTxF = jax.nn.gelu(probes.dense(p + "mlp_in", h_BxTxD, params[p + "mlp_in"], m_hid))
        x_BxTxD = x_BxTxD + probes.dense(p + "mlp_out", f_BxTxF, params[p + "mlp_out"], m_hid)
    h_BxTxD = layer_norm(x_BxTxD, params["ln_f"])
    return probes.dense("readout", h_BxTxD, params["readout"], mult_3[OUT])
