"""abcscale.torch on real PyTorch (``make test-torch``): groups, init and AdamW steps on a nanoGPT-like model,
and the README's PyTorch example as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from abcscale import torch as abctorch
from abcscale.schemas.theory import BaseConfig
from abcscale.theory import transfer
from abcscale.theory.groups import assign, group_spec
from tests.torch.models import GPT

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
D = 128


def _spec(optimizer="adamw", form="multiplier_free"):
    base = BaseConfig(width=32, beta=3e-3, weight_decay=0.1 if optimizer == "adamw" else 0.0)
    return group_spec(transfer("mup", optimizer, base, width=D), form)


def _loss(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 64, (4, 16), generator=g)
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


def test_groups_cover_every_parameter_once_with_the_role_numbers():
    spec = _spec()
    model = GPT(D)
    groups = abctorch.param_groups(model, spec)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            role, ratio = assign(names[id(p)], tuple(p.shape), D, spec.rules, layout="torch")
            s = spec[role]
            assert (g["lr"], g["eps"], g["weight_decay"]) == (s.lr, s.epsilon, s.weight_decay or 0.0)
            assert g["name"].startswith(role.value) and (ratio == 4) == ("fan-in 4x" in g["name"])
    by_name = {g["name"]: g for g in groups}
    assert [names[id(p)] for p in by_name["hidden (fan-in 4x width)"]["params"]] == [
        "transformer.h.0.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"]
    assert [names[id(p)] for p in by_name["embedding"]["params"]] == ["transformer.wte.weight",
                                                                       "transformer.wpe.weight"]


def test_init_draws_the_spec_stds_and_keeps_gains_and_biases():
    spec = _spec()
    model = GPT(D)
    kept = {n: p.detach().clone() for n, p in model.named_parameters() if p.ndim == 1}
    drawn = abctorch.init_(model, spec, generator=torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    for name in ("transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_fc.weight",
                 "transformer.h.0.mlp.c_proj.weight", "lm_head.weight"):
        assert params[name].std().item() == pytest.approx(drawn[name], rel=0.05), name
    assert drawn["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(spec.init_std("hidden", 4))
    assert kept and all(torch.equal(params[n], v) for n, v in kept.items())  # gains 1, biases as PyTorch drew them
    assert not set(kept) & set(drawn)


def test_a_dense_and_a_convolutional_input_take_their_fan_in():
    """An nn.Linear or nn.Conv2d given the embedding role is a dense input: the embedding's std x fan_in^-1/2,
    so pixels of unit variance enter at the lookup table's scale; an nn.Embedding keeps the std itself."""
    spec = _spec()
    mlp = torch.nn.Sequential(torch.nn.Linear(784, D), torch.nn.ReLU(), torch.nn.Linear(D, D), torch.nn.ReLU(),
                              torch.nn.Linear(D, 10))
    drawn = abctorch.init_(mlp, spec, rules=[(r"^0\.", "embedding"), (r"^4\.", "readout")],
                           generator=torch.Generator().manual_seed(0))
    assert drawn["0.weight"] == pytest.approx(spec.init_std("embedding") / 28)
    assert mlp[0].weight.std().item() == pytest.approx(drawn["0.weight"], rel=0.02)
    h = mlp[0](torch.randn(512, 784, generator=torch.Generator().manual_seed(1)))
    assert h.std().item() == pytest.approx(spec.init_std("embedding"), rel=0.1)  # the lookup table's scale
    vit = torch.nn.ModuleDict({"patch": torch.nn.Conv2d(3, D, 16, stride=16), "fc": torch.nn.Linear(D, D),
                               "head": torch.nn.Linear(D, 1000), "tok": torch.nn.Embedding(64, D)})
    drawn = abctorch.init_(vit, spec, rules=[("patch", "embedding"), ("head", "readout"), ("tok", "embedding")])
    assert drawn["patch.weight"] == pytest.approx(spec.init_std("embedding") / (3 * 16 * 16) ** 0.5)
    assert drawn["tok.weight"] == spec.init_std("embedding")


def test_a_tied_readout_is_the_embedding():
    spec = _spec()
    model = GPT(D, tie=True)
    with pytest.warns(UserWarning, match="one tensor .* trains as the embedding"):
        groups = abctorch.param_groups(model, spec)
    assert "readout" not in {g["name"] for g in groups}
    assert model.lm_head.weight in next(g for g in groups if g["name"] == "embedding")["params"]


def test_adamw_steps_are_the_specs():
    """torch.optim.AdamW on param_groups: step 1 moves each parameter by -lr (g / (|g| + eps) + wd W), its group's
    numbers; then the loss goes down."""
    spec = _spec()
    torch.manual_seed(0)
    model = GPT(D)
    abctorch.init_(model, spec)
    opt = torch.optim.AdamW(abctorch.param_groups(model, spec), betas=(0.9, 0.95))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss0 = _loss(model)
    loss0.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        s = spec[assign(n, tuple(p.shape), D, spec.rules, layout="torch")[0]]
        g, w = grads[n], before[n]
        want = w - s.lr * (g / (g.abs() + s.epsilon) + (s.weight_decay or 0.0) * w)
        torch.testing.assert_close(p.detach(), want, rtol=1e-5, atol=1e-4 * s.lr, msg=n)
    for step in range(20):
        opt.zero_grad()
        _loss(model, step % 2).backward()
        opt.step()
    assert _loss(model).item() < loss0.item() - 0.1


