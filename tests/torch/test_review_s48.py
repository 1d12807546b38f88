"""Session 48, a vision engineer's review, on real PyTorch (``make test-torch``): a ConvTranspose2d input layer's
output keeps its size across widths, a grouped conv is hidden over its groups, a depthwise one vector-like, an
SGD classifier's head bias in the fixed group (tests/test_exports_review_s48.py has the torch-free fakes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import abcscale
from abcscale import torch as abctorch

BASE = 64
RULES = {r"^up\.": "embedding", "grouped": "hidden"}  # a grouped conv's role is the user's to say


def _spec(width, optimizer="adam"):
    return abcscale.recommend("mup", optimizer, width=width, base_width=BASE, beta=1e-3, form="multiplier_free").groups


def _decoder(width):
    return nn.ModuleDict({"up": nn.ConvTranspose2d(16, width, 3, padding=1), "mix": nn.Conv2d(width, width, 3),
                          "grouped": nn.Conv2d(width, width, 3, groups=4),
                          "dw": nn.Conv2d(width, width, 3, groups=width), "head": nn.Linear(width, 10)})


def test_a_transposed_conv_input_layers_output_keeps_its_size_across_widths():
    """Its init took a fan-in of width x 9 ([in, out, k, k] read as a Conv's): the output's RMS fell 4x from 64 to
    1024. Now the same at both widths, about 1 for a unit-variance input (stride 1: each output sums 16 x 9)."""
    x = torch.randn(8, 16, 12, 12, generator=torch.Generator().manual_seed(0))
    rms = {}
    for width in (BASE, 1024):
        m = _decoder(width)
        abctorch.init_(m, _spec(width), rules=RULES, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            rms[width] = (m["up"](x) - m["up"].bias[:, None, None]).pow(2).mean().sqrt().item()
    assert rms[1024] == pytest.approx(rms[BASE], rel=0.1) and 0.7 < rms[BASE] < 1.3, rms


def test_grouped_and_depthwise_convs_take_their_roles():
    width = 256
    m = _decoder(width)
    names = {id(p): n for n, p in m.named_parameters()}
    groups = {names[id(p)]: g for g in abctorch.param_groups(m, _spec(width), rules=RULES)
              for p in g["params"]}
    assert groups["grouped.weight"]["name"] == "hidden (fan-in 2.25x width)"
    assert groups["dw.weight"]["name"] == "vector" and groups["head.bias"]["name"] == "fixed"
    sgd = {names[id(p)]: g["lr"] for g in abctorch.param_groups(m, _spec(width, "sgd"),
                                                               rules=RULES) for p in g["params"]}
    assert sgd["head.bias"] == pytest.approx(1e-3) and sgd["mix.bias"] == pytest.approx(4e-3)  # fixed vs vector


def test_a_strided_upsampling_keeps_a_unit_output():
    """A U-Net's ConvTranspose2d(k=2, s=2): each output takes one tap a kernel axis; its init std was 2x too small."""
    x = torch.randn(8, 16, 12, 12, generator=torch.Generator().manual_seed(0))
    m = nn.ModuleDict({"up": nn.ConvTranspose2d(16, 256, 2, stride=2), "mix": nn.Conv2d(256, 256, 3),
                       "head": nn.Linear(256, 10)})
    abctorch.init_(m, _spec(256), rules={r"^up\.": "embedding"}, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        rms = (m["up"](x) - m["up"].bias[:, None, None]).pow(2).mean().sqrt().item()
    assert 0.8 < rms < 1.2, rms
