"""An example of your own JAX model for ``abcscale sweep --model examples/user_model.py:factory``.

A small pre-LayerNorm decoder in plain JAX (no multipliers, no framework): LayerNorms with gain and bias,
biased dense layers, a GeLU MLP with F = 4D (its output projection has fan-in 4D), learned positional
embeddings, an untied readout. Parameter names are flax-like paths; the runner reads each one's role with
abcscale's default rules (``abcscale.theory.groups.DEFAULT_RULES``):

- ``tok_embed.embedding``, ``pos_embed.embedding``: embedding;
- ``blocks.0.attn.q.kernel`` ... ``blocks.0.mlp.fc_out.kernel``: hidden (``fc_out`` with fan-in 4 x width);
- ``lm_head.kernel``: readout;
- ``*.bias``, ``*.ln1.scale``, ``ln_f.scale``: vector-like (biases start at 0, gains at 1).

Shapes: B batch, T sequence, D width, F = 4D, H heads, K head dim, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from abcscale.runner.user import UserModel

HEAD_DIM = 8


def factory(width: int, depth: int, *, vocab: int, seq_len: int) -> UserModel:
    if width % HEAD_DIM:
        raise ValueError(f"width {width} is not a multiple of the head dim {HEAD_DIM}")
    D, F = width, 4 * width
    shapes: dict[str, tuple[int, ...]] = {
        "tok_embed.embedding": (vocab, D), "pos_embed.embedding": (seq_len, D),
        "ln_f.scale": (D,), "ln_f.bias": (D,), "lm_head.kernel": (D, vocab),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            shapes |= {f"{p}{ln}.scale": (D,), f"{p}{ln}.bias": (D,)}
        for proj in "qkvo":
            shapes |= {f"{p}attn.{proj}.kernel": (D, D), f"{p}attn.{proj}.bias": (D,)}
        shapes |= {f"{p}mlp.fc_in.kernel": (D, F), f"{p}mlp.fc_in.bias": (F,),
                   f"{p}mlp.fc_out.kernel": (F, D), f"{p}mlp.fc_out.bias": (D,)}

    def dense(params, name, x):
        return x @ params[name + ".kernel"] + params[name + ".bias"]

    def layer_norm(params, name, x):
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-6) * params[name + ".scale"] + params[name + ".bias"]

    def apply(params, tokens_BxT, record):
        B, T = tokens_BxT.shape
        H = D // HEAD_DIM
        x_BxTxD = record("tok_embed", params["tok_embed.embedding"][tokens_BxT])
        x_BxTxD = x_BxTxD + params["pos_embed.embedding"][:T]
        causal_TxT = jnp.tril(jnp.ones((T, T), bool))
        for i in range(depth):
            p = f"blocks.{i}."
            h_BxTxD = layer_norm(params, p + "ln1", x_BxTxD)
            q, k, v = (dense(params, f"{p}attn.{n}", h_BxTxD).reshape(B, T, H, HEAD_DIM) for n in "qkv")
            att_BxHxTxT = jnp.einsum("bthk,bshk->bhts", q, k) * HEAD_DIM ** -0.5
            att_BxHxTxT = jax.nn.softmax(jnp.where(causal_TxT, att_BxHxTxT, -1e30), axis=-1)
            y_BxTxD = jnp.einsum("bhts,bshk->bthk", att_BxHxTxT, v).reshape(B, T, D)
            x_BxTxD = x_BxTxD + record(p + "attn", dense(params, p + "attn.o", y_BxTxD))
            h_BxTxD = layer_norm(params, p + "ln2", x_BxTxD)
            f_BxTxF = jax.nn.gelu(dense(params, p + "mlp.fc_in", h_BxTxD))
            x_BxTxD = x_BxTxD + record(p + "mlp", dense(params, p + "mlp.fc_out", f_BxTxF))
        h_BxTxD = layer_norm(params, "ln_f", x_BxTxD)
        return h_BxTxD @ params["lm_head.kernel"]

    return UserModel(shapes=shapes, apply=apply)
