"""Session 47: a PyTorch user's review of the exports (abcscale.torch), without PyTorch: module classes read by
name, as the exports read them. Silent role mistakes (a lookup table or a second head trained as a hidden
matrix), a MuReadout given another form's readout numbers, and SGD's extra keys. tests/torch/test_review_s47.py
runs the same on real PyTorch and microsoft/mup."""

from __future__ import annotations

import warnings

import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.schemas.groups import Role
from abcscale.theory.groups import DEFAULT_RULES, check_width
from tests.test_exports import _Tensor
from tests.test_exports_review_s36 import Embedding, Linear, _ConvNd, _Net

W = 256


def _spec(form="multiplier_free", optimizer="adam"):
    return abcscale.recommend("mup", optimizer, width=W, base_width=64, beta=1e-3, form=form).groups


def _roles(net, spec=None):
    spec = spec or _spec()
    groups = abctorch.param_groups(net, spec)
    names = {id(p): n for n, p in net.named_parameters()}
    return {names[id(p)]: g["name"] for g in groups for p in g["params"]}


def test_a_lookup_table_is_an_embedding_by_its_class():
    """nn.Sequential's `0.weight` (an nn.Embedding [4D, D]) trained as a hidden matrix: 32x too small an LR and
    16x too small an init std under muP at 4x the base width. Its class says embedding; the readout beside it,
    [4D, D] with the vocabulary of the table, is then not guessed."""
    net = _Net(**{"0": Embedding(4 * W, W), "1": Linear(W, W), "3": Linear(4 * W, W)})
    with pytest.raises(ValueError, match=r"'3.weight' \[1024, 256\].*1024 is the vocabulary of '0.weight'"):
        _roles(net)
    roles = abctorch.param_groups(net, _spec(), rules=[(r"^3\.", "readout")])
    by = {g["name"]: g for g in roles}
    assert net.modules["0"].weight in by["embedding"]["params"]
    assert by["embedding"]["lr"] == pytest.approx(_spec()["embedding"].lr)
    # a rule of the user's still comes first
    assert net.modules["0"].weight in {g["name"]: g for g in abctorch.param_groups(
        net, _spec(), rules=[(r"^0\.", "hidden"), (r"^3\.", "readout")])}["hidden"]["params"]


def test_a_second_head_of_the_vocabulary_is_not_a_hidden_matrix():
    """Multi-token prediction heads [V, D] beside a named lm_head: unnamed, unpaired, of the vocabulary's size."""
    placed = [("wte.weight", (512, W), "embedding"), ("h.0.attn.weight", (W, W), "hidden"),
              ("lm_head.weight", (512, W), "readout"), ("mtp_heads.0.weight", (512, W), "hidden")]
    with pytest.raises(ValueError, match=r"'mtp_heads.0.weight'.*512 is the vocabulary of"):
        check_width([(n, s, Role(r)) for n, s, r in placed], W, "torch", DEFAULT_RULES)
    # a block MLP of the vocabulary's ratio is paired (up and down) and stays hidden
    placed = [("wte.weight", (4 * W, W), "embedding"), ("h.0.0.weight", (4 * W, W), "hidden"),
              ("h.0.1.weight", (W, 4 * W), "hidden"), ("lm_head.weight", (4 * W, W), "readout")]
    check_width([(n, s, Role(r)) for n, s, r in placed], W, "torch", DEFAULT_RULES)


def test_a_square_top_level_head_beside_an_embedding():
    """A byte model at width 256 (vocabulary = width): `head` [256, 256] was trained as hidden, unsaid."""
    net = _Net(wte=Embedding(W, W), **{"blocks.0": Linear(W, W)}, head=Linear(W, W, bias=False))
    with pytest.raises(ValueError, match=r"'head.weight' \[256, 256\]: named like the readout.*\('head', 'readout'\)"):
        _roles(net)
    groups = abctorch.param_groups(net, _spec(), rules=[("head", "readout")])
    assert net.modules["head"].weight in {g["name"]: g for g in groups}["readout"]["params"]


class MuReadout(Linear):  # microsoft/mup's class, by name
    pass


def test_mu_readout_and_the_form():
    """A MuReadout divides by width_mult: with a multiplier_free (or abc) spec the factor applied twice, and
    `multipliers()` said nothing was needed. It is refused; the mup form takes it without a warning, and a mup
    spec on a plain nn.Linear readout warns."""
    net = _Net(wte=Embedding(512, W), c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W), lm_head=MuReadout(512, W))
    for form in ("multiplier_free", "abc"):
        with pytest.raises(ValueError, match=r"'lm_head.weight' is microsoft/mup's MuReadout.*mup form"):
            abctorch.param_groups(net, _spec(form), form=form)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        abctorch.param_groups(net, _spec("mup"))
    plain = _Net(wte=Embedding(512, W), c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W), lm_head=Linear(512, W))
    with pytest.warns(UserWarning, match="mup form.*MuReadout divides the readout's output by width_mult"):
        abctorch.param_groups(plain, _spec("mup"))


