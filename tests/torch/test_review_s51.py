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


def test_torch_adafactor_steps_alike_whatever_the_gradients_scale():
    """Session 52: Adafactor's step is invariant to the gradient's scale (its second moment normalises it) down to
    optax's epsilon (1e-30 on g^2). torch.optim.Adafactor's default eps[0], float32's 1.2e-7, floors the mean of
    g^2 over a matrix's rows and the second moment itself at its square: below a gradient RMS of about 6.5e-6
    (eps^(3/4)) the step loses the second moment's row and column normalisation (five steps changed by 19% at
    RMS 1e-6, by 1e-6 at 1e-5), and a hidden gradient's RMS falls with the width (docs/theory.md section 5). The
    groups set eps[0] = 1e-15: five steps at RMS 1e-6 are those at RMS 1."""
    width = 256
    spec = abcscale.recommend("mup", "adafactor", width=width, base_width=64, beta=1e-2).groups

    def steps(scale, groups_eps=True):
        model = torch.nn.Module()
        model.mlp = torch.nn.Linear(width, width, bias=False)
        with torch.no_grad():
            model.mlp.weight.copy_(torch.randn(width, width, generator=torch.Generator().manual_seed(0)) * 0.05)
        groups = abctorch.param_groups(model, spec)
        assert groups[0]["eps"][0] == abctorch.ADAFACTOR_EPS1
        if not groups_eps:
            groups[0]["eps"] = (None, groups[0]["eps"][1])
        opt = torch.optim.Adafactor(groups)
        before = model.mlp.weight.detach().clone()
        rows = 1.0 + 3.0 * torch.arange(width)[:, None] / width  # rows of unequal scale
        for k in range(5):
            g = torch.randn(width, width, generator=torch.Generator().manual_seed(1 + k)) * rows
            model.mlp.weight.grad = g * (1.0 + 2.0 * k) * scale  # a gradient growing over the steps
            opt.step()
        return model.mlp.weight.detach() - before

    unit = steps(1.0)
    torch.testing.assert_close(steps(1e-6), unit, rtol=1e-3, atol=1e-7)  # float32 rounding
    change = {s: float((steps(s, groups_eps=False) - unit).norm() / unit.norm()) for s in (1e-4, 1e-5, 1e-6)}
    print("torch's default eps[0]: the five steps changed by", change)
    assert change[1e-6] > 0.1, change


def test_a_float16_adafactor_group_keeps_torchs_own_eps():
    """1e-15 squared is 0 in float16, and rsqrt(0) inf: a half-precision model went NaN in three steps (a code
    review). Its groups keep torch's eps[0] (float16's machine epsilon); float32 groups take 1e-15."""
    width, vocab = 256, 1000
    spec = abcscale.recommend("mup", "adafactor", width=width, base_width=64, beta=1e-2).groups
    model = torch.nn.Module()
    model.embed = torch.nn.Embedding(vocab, width)
    model.mlp = torch.nn.Linear(width, width)
    model.lm_head = torch.nn.Linear(width, vocab, bias=False)
    assert all(g["eps"][0] == abctorch.ADAFACTOR_EPS1 for g in abctorch.param_groups(model, spec))
    model = model.half()
    groups = abctorch.param_groups(model, spec)
    assert all(g["eps"][0] is None for g in groups)
    opt = torch.optim.Adafactor(groups)
    x = torch.randint(0, vocab, (4, 8), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        opt.zero_grad()
        model.lm_head(model.mlp(model.embed(x))).float().logsumexp(-1).mean().backward()
        opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _ByteLM(torch.nn.Module):
    """PyTorch's word-language-model example's names: encoder, rnn, decoder (a byte model: vocabulary = width)."""

    def __init__(self, width: int, vocab: int):
        super().__init__()
        self.encoder = torch.nn.Embedding(vocab, width)
        self.rnn = torch.nn.LSTM(width, width)
        self.decoder = torch.nn.Linear(width, vocab)


def test_a_byte_models_decoder_and_wrapped_names_session_52():
    """A PyTorch user's review (session 52): a byte LSTM's square `decoder` trained as a hidden matrix, unsaid (now
    a rule is asked for); the user's anchored rule then worked on the plain model but not under DataParallel's
    `module.` prefix (or torch.compile's `_orig_mod.`), where the decoder went back to hidden; a rule that
    matches nothing was unsaid."""
    spec = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3, form="multiplier_free").groups
    with pytest.raises(ValueError, match=r"'decoder.weight' \[256, 256\]: named like the readout.*square"):
        abctorch.param_groups(_ByteLM(256, 256), spec)
    rules = [(r"^decoder\.weight$", "readout")]
    for model in (_ByteLM(256, 256), torch.nn.DataParallel(_ByteLM(256, 256))):
        names = {id(p): n for n, p in model.named_parameters()}
        groups = abctorch.param_groups(model, spec, rules=rules)
        (readout,) = [g for g in groups if g["name"] == "readout"]
        assert [names[id(p)].removeprefix("module.") for p in readout["params"]] == ["decoder.weight"]
        assert readout["lr"] == spec["readout"].lr
    with pytest.warns(UserWarning, match=r"rules: '\^lm_haed' matched no parameter"):
        abctorch.param_groups(_ByteLM(256, 256), spec, rules=[*rules, ("^lm_haed", "readout")])


def test_one_weight_decay_for_an_adam_specs_groups_is_refused():
    """Every group given 0.1 (AdamW's lr x wd then scales apart across the groups, section 9's failing case) was
    taken unsaid, where SGD's was refused (a review)."""
    spec = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3, form="multiplier_free").groups
    with pytest.raises(ValueError, match=r"weight_decay: an adam spec carries no decay.*-o adamw"):
        abctorch.param_groups(_ByteLM(256, 512), spec, weight_decay=0.1)
    abctorch.param_groups(_ByteLM(256, 512), spec, weight_decay=0.0)  # none is none
