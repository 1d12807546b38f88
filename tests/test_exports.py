"""The exports of a parameter-group spec: ``abcscale.optax`` on JAX trees (here) and ``abcscale.torch`` (its
import-free contract here; against real PyTorch and microsoft/mup in tests/torch, ``make test-torch``)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from abcscale import optax as abcoptax
from abcscale import torch as abctorch
from abcscale.schemas.groups import GroupRule
from abcscale.schemas.theory import BaseConfig
from abcscale.theory import transfer
from abcscale.theory.groups import group_spec

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
D, V = 256, 40


def _spec(optimizer="adamw", form="multiplier_free", wd_mode="coupled", width=D):
    wd = 0.1 if optimizer == "adamw" else 0.0
    base = BaseConfig(width=64, beta=3e-3, weight_decay=wd, weight_decay_mode=wd_mode)
    return group_spec(transfer("mup", optimizer, base, width=width), form)


def _flax_tree(fill=jnp.zeros):
    return {"params": {"tok_embed": {"embedding": fill((V, D))},
                       "Dense_0": {"kernel": fill((D, 4 * D)), "bias": fill((4 * D,))},
                       "Dense_1": {"kernel": fill((4 * D, D))},
                       "LayerNorm_0": {"scale": fill((D,)), "bias": fill((D,))},
                       "lm_head": {"kernel": fill((D, V))}}}


def _random_tree(seed=0):
    leaves, treedef = jax.tree.flatten(_flax_tree())
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])


def test_labels_on_a_flax_tree():
    spec = _spec()
    got = abcoptax.labels(spec, _flax_tree())["params"]
    assert got == {"tok_embed": {"embedding": "embedding"}, "Dense_0": {"kernel": "hidden", "bias": "vector"},
                   "Dense_1": {"kernel": "hidden"}, "LayerNorm_0": {"scale": "vector", "bias": "vector"},
                   "lm_head": {"kernel": "readout"}}
    lrs = abcoptax.lr_tree(spec, _flax_tree())["params"]
    assert lrs["Dense_1"]["kernel"] == spec["hidden"].lr and lrs["LayerNorm_0"]["scale"] == spec["vector"].lr
    stds = abcoptax.init_std_tree(spec, _flax_tree())["params"]
    # the 4D -> D projection's fan-in is 4x the width: its std is the hidden one times 4^-b
    assert stds["Dense_1"]["kernel"] == pytest.approx(spec["hidden"].init_std * 4 ** -spec["hidden"].init_exponent)
    assert stds["Dense_0"]["kernel"] == spec["hidden"].init_std and stds["LayerNorm_0"]["bias"] is None


@pytest.mark.parametrize(("names", "layout"), [
    ({"transformer.wte.weight": (V, D), "transformer.wpe.weight": (16, D), "transformer.h.0.ln_1.weight": (D,),
      "transformer.h.0.attn.c_attn.weight": (D, 3 * D), "transformer.h.0.attn.c_attn.bias": (3 * D,),
      "transformer.h.0.mlp.c_proj.weight": (4 * D, D), "transformer.ln_f.weight": (D,),
      "lm_head.weight": (D, V)}, "jax"),
    ({"model.embed_tokens.weight": (V, D), "model.layers.0.self_attn.q_proj.weight": (D, D),
      "model.layers.0.mlp.down_proj.weight": (D, 3 * D), "model.layers.0.input_layernorm.weight": (D,),
      "model.norm.weight": (D,), "lm_head.weight": (V, D)}, "torch"),
])
def test_labels_on_nanogpt_and_llama_names(names, layout):
    tree = {k: jnp.zeros(s) for k, s in names.items()}
    got = abcoptax.labels(_spec(), tree, layout=layout)
    want = {k: ("embedding" if re.search(r"wte|wpe|embed_tokens", k) else "readout" if k.startswith("lm_head")
                else "vector" if len(s) == 1 else "hidden") for k, s in names.items()}
    assert got == want
    stds = abcoptax.init_std_tree(_spec(), tree, layout=layout)
    fan4 = "transformer.h.0.mlp.c_proj.weight" if layout == "jax" else "model.layers.0.mlp.down_proj.weight"
    ratio = 4 if layout == "jax" else 3
    assert stds[fan4] == pytest.approx(_spec().init_std("hidden", ratio))


@pytest.mark.parametrize("schedule", [None, optax.linear_schedule(0.5, 1.0, 10)])
def test_sgd_step_is_minus_the_role_lr_times_the_gradient(schedule):
    spec = _spec("sgd")
    params, grads = _random_tree(0), _random_tree(1)
    tx = abcoptax.transform(spec, params, schedule=schedule)
    updates, _ = tx.update(grads, tx.init(params), params)
    scale = 1.0 if schedule is None else 0.5
    want = jax.tree.map(lambda lr, g: -lr * scale * g, abcoptax.lr_tree(spec, params), grads)
    jax.tree.map(lambda u, w: np.testing.assert_allclose(u, w, rtol=1e-6), updates, want)
    assert len({*jax.tree.leaves(abcoptax.lr_tree(spec, params))}) == 4  # four roles, four distinct LRs


@pytest.mark.parametrize("wd_mode", ["coupled", "independent"])
def test_adamw_first_step_per_role(wd_mode):
    """Step 1 of Adam is g / (|g| + eps) per entry; AdamW adds lr * wd * W (coupled) or wd * W (independent)."""
    spec = _spec("adamw", wd_mode=wd_mode)
    params, grads = _random_tree(0), _random_tree(1)
    tx = abcoptax.transform(spec, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    roles = abcoptax.labels(spec, params)

    def expected(role, g, w):
        s = spec[role]
        adam = g / (jnp.abs(g) + s.epsilon)
        wd = s.weight_decay or 0.0
        return -s.lr * (adam + wd * w) if wd_mode == "coupled" else -s.lr * adam - wd * w

    want = jax.tree.map(expected, roles, grads, params)
    # the two terms cancel on some entries, so the tolerance is each term's float32 rounding (optax's bias
    # correction of the second moment rounds 1 - b2 in float32: ~1e-5 of the Adam term)
    tol = jax.tree.map(lambda role: 1e-4 * spec[role].lr + 1e-6 * (spec[role].weight_decay or 0.0), roles)
    jax.tree.map(lambda u, w, t: np.testing.assert_allclose(u, w, rtol=1e-5, atol=t), updates, want, tol)
    assert spec["hidden"].weight_decay and spec["vector"].weight_decay == 0.0  # the decay is exercised


def test_adam_and_adafactor_build_and_step():
    for opt in ("adam", "adafactor"):
        spec = _spec(opt)
        params = _random_tree(0)
        tx = abcoptax.transform(spec, params)
        updates, _ = tx.update(_random_tree(1), tx.init(params), params)
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_init_draws_the_spec_stds_and_keeps_vector_leaves():
    spec = _spec()
    params = _flax_tree(jnp.ones)
    new = abcoptax.init(spec, params, jax.random.key(0))
    stds = abcoptax.init_std_tree(spec, params)
    for name in ("tok_embed", "Dense_0", "Dense_1", "lm_head"):
        leaf = new["params"][name]["embedding" if name == "tok_embed" else "kernel"]
        want = stds["params"][name]["embedding" if name == "tok_embed" else "kernel"]
        assert float(jnp.std(leaf)) == pytest.approx(want, rel=0.03), name
        assert abs(float(jnp.mean(leaf))) < 0.05 * want
    assert bool(jnp.all(new["params"]["LayerNorm_0"]["scale"] == 1.0))
    assert bool(jnp.all(new["params"]["Dense_0"]["bias"] == 1.0))
    bf16 = abcoptax.init(spec, jax.tree.map(lambda x: x.astype(jnp.bfloat16), params), jax.random.key(0))
    assert {x.dtype for x in jax.tree.leaves(bf16)} == {jnp.dtype(jnp.bfloat16)}


def test_an_unplaceable_parameter_is_named_and_rules_place_it():
    tree = {"params": {"Dense_0": {"kernel": jnp.zeros((D, D))}, "Dense_2": {"kernel": jnp.zeros((D, V))}}}
    spec = _spec()
    with pytest.raises(ValueError, match=r"'params/Dense_2/kernel'.*add a rule"):
        abcoptax.transform(spec, tree)
    rules = [GroupRule(pattern=r"Dense_2", role="readout"), *spec.rules]
    assert abcoptax.labels(spec, tree, rules=rules)["params"]["Dense_2"]["kernel"] == "readout"
    with pytest.raises(ValueError, match=r"'params/act' is not an array"):
        abcoptax.labels(spec, {"params": {"act": "gelu"}})
    with pytest.raises(ValueError, match="layout"):
        abcoptax.labels(spec, tree, layout="tf")


class _Tensor:
    """Just enough of a torch tensor for abcscale.torch's duck typing."""

    def __init__(self, *shape):
        self.shape, self.drawn = shape, None

    @property
    def data(self):
        return self

    def normal_(self, mean, std, generator=None):
        self.drawn = (mean, std)
        return self


