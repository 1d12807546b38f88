"""Session 60's review of the torch export: a rule typo given to recommend(rules=...) was silent (the call's own
rules= warned) and an unplaceable parameter's error did not name it; spec.mup.lr had no key for the fixed group
param_groups makes under SGD; multipliers() listed the readout's factor a MuReadout already applies."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402

D = 512


def _model(**more: nn.Module) -> nn.ModuleDict:
    return nn.ModuleDict({"emb": nn.Embedding(100, D), "body": nn.Linear(D, D), "decoder": nn.Linear(D, 100),
                          **more})


def _spec(rules=None, optimizer: str = "adam", form: str = "multiplier_free", **kw):
    return abcscale.recommend("mup", optimizer, width=D, base_width=256, beta=3e-3, form=form, rules=rules,
                              **kw).groups


def _said(call) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in got if "matched no parameter" in str(w.message)]


def test_a_recommend_rule_that_matches_no_parameter_is_said():
    typo = [(r"^bdoy\.weight$", "hidden")]
    spec = _spec(typo)
    for call in (lambda m: abctorch.param_groups(m, spec), lambda m: abctorch.init_(m, spec),
                 lambda m: abctorch.multipliers(m, spec)):
        model = _model()
        said = _said(lambda: call(model))  # noqa: B023
        assert len(said) == 1 and "'^bdoy\\\\.weight$'" in said[0]
        # session 63: once per model, not again by each of the three calls a configure() makes
        assert _said(lambda: abctorch.param_groups(model, spec)) == []  # noqa: B023
    assert len(_said(lambda: abctorch.param_groups(_model(), spec, rules=typo))) == 1  # given twice: said once
    assert _said(lambda: abctorch.param_groups(_model(), _spec())) == []  # the default rules are not the user's


def test_an_unplaceable_parameters_error_names_the_unmatched_rule():
    model = _model(proj=nn.Linear(D, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no rule names its role") as exc:
            abctorch.param_groups(model, _spec([(r"^proj\.weigth$", "readout")]))
        assert "your rules '^proj\\\\.weigth$' matched no parameter" in str(exc.value)
        with pytest.raises(ValueError) as exc:  # the call's own too
            abctorch.param_groups(model, _spec(), rules=[(r"^prj\.weight$", "readout")])
        assert "your rules '^prj\\\\.weight$' matched no parameter" in str(exc.value)
        abctorch.param_groups(model, _spec([(r"^proj\.weight$", "readout")]))  # spelt right: placed


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_mup_view_has_each_param_groups_name(optimizer):
    model = nn.ModuleDict({"wte": nn.Embedding(100, D), "mlp": nn.Linear(D, D), "up": nn.Linear(D, 4 * D),
                           "down": nn.Linear(4 * D, D), "lm_head": nn.Linear(D, 100)})
    spec = _spec(optimizer=optimizer, form="mup", weight_decay=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        groups = abctorch.param_groups(model, spec)
    names = [g["name"] for g in groups]
    assert "fixed" in names and any("fan-in 4x" in n for n in names)
    for g in groups:  # what MuSGD / MuAdamW is given for the group: its role's mup_lr
        role = g["name"].split(" ")[0]
        assert spec.mup.lr[g["name"]] == pytest.approx(spec[role].mup_lr)
        if spec.mup.weight_decay is not None:
            assert spec.mup.weight_decay[g["name"]] == spec.mup.weight_decay[role]


def test_multipliers_leave_out_what_a_mureadout_applies():
    mup = pytest.importorskip("mup")

    def make(d: int) -> nn.ModuleDict:
        return nn.ModuleDict({"wte": nn.Embedding(100, d), "mlp": nn.Linear(d, d, bias=False),
                              "lm_head": mup.MuReadout(d, 100, bias=False)})

    model = make(4 * 256)
    mup.set_base_shapes(model, make(256))
    spec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3, form="mup").groups
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = abctorch.multipliers(model, spec)
    assert out == {}  # was {'lm_head.weight': 0.25}: applied twice by a forward that multiplies by it
    said = [str(w.message) for w in got if "MuReadout" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("lm_head.weight (0.25): microsoft/mup's MuReadout applies")
    plain = nn.ModuleDict({"wte": nn.Embedding(100, 1024), "mlp": nn.Linear(1024, 1024, bias=False),
                           "lm_head": nn.Linear(1024, 100, bias=False)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abctorch.multipliers(plain, spec) == {"lm_head.weight": pytest.approx(0.25)}  # a plain one keeps it