@pytest.mark.parametrize(("optimizer", "cls"), [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_groups_build_torch_optimizers(optimizer, cls):
    spec = _spec(optimizer)
    model = GPT(D)
    opt = cls(abctorch.param_groups(model, spec))
    assert {g["lr"] for g in opt.param_groups} == {s.lr for s in spec.roles}
    assert ("eps" in opt.param_groups[0]) == (optimizer == "adam")
    _loss(model).backward()
    opt.step()


def test_muon_groups_drive_torch_muon_and_adamw():
    """torch.optim.Muon on the use_muon groups (the hidden matrices) and AdamW on the rest: step 1 moves a hidden
    matrix by lr * sqrt(max(1, fan_out / fan_in)) times an orthogonalised one (after the coupled decay), every
    other parameter by AdamW's step with its group's eps; then the loss goes down."""
    base = BaseConfig(width=32, beta=3e-3, weight_decay=0.1)
    spec = group_spec(transfer("mup", "muon", base, width=D), "multiplier_free")
    torch.manual_seed(0)
    model = GPT(D)
    abctorch.init_(model, spec)
    groups = abctorch.param_groups(model, spec)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = [g for g in groups if g["use_muon"]]
    assert {names[id(p)].split(".")[-2] for g in muon for p in g["params"]} == {"c_attn", "c_proj", "c_fc"}
    assert all(p.ndim == 2 and "eps" not in g for g in muon for p in g["params"])
    opts = [torch.optim.Muon(muon), torch.optim.AdamW([g for g in groups if not g["use_muon"]])]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss0 = _loss(model)
    loss0.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    for opt in opts:
        opt.step()
    for n, p in model.named_parameters():
        s = spec[assign(n, tuple(p.shape), D, spec.rules, layout="torch")[0]]
        w, wd = before[n], s.weight_decay or 0.0
        if any(p is q for g in muon for q in g["params"]):
            shape = max(1.0, p.shape[0] / p.shape[1]) ** 0.5  # [out, in]: fan_out / fan_in
            step = (w * (1 - s.lr * wd) - p.detach()) / (s.lr * shape)
            # a gradient from 60 tokens has rank <= 60: its leading singular values go to about 1
            sv = torch.linalg.svdvals(step)[:16]
            assert 0.6 < sv.min() and sv.max() < 1.3, (n, sv.min(), sv.max())
        else:
            g = grads[n]
            want = w - s.lr * (g / (g.abs() + s.epsilon) + wd * w)
            torch.testing.assert_close(p.detach(), want, rtol=1e-5, atol=1e-4 * s.lr, msg=n)
    for step in range(20):
        for opt in opts:
            opt.zero_grad()
        _loss(model, step % 2).backward()
        for opt in opts:
            opt.step()
    assert _loss(model).item() < loss0.item() - 0.1


def test_recommend_muon_snippet_runs_on_a_real_model():
    """``abcscale recommend -o muon --format torch``, run as printed: torch.optim.Muon holds the hidden matrices,
    AdamW everything else, and both step."""
    from typer.testing import CliRunner

    from abcscale.cli import app

    res = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "muon", "-n", str(D), "--base-width", "32",
                                   "--base-lr", "3e-3", "--weight-decay", "0.1", "--form", "plain", "--format",
                                   "torch"])
    assert res.exit_code == 0, res.output
    namespace: dict = {}
    exec(compile(res.stdout, "snippet", "exec"), namespace)
    model = GPT(D)
    muon, adamw = namespace["configure"](model)
    assert (type(muon), type(adamw)) == (torch.optim.Muon, torch.optim.AdamW)
    held = {id(p) for g in muon.param_groups for p in g["params"]}
    assert held == {id(p) for n, p in model.named_parameters() if p.ndim == 2 and ".h." in n}
    _loss(model).backward()
    muon.step()
    adamw.step()


def test_readme_torch_example_runs_as_printed():
    section = README.split("## Apply it to your model", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"<!-- example: torch -->\s*```python\n(.*?)```\s*which prints\s*```text\n(.*?)```",
                      section, re.S)
    assert found, "README's 'Apply it to your model' lacks the torch example"
    out = subprocess.run([sys.executable, "-c", found.group(1)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == found.group(2)


def test_adafactor_groups_carry_the_forms_floor_and_step_like_the_abc_form():
    """torch.optim.Adafactor scales a step by max(rms(W), eps[1]); the multiplier-free readout at width 4096 starts
    at std 1/4096, below the default 1e-3: its group's floor is mapped so its step is the abc form's times t."""
    width = 4096
    tr = transfer("mup", "adafactor", BaseConfig(width=256, beta=1e-2), width)
    abc, plain = group_spec(tr, "abc"), group_spec(tr, "multiplier_free")
    t = abc["readout"].init_std / plain["readout"].init_std

    def step(spec, scale):
        model = torch.nn.Module()
        model.lm_head = torch.nn.Linear(width, 32, bias=False)
        with torch.no_grad():
            model.lm_head.weight.copy_(torch.randn(32, width, generator=torch.Generator().manual_seed(0))
                                       * abc["readout"].init_std / scale)
        groups = abctorch.param_groups(model, spec, form=spec.form)  # each form as such: the test applies its scale
        assert groups[0]["eps"] == (abctorch.ADAFACTOR_EPS1, spec["readout"].param_scale_floor)
        opt = torch.optim.Adafactor(groups)
        before = model.lm_head.weight.detach().clone()
        model.lm_head.weight.grad = torch.randn(32, width, generator=torch.Generator().manual_seed(1)) * scale
        opt.step()
        return model.lm_head.weight.detach() - before

    torch.testing.assert_close(step(plain, t) * t, step(abc, 1.0), rtol=1e-4, atol=1e-12)