class _Model:
    def __init__(self, shapes):
        self.params = {k: _Tensor(*s) for k, s in shapes.items()}

    def named_parameters(self):
        return iter(self.params.items())


GPT = {"transformer.wte.weight": (V, D), "transformer.h.0.mlp.c_fc.weight": (4 * D, D),
       "transformer.h.0.mlp.c_fc.bias": (4 * D,), "transformer.h.0.mlp.c_proj.weight": (D, 4 * D),
       "transformer.ln_f.weight": (D,), "lm_head.weight": (V, D)}


def test_torch_export_without_torch():
    spec = _spec(form="mup")
    model = _model = _Model(GPT)
    groups = abctorch.param_groups(model, spec, betas=(0.9, 0.95))
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"embedding", "hidden", "vector", "hidden (fan-in 4x width)", "readout"}
    for g in groups:
        s = spec[g["name"].split()[0]]
        assert (g["lr"], g["eps"], g["weight_decay"], g["betas"]) == (s.lr, s.epsilon, s.weight_decay, (0.9, 0.95))
    assert by_name["hidden (fan-in 4x width)"]["params"] == [model.params["transformer.h.0.mlp.c_proj.weight"]]
    drawn = abctorch.init_(model, spec)
    assert drawn["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(spec.init_std("hidden", 4))
    assert _model.params["transformer.ln_f.weight"].drawn is None and "transformer.ln_f.weight" not in drawn
    assert abctorch.multipliers(model, spec) == {"lm_head.weight": spec["readout"].multiplier}
    assert abctorch.multipliers(model, _spec()) == {}


def test_torch_export_bad_input():
    spec = _spec()
    with pytest.raises(ValueError, match="'head2.weight'.*add a rule"):
        abctorch.param_groups(_Model({"head2.weight": (V, D)}), spec)
    assert abctorch.param_groups(_Model({"head2.weight": (V, D)}), spec,
                                 rules=[GroupRule(pattern="head2", role="readout")])[0]["name"] == "readout"
    with pytest.raises(ValueError, match="weight_decay_mode"):
        abctorch.param_groups(_Model(GPT), _spec(wd_mode="independent"))
    with pytest.raises(ValueError, match="^lr: set per group"):
        abctorch.param_groups(_Model(GPT), spec, lr=1e-3)
    with pytest.raises(TypeError, match="named_parameters"):
        abctorch.init_({"w": 1}, spec)


def test_the_torch_export_imports_no_torch():
    tree = ast.parse((ROOT / "abcscale" / "torch.py").read_text())
    mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    mods += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in mods if m.split(".")[0] == "torch"]


def _example(name):
    section = README.split("## Apply it to your model", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```\s*which prints\s*```text\n(.*?)```",
                      section, re.S)
    assert found, f"README's 'Apply it to your model' lacks the {name} example"
    return found.group(1), found.group(2)


def test_readme_optax_example_runs_as_printed():
    code, printed = _example("optax")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == printed