def test_extra_keys_only_clash_with_what_the_groups_set():
    """SGD's groups took `momentum`; one `weight_decay=5e-4` for every group (its L2 term) is refused since session
    48: it does not transfer (the spec carries SGD's decay per group, recommend(weight_decay=))."""
    net = _Net(wte=Embedding(512, W), c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W), lm_head=Linear(512, W))
    groups = abctorch.param_groups(net, _spec(optimizer="sgd"), momentum=0.9)
    assert all(g["momentum"] == 0.9 and "weight_decay" not in g for g in groups)
    with pytest.raises(ValueError, match="weight_decay: one decay for every group does not transfer"):
        abctorch.param_groups(net, _spec(optimizer="sgd"), weight_decay=5e-4)
    decayed = abcscale.recommend("mup", "sgd", width=W, base_width=64, beta=0.1, form="multiplier_free",
                                 weight_decay=5e-4).groups
    groups = abctorch.param_groups(net, decayed, momentum=0.9)
    assert {g["name"]: g["lr"] * g["weight_decay"] for g in groups} == pytest.approx(
        {"embedding": 5e-5, "hidden": 5e-5, "hidden (fan-in 4x width)": 5e-5, "readout": 5e-5, "vector": 0.0,
         "fixed": 0.0})
    with pytest.raises(ValueError, match="weight_decay: set per group"):
        abctorch.param_groups(net, abcscale.recommend("mup", "adamw", width=W, base_width=64, beta=1e-3,
                                                      form="multiplier_free", weight_decay=0.1).groups,
                              weight_decay=5e-4)
    with pytest.raises(ValueError, match="eps: set per group"):
        abctorch.param_groups(net, _spec(), eps=1e-6)


class Conv2d(_ConvNd):  # [out, in, kh, kw], as nn.Conv2d
    pass


class RNNBase:  # nn.LSTM and nn.GRU subclass it
    def __init__(self, hidden):
        self.weight_ih_l0, self.weight_hh_l0 = _Tensor(4 * hidden, hidden), _Tensor(4 * hidden, hidden)
        self.bias_ih_l0 = _Tensor(4 * hidden)

    def named_parameters(self, recurse=False):
        return iter([("weight_ih_l0", self.weight_ih_l0), ("weight_hh_l0", self.weight_hh_l0),
                     ("bias_ih_l0", self.bias_ih_l0)])


class LSTM(RNNBase):
    pass


def test_a_convolution_is_read_by_its_channels():
    """A conv [out, in, k, k] was read by its kernel axes ("a hidden matrix's shape for width 3"), so a CNN could
    not be placed at all. Its channels [out, in] say its role, and a hidden conv's fan-in is in x k x k: its init
    std is the hidden role's over k (the same rule as an MLP's 4D fan-in)."""
    net = _Net(stem=Conv2d(W, 3, 3, 3), conv=Conv2d(W, W, 3, 3), head=Linear(10, W))
    with pytest.raises(ValueError, match=r"'stem.weight' \[256, 3, 3, 3\] \(a convolution, read by its channels "
                                         r"\[out, in\] = \[256, 3\]\): no rule names its role"):
        abctorch.param_groups(net, _spec())
    drawn = abctorch.init_(net, _spec(), rules={"stem": "embedding"})
    assert drawn["conv.weight"] == pytest.approx(_spec().init_std("hidden") / 3)
    assert drawn["stem.weight"] == pytest.approx(_spec().init_std("embedding") / 27 ** 0.5)  # a dense input, 3x3x3


def test_an_lstms_gates_are_hidden_by_class():
    """PyTorch's word_language_model: `rnn.weight_ih_l0` and `rnn.weight_hh_l0` [4H, H] were refused as "an
    embedding's and a readout's" shapes, with the encoder and decoder already placed by rules."""
    net = _Net(encoder=Embedding(1000, W), rnn=LSTM(W), decoder=Linear(1000, W))
    groups = {g["name"]: g for g in abctorch.param_groups(net, _spec(), rules={"decoder": "readout"})}
    assert net.modules["rnn"].weight_ih_l0 in groups["hidden"]["params"]
    assert net.modules["rnn"].weight_hh_l0 in groups["hidden"]["params"]
    assert net.modules["encoder"].weight in groups["embedding"]["params"]  # by its class, without a rule


