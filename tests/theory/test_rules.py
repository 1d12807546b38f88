"""Per-optimizer rules (theory/rules.py): one registry, no silent fallback for an optimizer without a rule."""

from __future__ import annotations

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Optimizer
from abcscale.schemas.theory import BaseConfig, LayerSetting, Setting
from abcscale.theory.rules import OPTIMIZER_RULES

MISSING = "no theory rule for optimizer 'adafactor'; add one to OPTIMIZER_RULES in theory/rules.py"


def test_every_optimizer_has_a_rule():
    assert set(OPTIMIZER_RULES) == set(Optimizer)


@pytest.mark.parametrize("opt", list(Optimizer))
def test_k_is_the_exponent_that_keeps_the_update_invariant(opt):
    """U = p_a a + p_b b + c + s is unchanged by (a + theta, b - theta, c - k theta) iff k = p_a - p_b, on every
    layer of a mixed optimizer too (the constant s does not move)."""
    for _, rule in theory.layer_rules(opt).items():
        assert rule.k == rule.update_a - rule.update_b


def test_symmetry_exponents_and_epsilon_match_the_paper():
    assert {o.value: theory.layer_rules(o).k for o in Optimizer} == {"sgd": 2, "adam": 1, "adafactor": 0,
                                                                     "adamw": 1, "lion": 1, "muon": 1}
    # Muon's epsilon is Adam's, on the layers Adam runs; Lion has none
    assert [o.value for o in Optimizer if theory.layer_rules(o).has_epsilon] == ["adam", "adamw", "muon"]
    # SGD's is its L2 term (session 48), the others' decoupled
    assert [o.value for o in Optimizer if theory.layer_rules(o).weight_decay] == ["sgd", "adamw", "lion", "muon"]


def test_the_schemas_decay_list_is_the_registrys():
    """schemas/api.py validates weight_decay before theory runs (it cannot import theory): the same set."""
    from abcscale.schemas.api import DECOUPLED_DECAY
    assert DECOUPLED_DECAY == {o for o in Optimizer if theory.layer_rules(o).weight_decay}


def test_rule_lookup_accepts_strings_and_rejects_unknown_names():
    assert theory.optimizer_rule("Adam") is OPTIMIZER_RULES[Optimizer.adam]
    with pytest.raises(ValueError, match="unknown optimizer 'shampoo'; allowed: sgd, adam, adafactor, adamw, lion"):
        theory.optimizer_rule("shampoo")


def test_a_single_rule_optimizer_has_it_on_every_layer_and_a_mixed_one_needs_layer_rules():
    assert theory.layer_rules("lion").rules == (theory.optimizer_rule("lion"),) * len(LAYERS)
    assert not theory.layer_rules("lion").mixed and theory.layer_rules("muon").mixed
    with pytest.raises(ValueError, match="muon applies a different rule per layer; read it with layer_rules"):
        theory.optimizer_rule("muon")


@pytest.fixture
def without_adafactor(monkeypatch):
    monkeypatch.delitem(OPTIMIZER_RULES, Optimizer.adafactor)


def _setting() -> Setting:
    layers = [LayerSetting(layer=l, multiplier=1, init_std=1, lr=1) for l in LAYERS]
    return Setting(optimizer=Optimizer.adafactor, width=64, layers=layers)


@pytest.mark.parametrize("call", [
    lambda: theory.optimizer_rule("adafactor"),
    lambda: theory.solve_exponents("standard", "adafactor", "full"),
    lambda: theory.theory_exponent("standard", "adafactor", "full", "global"),
    lambda: theory.theory_table(),
    lambda: theory.transfer("standard", Optimizer.adafactor, BaseConfig(width=64, beta=1e-2), 128),
    lambda: theory.convert(_setting(), "standard", "ntk"),
], ids=["optimizer_rule", "solve_exponents", "theory_exponent", "theory_table", "transfer", "convert"])
def test_optimizer_without_a_rule_is_an_error_naming_the_registry(without_adafactor, call):
    with pytest.raises(ValueError, match=MISSING):
        call()


def test_a_cached_answer_does_not_hide_a_removed_rule(monkeypatch):
    theory.solve_exponents("standard", "adafactor", "none")  # now in the solver's cache
    monkeypatch.delitem(OPTIMIZER_RULES, Optimizer.adafactor)
    with pytest.raises(ValueError, match=MISSING):
        theory.solve_exponents("standard", "adafactor", "none")


def test_the_solver_reads_the_rule_not_the_name(monkeypatch):
    """Give adafactor Adam's rule and the LP answers with Adam's exponents: no per-name branch remains."""
    adam = {p: theory.solve_exponents(p, "adam", "full").c for p in ("standard", "mup", "mean_field")}
    monkeypatch.setitem(OPTIMIZER_RULES, Optimizer.adafactor, OPTIMIZER_RULES[Optimizer.adam])
    assert {p: theory.solve_exponents(p, "adafactor", "full").c for p in adam} == adam
