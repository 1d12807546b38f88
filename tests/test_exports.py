"""The exports of a parameter-group spec: ``abcscale.optax`` on JAX trees (here) and ``abcscale.torch`` (its
import-free contract here; against real PyTorch and microsoft/mup in tests/torch, ``make test-torch``)."""

from __future__ import annotations

import ast
import functools
import re
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
from tests.readme_code import run_as_printed

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
    # numpy's normals: jax.random.normal eagerly compiled a kernel per leaf shape (seconds, no part of the checks)
    leaves, treedef = jax.tree.flatten(_flax_tree())
    rng = np.random.default_rng(seed)
    return jax.tree.unflatten(treedef, [jnp.asarray(rng.standard_normal(x.shape), jnp.float32) for x in leaves])


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
        updates, _ = jax.jit(tx.update)(_random_tree(1), tx.init(params), params)  # one program, not op by op
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


FLAT = {"tok_embed": (V, D), "Dense_0.kernel": (D, 4 * D), "Dense_0.bias": (4 * D,), "Dense_1.kernel": (4 * D, D),
        "Dense_2.kernel": (D, D), "ln.scale": (D,), "lm_head.kernel": (D, V)}


def _flat(seed):
    rng = np.random.default_rng(seed)  # numpy's normals, as _random_tree's
    return {k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in FLAT.items()}


@pytest.mark.parametrize("wd_mode", ["coupled", "independent"])
@pytest.mark.parametrize("optimizer", ["lion", "muon"])
def test_lion_and_muon_steps_equal_the_runner_chain(optimizer, wd_mode):
    """Three steps of the export's transformation equal the runner's chain (``make_optimizer`` with the spec's
    per-role LRs, epsilons and decays as its 4-long arrays), leaf by leaf: optax.lion on every role; Muon with
    the shape factor on the hidden matrices and Adam elsewhere."""
    from abcscale.runner.optim import make_optimizer
    from abcscale.runner.sweep import ROLE_NAMES

    base = BaseConfig(width=64, beta=3e-3, weight_decay=0.1, weight_decay_mode=wd_mode)
    spec = group_spec(transfer("mup", optimizer, base, width=D), "multiplier_free")
    params = _flat(0)
    roles = abcoptax.labels(spec, params)
    assert sorted(set(roles.values())) == sorted(ROLE_NAMES[:4])  # no fixed parameter in this tree
    layers = {k: ROLE_NAMES.index(r) for k, r in roles.items()}
    per_role = lambda f: jnp.asarray([f(spec[r]) for r in ROLE_NAMES])  # noqa: E731
    runner = make_optimizer(optimizer, per_role(lambda s: s.lr), per_role(lambda s: s.epsilon or 1e-8), layers,
                            steps=3, schedule_kind="constant", wd_3=per_role(lambda s: s.weight_decay or 0.0),
                            wd_mode=wd_mode)
    ours = abcoptax.transform(spec, params)
    p1, p2, s1, s2 = params, params, ours.init(params), runner.init(params)
    # jitted, as a training loop runs both: eagerly, Muon's Newton-Schulz steps compiled op by op (126 small
    # programs, 7 CPU-s a case)
    update1, update2 = jax.jit(ours.update), jax.jit(runner.update)
    for step in (1, 2, 3):
        grads = _flat(step)
        u1, s1 = update1(grads, s1, p1)
        u2, s2 = update2(grads, s2, p2)
        for k in params:  # each role's step is lr-sized: compare at that scale
            np.testing.assert_allclose(u1[k], u2[k], rtol=1e-4, atol=1e-5 * spec[roles[k]].lr, err_msg=k)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    assert spec["hidden"].weight_decay and len({spec[r].lr for r in ROLE_NAMES}) >= 3  # decays and LRs exercised


