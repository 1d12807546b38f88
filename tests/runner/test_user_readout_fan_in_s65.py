"""A user model's readout of fan-in r x the width starts as the exports draw it (session 65): the runner drew it at the
width's std, abcscale.optax and abcscale.torch at ``spec.init_std("readout", r)`` (r^-b of it), so constants tuned by
a sweep were exported onto another init."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale.runner import sweep as sw
from abcscale.runner import user
from abcscale.runner.nn import ModelConfig
from abcscale.runner.spec import SweepSpec

FACTORY = '''
import jax.numpy as jnp
from abcscale.runner.user import UserModel

def factory(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"tok_embed.embedding": (vocab, D), "blocks.0.mlp.fc.kernel": (D, D), "lm_head.kernel": (2 * D, vocab)}

    def apply(params, tokens, record):
        x = record("tok_embed", params["tok_embed.embedding"][tokens])
        h = jnp.tanh(x @ params["blocks.0.mlp.fc.kernel"])
        return jnp.concatenate([x, h], axis=-1) @ params["lm_head.kernel"]  # a head on 2D features

    return UserModel(shapes=shapes, apply=apply)
'''
BETA, BASE, WIDTH = 2.0**-6, 16, 64


@pytest.mark.parametrize("parameterization", ["mup", "standard"])
def test_a_readout_on_2d_features_starts_as_the_export_draws_it(tmp_path, parameterization):
    (tmp_path / "two_d_head.py").write_text(FACTORY)
    ref = f"{tmp_path / 'two_d_head.py'}:factory"
    spec = SweepSpec(model=ref, widths=[BASE, WIDTH], depth=1, log2_lr="-6:-6:1", steps=2, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, parameterizations=[parameterization], optimizers=["adam"])
    cell = next(c for c in spec.cells() if c.width == WIDTH)
    hyper = sw.layer_hyper(spec, cell)
    cfg = ModelConfig("user", WIDTH, 1, 8, factory=ref, fan_in_exponent=hyper.fan_in_exponent,
                      readout_fan_in_exponent=hyper.readout_fan_in_exponent)
    layout = user.param_specs(cfg)
    groups = abcscale.recommend(parameterization, "adam", width=WIDTH, base_width=BASE, beta=BETA,
                                form="multiplier_free").groups
    params = {name: jnp.zeros(p.shape) for name, p in layout.items()}
    stds = abcoptax.init_std_tree(groups, params)
    head = layout["lm_head.kernel"]
    assert head.std_const == pytest.approx(2.0 ** -groups["readout"].init_exponent)
    for name, p in layout.items():
        assert stds[name] == pytest.approx(hyper.init_std[p.layer] * p.std_const, rel=1e-12), name
