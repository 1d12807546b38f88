"""Session 63: a hidden layer's bias as long as the vocabulary was read as the readout's bias (the fixed role) by
its length alone (theory.groups.settle_fixed); and values defined exact came out with float noise: the fixed role's
epsilon 9.999999999999999e-09 for a base 1e-8 at 384 -> 5120, the vector role's 7.499999999999999e-10 beside the
hidden role's 7.5e-10 (fixed_setting scaled by rho^-e and back; vector_setting by two powers)."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import Role
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import DEFAULT_RULES, group_spec, settle_fixed
from abcscale.theory.transfer import transfer

D, V = 64, 256  # F = 4D = 256 = V: the README example's MLP bias at width 64


def _roles(placed):
    return dict(zip([p[0] for p in placed], settle_fixed(placed, DEFAULT_RULES, D), strict=True))


@pytest.mark.parametrize(("kernel", "bias"), [("blocks.0.mlp.fc_in.kernel", "blocks.0.mlp.fc_in.bias"),
                                              ("Dense_0/kernel", "Dense_0/bias"), ("fc1", "fc1_bias"),
                                              ("blocks/mlp/fc/kernel", "blocks/mlp/fc/bias")])
def test_a_hidden_layers_bias_as_long_as_the_vocab_stays_vector(kernel, bias):
    placed = [("wte", (V, D), Role.embedding), (kernel, (D, 4 * D), Role.hidden), (bias, (4 * D,), Role.vector),
              ("lm_head.kernel", (D, V), Role.readout), ("lm_head.bias", (V,), Role.vector)]
    roles = _roles(placed)
    assert roles[bias] is Role.vector  # its sibling kernel is hidden: not the readout's bias
    assert roles["lm_head.bias"] is Role.fixed  # the readout's own bias still is


def test_a_vector_inside_another_module_is_no_readout_bias():
    placed = [("wte", (V, D), Role.embedding), ("blocks.0.mlp.b_in", (4 * D,), Role.vector),
              ("head.kernel", (D, V), Role.readout), ("logits_bias", (V,), Role.vector),
              ("head.logit_offset", (V,), Role.vector)]
    roles = _roles(placed)
    assert roles["blocks.0.mlp.b_in"] is Role.vector
    # beside the readout (at its level or in its module) a vocab-long vector still reads as its bias
    assert roles["logits_bias"] is Role.fixed and roles["head.logit_offset"] is Role.fixed


def _spec(parameterization, optimizer, lr_mode="per_layer", beta=1e-3, base_width=384, width=5120):
    base = BaseConfig(width=base_width, beta=beta)
    tr = transfer(parameterization, optimizer, base, width, lr_mode=lr_mode)
    return base, group_spec(tr, "abc", base=base)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "muon"])
@pytest.mark.parametrize("parameterization", ["mup", "standard", "ntk", "mean_field"])
def test_the_fixed_roles_epsilon_is_the_base_one_exactly(parameterization, optimizer):
    base, spec = _spec(parameterization, optimizer)
    assert spec[Role.fixed].epsilon == base.epsilon == 1e-8


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lion"])
@pytest.mark.parametrize("parameterization", ["mup", "standard", "ntk", "mean_field"])
def test_the_fixed_roles_lr_is_beta_gamma_exactly(parameterization, optimizer):
    base, spec = _spec(parameterization, optimizer, beta=0.1)
    assert spec[Role.fixed].lr == 0.1 * base.gamma.embedding


def test_vector_and_hidden_epsilons_of_one_exponent_are_one_number():
    _, spec = _spec("mup", "adam")
    # mup + Adam: the vector role's epsilon exponent is the hidden role's (both 1/n): one value, printed alike
    assert spec[Role.vector].epsilon == spec[Role.hidden].epsilon == 1e-8 * (384 / 5120)
    assert str(spec[Role.vector].epsilon) == "7.5e-10"


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "mup"])
def test_the_exact_values_hold_in_every_form(form):
    base = BaseConfig(width=384, beta=1e-3)
    spec = group_spec(transfer("mup", "adam", base, 5120), form, base=base)
    assert spec[Role.fixed].epsilon == 1e-8 and spec[Role.fixed].lr == 1e-3


def test_without_the_base_the_numbers_agree_to_rounding():
    base = BaseConfig(width=384, beta=1e-3)
    tr = transfer("ntk", "sgd", base, 5120)
    exact, rounded = group_spec(tr, base=base), group_spec(tr)
    for role in (Role.vector, Role.fixed):
        assert exact[role].lr == pytest.approx(rounded[role].lr, rel=1e-12)