def test_muon_export_orthogonalises_hidden_matrices_only():
    """Muon's first hidden step is lr * s * orth(g) (singular values near 1 times the shape factor
    s = sqrt(max(1, fan_out / fan_in))); the embedding's is AdamW's sign-like step. Both layouts."""
    spec = group_spec(transfer("mup", "muon", BaseConfig(width=64, beta=3e-3), width=D), "multiplier_free")
    for layout, shape in (("jax", (D, 4 * D)), ("torch", (4 * D, D))):  # fan_in D, fan_out 4D both times
        params = {"Dense_0.kernel": jnp.zeros(shape), "tok_embed": jnp.zeros((V, D))}
        grads = {k: jnp.asarray(np.random.default_rng(1).standard_normal(p.shape), jnp.float32)
                 for k, p in params.items()}
        tx = abcoptax.transform(spec, params, layout=layout)
        u, _ = jax.jit(tx.update)(grads, tx.init(params), params)  # jitted: Muon's steps are one program
        sv = np.linalg.svd(np.asarray(u["Dense_0.kernel"]), compute_uv=False) / (spec["hidden"].lr * 2.0)
        assert 0.5 < sv.min() and sv.max() < 1.3, (layout, sv.min(), sv.max())
        np.testing.assert_allclose(np.abs(u["tok_embed"]), spec["embedding"].lr, rtol=1e-3)
    lion = group_spec(transfer("mup", "lion", BaseConfig(width=64, beta=3e-3), width=D), "multiplier_free")
    tx = abcoptax.transform(lion, params)  # Lion: every entry moves by exactly its role's LR
    u, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_allclose(np.abs(u["Dense_0.kernel"]), lion["hidden"].lr, rtol=1e-6)


def test_init_draws_the_spec_stds_and_keeps_vector_leaves():
    spec = _spec()
    params = _flax_tree(jnp.ones)
    # jitted, as a training script's init step runs it: the same draws, one program a dtype where eagerly each op
    # compiled for each leaf's shape (0.8 of the test's 4.3 CPU-s, 2026-12-07); README's optax example draws eagerly
    init = jax.jit(functools.partial(abcoptax.init, spec))
    new = init(params, jax.random.key(0))
    stds = abcoptax.init_std_tree(spec, params)
    for name in ("tok_embed", "Dense_0", "Dense_1", "lm_head"):
        leaf = new["params"][name]["embedding" if name == "tok_embed" else "kernel"]
        want = stds["params"][name]["embedding" if name == "tok_embed" else "kernel"]
        assert float(jnp.std(leaf)) == pytest.approx(want, rel=0.03), name
        assert abs(float(jnp.mean(leaf))) < 0.05 * want
    assert bool(jnp.all(new["params"]["LayerNorm_0"]["scale"] == 1.0))
    assert bool(jnp.all(new["params"]["Dense_0"]["bias"] == 1.0))
    # the dtypes the jitted init gives, traced as it traces them but not compiled (a second program, for bfloat16)
    bf16 = jax.eval_shape(init, jax.tree.map(lambda x: x.astype(jnp.bfloat16), params), jax.random.key(0))
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


def test_torch_groups_for_lion_and_muon():
    """Lion's groups carry lr and weight_decay (no eps: Lion has none); Muon's split the hidden matrices into
    use_muon groups, and with names=False each group has exactly the keys Keller Jordan's MuonWithAuxAdam
    accepts."""
    base = BaseConfig(width=64, beta=3e-3, weight_decay=0.1)
    lion = group_spec(transfer("mup", "lion", base, width=D), "multiplier_free")
    for g in abctorch.param_groups(_Model(GPT), lion):
        s = lion[g["name"].split()[0]]
        assert (set(g), g["lr"], g["weight_decay"]) == ({"params", "name", "lr", "weight_decay"}, s.lr,
                                                         s.weight_decay or 0.0)
    muon = group_spec(transfer("mup", "muon", base, width=D), "multiplier_free")
    model = _Model({**GPT, "transformer.stacked.weight": (2, D, D)})  # hidden, a stack of matrices
    with pytest.warns(UserWarning, match=r"transformer.stacked.weight \(3-D\): stacks of hidden matrices"):
        groups = abctorch.param_groups(model, muon, names=False)
    # Muon's hidden LR is for its orthogonalised step: the stack is Muon's too (session 51; it was AdamW's)
    matrices = [model.params[k] for k in ("transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight",
                                          "transformer.stacked.weight")]
    assert sorted(id(p) for g in groups if g["use_muon"] for p in g["params"]) == sorted(map(id, matrices))
    for g in groups:
        assert set(g) == {"params", "lr", "weight_decay", "use_muon"} | (set() if g["use_muon"] else {"eps"})
    hidden = [g for g in groups if g["use_muon"]]
    assert {g["lr"] for g in hidden} == {muon["hidden"].lr} and len(hidden) == 2  # fan-in D and 4D
    with pytest.raises(ValueError, match="^use_muon: set per group"):
        abctorch.param_groups(model, muon, use_muon=True)


