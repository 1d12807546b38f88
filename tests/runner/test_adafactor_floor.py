"""Adafactor's parameter scaling floor in the exported optax transformation (abcscale.optax).

Adafactor scales each step by max(rms(W), 1e-3). The multiplier-free form moves muP's readout multiplier into the
init (std 1/4096 at width 4096), below that floor, so with optax's fixed 1e-3 its readout steps were 4.1x the
abc form's. The floor maps with the parameter (``RoleSetting.param_scale_floor``), and the forms train alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from abcscale import optax as abcoptax
from abcscale import theory
from abcscale.schemas.groups import Role
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import PARAM_SCALE_FLOOR, group_spec

WIDTH, VOCAB = 4096, 32


def _update(spec, params, grads):
    tx = abcoptax.transform(spec, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


@pytest.mark.parametrize("parameterization", ["mup", "mean_field"])
@pytest.mark.parametrize("form", ["multiplier_free", "mup"])
def test_every_form_takes_the_abc_forms_adafactor_step(parameterization, form):
    tr = theory.transfer(parameterization, "adafactor", BaseConfig(width=256, beta=1e-2), WIDTH)
    abc, other = group_spec(tr, "abc"), group_spec(tr, form)
    key_e, key_r, key_g = jax.random.split(jax.random.PRNGKey(0), 3)
    z = {"wte": jax.random.normal(key_e, (VOCAB, WIDTH)), "lm_head": jax.random.normal(key_r, (WIDTH, VOCAB))}
    roles = {"wte": Role.embedding, "lm_head": Role.readout}
    p_abc = {k: v * abc[roles[k]].init_std for k, v in z.items()}
    g_abc = jax.tree.map(lambda x: jax.random.normal(key_g, x.shape), z)
    # the same model in the other form: W' = W / t (t the form's factor, sigma' = sigma / t), its gradient g t
    t = {k: abc[r].init_std / other[r].init_std for k, r in roles.items()}
    p_other = {k: v / t[k] for k, v in p_abc.items()}
    g_other = {k: v * t[k] for k, v in g_abc.items()}
    u_abc, u_other = _update(abc, p_abc, g_abc), _update(other, p_other, g_other)
    for k in roles:
        np.testing.assert_allclose(np.asarray(u_other[k]) * t[k], np.asarray(u_abc[k]), rtol=1e-5, err_msg=k)
    if parameterization == "mup" and form == "multiplier_free":  # the case that broke: std 1/4096 < 1e-3
        assert other[Role.readout].init_std < PARAM_SCALE_FLOOR
        fixed = optax.adafactor(learning_rate=other[Role.readout].lr)
        u_fixed, _ = fixed.update(g_other["lm_head"], fixed.init(p_other["lm_head"]), p_other["lm_head"])
        ratio = float(jnp.abs(u_fixed).mean() / jnp.abs(u_other["lm_head"]).mean())
        assert ratio == pytest.approx(PARAM_SCALE_FLOOR / other[Role.readout].init_std, rel=0.05)  # about 4.1x


def test_the_abc_form_is_optaxs_own_adafactor():
    spec = group_spec(theory.transfer("mup", "adafactor", BaseConfig(width=256, beta=1e-2), 1024), "abc")
    assert {s.param_scale_floor for s in spec.roles} == {PARAM_SCALE_FLOOR}
    p = {"lm_head": jnp.full((1024, VOCAB), 1e-4)}
    g = {"lm_head": jnp.ones((1024, VOCAB))}
    ours = _update(spec, p, g)["lm_head"]
    tx = optax.adafactor(learning_rate=spec[Role.readout].lr)
    theirs, _ = tx.update(g["lm_head"], tx.init(p["lm_head"]), p["lm_head"])
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_only_adafactor_carries_a_floor():
    spec = group_spec(theory.transfer("mup", "adam", BaseConfig(width=256, beta=1e-2), 1024), "multiplier_free")
    assert all(s.param_scale_floor is None for s in spec.roles)