# --- a code review of the above: the new rules' false alarms -------------------------------------------------


def test_a_square_head_with_a_rule_is_what_the_rule_says():
    net = _Net(embed=Embedding(1000, W), **{"blocks.0": Linear(W, W)}, head=Linear(W, W))
    groups = {g["name"]: g for g in abctorch.param_groups(net, _spec(), rules=[("head", "hidden")])}
    assert net.modules["head"].weight in groups["hidden"]["params"]  # the error's own advice was refused too


def test_the_specs_own_rules_come_before_the_classes():
    """recommend(rules=...) puts the user's rules in the spec: they lost to the nn.Embedding class rule."""
    net = _Net(wte=Embedding(512, W), type_emb=Embedding(W, W), c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W),
               lm_head=Linear(512, W))
    spec = abcscale.recommend("mup", "adam", width=W, base_width=64, beta=1e-3, form="multiplier_free",
                              rules=[("type_emb", "hidden")]).groups
    groups = {g["name"]: g for g in abctorch.param_groups(net, spec)}
    assert net.modules["type_emb"].weight in groups["hidden"]["params"]


def test_an_rnn_input_on_fixed_features_is_not_hidden():
    """nn.LSTM(10, D): its weight_ih_l0 [4D, 10] takes 10 features, a fixed fan-in: not a hidden matrix (its LR
    fell 8x from width 64 to 512); it asks for a rule as before, and the gates on the width stay hidden."""
    class _LSTM(RNNBase):
        def __init__(self):
            super().__init__(W)
            self.weight_ih_l0 = _Tensor(4 * W, 10)

    net = _Net(rnn=_LSTM(), head=Linear(10, W))
    with pytest.raises(ValueError, match="rnn.weight_ih_l0"):
        abctorch.param_groups(net, _spec(), rules={"head": "readout"})
    groups = {g["name"]: g for g in abctorch.param_groups(
        net, _spec(), rules={"head": "readout", "weight_ih": "embedding"})}
    assert net.modules["rnn"].weight_hh_l0 in groups["hidden"]["params"]


def test_a_position_tables_length_is_no_vocabulary():
    """A fused gate+up [8D, D] (Phi-3's name, which no default rule has) of a position table's length was refused as
    "the vocabulary of 'wpe.weight'"."""
    placed = [("wte.weight", (32000, 128), "embedding"), ("wpe.weight", (1024, 128), "embedding"),
              ("layers.0.gate_up_proj.weight", (1024, 128), "hidden"), ("layers.0.down_proj.weight", (128, 512),
                                                                         "hidden"),
              ("lm_head.weight", (32000, 128), "readout")]
    check_width([(n, s, Role(r)) for n, s, r in placed], 128, "torch", DEFAULT_RULES)


class MuSharedReadout(MuReadout):  # microsoft/mup's tied readout, by name
    pass


class _TiedNet(_Net):
    """named_parameters() lists a tied tensor once, under its first name, as PyTorch does."""

    def named_parameters(self, recurse=True, remove_duplicate=True):
        seen, out = set(), []
        for name, p in super().named_parameters(recurse):
            if remove_duplicate and id(p) in seen:
                continue
            seen.add(id(p))
            out.append((name, p))
        return iter(out)


def test_a_mu_shared_readout_with_another_forms_spec_is_refused():
    """Session 47's notes, done in session 48: a tied MuSharedReadout divides the tied logits by width_mult on top of
    the tied-logits multiplier a multiplier-free spec asks for; as an untied MuReadout, it is refused."""
    wte = Embedding(512, W)
    head = MuSharedReadout(512, W)
    head.weight = wte.weight
    net = _TiedNet(wte=wte, c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W), lm_head=head)
    with pytest.raises(ValueError, match=r"'lm_head.weight' is microsoft/mup's MuSharedReadout, tied to 'wte.weight'"):
        abctorch.param_groups(net, _spec())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tied warning
        groups = abctorch.param_groups(net, _spec(form="mup"))
    assert sum(len(g["params"]) for g in groups) == 6  # wte, c_fc (2), c_proj (2), lm_head.bias
    plain = _TiedNet(wte=wte, c_fc=Linear(4 * W, W), c_proj=Linear(W, 4 * W), lm_head=Linear(512, W, bias=False))
    plain.modules["lm_head"].weight = wte.weight
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abctorch.param_groups(plain, _spec())  # a plain tied readout: the warning's multiplier, no refusal
