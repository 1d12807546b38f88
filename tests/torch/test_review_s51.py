"""A Muon spec's hidden conv kernel in the torch export (session 51's optimizer review): it went to the AdamW
groups at Muon's hidden LR (c = 0 under muP: 16x Adam's hidden LR at 16x the base width, with torch's eps). It is
Muon's now, with a warning that torch.optim.Muon takes 2-D matrices only."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402


def test_a_conv_kernel_is_in_a_muon_group_and_said():
    spec = abcscale.recommend("mup", "muon", width=1024, base_width=64, beta=1e-3, form="multiplier_free").groups
    m = nn.ModuleDict({"wte": nn.Embedding(50, 1024), "conv": nn.Conv1d(1024, 1024, 3, bias=False),
                       "fc1": nn.Linear(1024, 1024, bias=False), "lm_head": nn.Linear(1024, 50, bias=False)})
    with pytest.warns(UserWarning, match=r"conv.weight \(3-D\): hidden tensors of more than two axes"):
        groups = abctorch.param_groups(m, spec)
    conv = next(g for g in groups if any(p is m["conv"].weight for p in g["params"]))
    assert conv["use_muon"] is True and "eps" not in conv
    assert all(g["use_muon"] is False for g in groups if any(p is m["wte"].weight for p in g["params"]))


def test_torch_adafactor_s_cap_is_said():
    """torch.optim.Adafactor steps by min(lr, 1/sqrt(t)): past t = 1/lr^2 the groups' ratios collapse (the review
    measured emb / hidden / readout 0.1 / 0.05 / 0.1 at steps 1-100 and 0.05 / 0.05 / 0.05 at step 400)."""
    spec = abcscale.recommend("mup", "adafactor", width=256, base_width=64, beta=0.1, form="multiplier_free").groups
    m = nn.ModuleDict({"wte": nn.Embedding(50, 256), "fc1": nn.Linear(256, 256, bias=False),
                       "lm_head": nn.Linear(256, 50, bias=False)})
    with pytest.warns(UserWarning, match=r"from step 100 on the largest LR here \(0.1\)"):
        groups = abctorch.param_groups(m, spec)
    opt = torch.optim.Adafactor(groups)
    assert {g["lr"] for g in opt.param_groups} == {0.1, 0.05}
