"""Session 47, a PyTorch user's review, on real PyTorch and microsoft/mup (``make test-torch``): init_ keeps an
nn.Embedding's padding row at zero and frozen parameters as they are; a MuReadout model with a multiplier-free
spec is refused, and with the mup form its logits match a plain model's under the multiplier-free form."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import abcscale
from abcscale import torch as abctorch

D, B, V = 256, 64, 512


def _spec(form="multiplier_free"):
    return abcscale.recommend("mup", "adam", width=D, base_width=B, beta=1e-3, form=form).groups


def test_init_keeps_the_padding_row_and_frozen_parameters():
    m = nn.ModuleDict({"wte": nn.Embedding(V, D, padding_idx=3), "c_fc": nn.Linear(D, 4 * D),
                       "c_proj": nn.Linear(4 * D, D), "lm_head": nn.Linear(D, V, bias=False)})
    drawn = abctorch.init_(m, _spec(), generator=torch.Generator().manual_seed(0))
    assert "wte.weight" in drawn and m["wte"].weight[3].abs().sum().item() == 0.0
    assert m["wte"].weight[4].std().item() == pytest.approx(drawn["wte.weight"], rel=0.2)
    pretrained = torch.randn(V, D)
    m["wte"].weight.data.copy_(pretrained)
    m["wte"].weight.requires_grad_(False)
    with pytest.warns(UserWarning, match=r"kept 1 frozen parameter\(s\).*wte.weight"):
        drawn = abctorch.init_(m, _spec())
    assert "wte.weight" not in drawn and torch.equal(m["wte"].weight, pretrained)
    abctorch.init_(m, _spec(), frozen=True)
    assert not torch.equal(m["wte"].weight, pretrained)


class _T(nn.Module):
    def __init__(self, d, head):
        super().__init__()
        self.wte, self.c_fc, self.c_proj = nn.Embedding(V, d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.lm_head = head(d, V, bias=False)

    def forward(self, x):
        h = self.wte(x)
        return self.lm_head(h + self.c_proj(torch.relu(self.c_fc(h))))


def test_mu_readout_takes_the_mup_form_only():
    mup = pytest.importorskip("mup")
    mu = _T(D, mup.MuReadout)
    mup.set_base_shapes(mu, _T(B, mup.MuReadout), delta=_T(2 * B, mup.MuReadout))
    with pytest.raises(ValueError, match="MuReadout.*multiplier_free form"):
        abctorch.param_groups(mu, _spec(), form="multiplier_free")
    plain = _T(D, nn.Linear)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mup base-shapes note: these groups go to torch.optim
        torch.manual_seed(0)
        abctorch.init_(mu, _spec("mup"), form="mup")
        torch.manual_seed(0)
        abctorch.init_(plain, _spec(), form="multiplier_free")
    with torch.no_grad():  # init_ keeps biases; mup's set_base_shapes rescaled them: zero in both
        for model in (mu, plain):
            model.c_fc.bias.zero_()
            model.c_proj.bias.zero_()
    x = torch.randint(0, V, (4, 8))
    with torch.no_grad():  # MuReadout's 1/width_mult on the mup form's readout = the multiplier-free readout
        torch.testing.assert_close(mu(x), plain(x), rtol=1e-5, atol=1e-6)