def _cli(*args):
    from typer.testing import CliRunner

    from abcscale.cli import app

    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize("optimizer", ["lion", "muon"])
def test_recommend_torch_snippet_builds_lion_or_muon(monkeypatch, optimizer):
    """``recommend --format torch`` for lion hands the groups to lion-pytorch's Lion (PyTorch has none), for
    muon the use_muon groups to torch.optim.Muon and the rest to AdamW, not Adam as before."""
    import types

    code = _cli("recommend", "-p", "mup", "-o", optimizer, "-n", "1024", "--base-width", "64", "--base-lr",
                "3e-3", "--weight-decay", "0.1", "--form", "plain", "--format", "torch")
    made = []
    record = lambda cls: lambda groups, **kw: made.append((cls, groups, kw)) or cls  # noqa: E731
    optim = types.SimpleNamespace(Optimizer=object, **{c: record(c) for c in ("Adam", "AdamW", "Muon")})
    groups = [{"use_muon": True, "lr": 1.0}, {"use_muon": False, "lr": 2.0}]
    stubs = {"torch": types.SimpleNamespace(nn=types.SimpleNamespace(Module=object), optim=optim),
             "lion_pytorch": types.SimpleNamespace(Lion=record("Lion")),
             "abcscale.torch": types.SimpleNamespace(init_=lambda m, s: None, param_groups=lambda m, s: groups)}
    for name, mod in stubs.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr("abcscale.torch", stubs["abcscale.torch"], raising=False)
    namespace: dict = {}
    exec(compile(code, "snippet", "exec"), namespace)
    out = namespace["configure"]("model")
    if optimizer == "lion":
        assert out == "Lion" and made == [("Lion", groups, {"betas": (0.9, 0.99)})]
    else:
        assert out == ["Muon", "AdamW"] and made == [("Muon", groups[:1], {}), ("AdamW", groups[1:], {})]
        assert "# muon: Muon" in code and "sqrt(max(1, fan_out / fan_in))" in code  # the plain fallback says it


def test_mup_export_names_what_runs_lion_and_muon():
    """``abcscale mup export``: MuAdam(impl=Lion) for lion; for muon, MuAdam only on the non-hidden groups and a
    warning that microsoft/mup has no Muon wrapper."""
    args = ["mup", "export", "-n", "1024", "--base-width", "64", "--base-lr", "3e-3"]
    assert "impl=Lion" in _cli(*args, "-o", "lion")
    out = " ".join(_cli(*args, "-o", "muon").split())
    assert "no Muon wrapper" in out and "MuAdam lr" not in out and "warning: microsoft/mup has no muon" in out
    assert "fan_in))) on the hidden 2-D matrices" in _cli("recommend", "-p", "mup", "-o", "muon", "-n", "1024",
                                                         "--base-width", "64", "--base-lr", "3e-3", "--format",
                                                         "optax")


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


def test_readme_optax_example_runs_as_printed(capsys):
    code, printed = _example("optax")
    capsys.readouterr()
    run_as_printed(code, "README.md's optax example")  # in this process, as a fresh interpreter would run it
    assert capsys.readouterr().out == printed
