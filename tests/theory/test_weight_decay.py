"""AdamW and its weight decay (theory/weight_decay.py, docs/theory.md section 9): Adam's exponents, the
width-transfer rule in both forms, and the map under the symmetry."""

from __future__ import annotations

import itertools

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.theory import Alignment, BaseConfig, Setting

WIDTHS = (64, 256, 1024, 4096, 65536)
CASES = list(itertools.product(Parameterization, ["full", "none", "0.75,0.5,0.75"], ["per_layer", "global"]))


def _base(mode: str, wd: float = 0.1) -> BaseConfig:
    return BaseConfig(width=256, beta=3e-3, gamma="1,2,0.5", weight_decay=wd, weight_decay_mode=mode)


@pytest.mark.parametrize(("p", "alignment", "lr_mode"), CASES)
def test_coupled_decay_keeps_lr_times_wd_at_every_width(p, alignment, lr_mode):
    """The EMA timescale 1/(lr_l wd_l) (Wang & Aitchison 2024) does not move with width: lr_l wd_l = beta gamma_l wd."""
    base = _base("coupled")
    for n in WIDTHS:
        tr = theory.transfer(p, "adamw", base, n, alignment, lr_mode)
        for layer in LAYERS:
            s = tr[layer]
            assert s.lr * s.weight_decay == pytest.approx(base.beta * base.gamma[layer] * base.weight_decay)
            # ... because the decay carries the inverse of the LR's width factor
            assert s.weight_decay == pytest.approx(0.1 * (n / 256) ** tr.exponents[layer.value].c)


@pytest.mark.parametrize(("p", "alignment", "lr_mode"), CASES)
def test_independent_decay_is_the_same_at_every_width(p, alignment, lr_mode):
    for n in WIDTHS:
        tr = theory.transfer(p, "adamw", _base("independent"), n, alignment, lr_mode)
        assert [s.weight_decay for s in tr.layers] == [0.1] * 3
        assert tr.weight_decay_mode is WeightDecayMode.independent


def test_mup_coupled_decay_is_the_inverse_of_the_lr_factor():
    tr = theory.transfer("mup", "adamw", BaseConfig(width=256, beta=3e-3, weight_decay=0.1), 4096)
    assert [s.weight_decay for s in tr.layers] == pytest.approx([0.4, 1.6, 0.4])  # c = (1/2, 1, 1/2), ratio 16
    assert tr.weight_decay_mode is WeightDecayMode.coupled


@pytest.mark.parametrize(("p", "alignment"), list(itertools.product(Parameterization, ["full", "none", "1,0.5,0.5"])))
def test_adamw_has_adams_exponents_and_epsilon(p, alignment):
    adam, adamw = (theory.solve_exponents(p, o, alignment) for o in ("adam", "adamw"))
    assert (adamw.c, adamw.global_c, adamw.unique, adamw.lower_bounds) == (adam.c, adam.global_c, adam.unique,
                                                                           adam.lower_bounds)
    assert theory.optimizer_rule("adamw").k == theory.optimizer_rule("adam").k
    base = BaseConfig(width=128, beta=1e-2, epsilon=1e-8)
    a, w = (theory.transfer(p, o, base, 2048, alignment) for o in ("adam", "adamw"))
    assert [s.model_copy(update={"weight_decay": None}) for s in w.layers] == a.layers
    assert all(s.weight_decay == 0.0 for s in w.layers) and w.exponents == a.exponents


def test_theory_table_lists_adamw_rows_equal_to_adams():
    rows = theory.theory_table()
    by_opt = {o: [r.model_dump(exclude={"optimizer"}) for r in rows if r.optimizer is o] for o in Optimizer}
    assert by_opt[Optimizer.adamw] and by_opt[Optimizer.adamw] == by_opt[Optimizer.adam]


@pytest.mark.parametrize("opt", ["adam", "adafactor"])
def test_optimizers_without_decoupled_decay_have_none_and_refuse_one(opt):
    tr = theory.transfer("mup", opt, BaseConfig(width=64, beta=1e-2), 512)
    assert all(s.weight_decay is None for s in tr.layers) and tr.weight_decay_mode is None
    with pytest.raises(ValueError, match=f"weight_decay: {opt} has no weight decay that abcscale transfers, coupled "
                                         "or independent"):
        theory.transfer("mup", opt, BaseConfig(width=64, beta=1e-2, weight_decay=0.1), 512)


def test_sgds_l2_decay_is_carried_where_given_keeping_each_layers_lr_times_decay():
    """Session 48 (a vision engineer's review): SGD's weight decay (torch.optim.SGD's L2 term, W -= lr (g + wd W)) is
    the coupled form; one number for every group made the input layer's shrink grow 16x at 16x the base width."""
    plain = theory.transfer("mup", "sgd", BaseConfig(width=64, beta=0.1), 1024)
    assert all(s.weight_decay is None for s in plain.layers) and plain.weight_decay_mode is None  # none given
    at = {n: theory.transfer("mup", "sgd", BaseConfig(width=64, beta=0.1, weight_decay=5e-4), n) for n in (64, 1024)}
    assert at[1024].weight_decay_mode is WeightDecayMode.coupled
    for layer in ("embedding", "hidden", "readout"):
        assert at[1024][layer].lr * at[1024][layer].weight_decay == pytest.approx(0.1 * 5e-4)
        assert at[64][layer].weight_decay == pytest.approx(5e-4)


def test_unknown_optimizer_still_errors():
    with pytest.raises(ValueError, match="unknown optimizer 'shampoo'; allowed: sgd, adam, adafactor, adamw"):
        theory.transfer("mup", "shampoo", BaseConfig(width=64, beta=1e-2), 512)


@pytest.mark.parametrize("mode", list(WeightDecayMode))
@pytest.mark.parametrize(("source", "target"), [("mup", "mean_field"), ("standard", "ntk"), ("mup", "standard")])
def test_the_symmetry_keeps_the_per_step_shrink(mode, source, target):
    """Coupled: wd -> wd t^k so lr * wd is invariant; independent: wd unchanged. Both round-trip."""
    tr = theory.transfer(source, "adamw", _base(mode.value), 1024)
    s = Setting(parameterization=source, optimizer="adamw", width=1024, layers=tr.layers)
    conv = theory.convert(s, source, target, weight_decay_mode=mode)
    for a, b in zip(s.layers, conv.setting.layers, strict=True):
        t = conv.factor[a.layer]
        if mode is WeightDecayMode.coupled:
            assert b.lr * b.weight_decay == pytest.approx(a.lr * a.weight_decay)
            assert b.weight_decay == pytest.approx(a.weight_decay * t**conv.k)
        else:
            assert b.weight_decay == a.weight_decay
    back = theory.convert(conv.setting, target, source, weight_decay_mode=mode).setting
    assert [x.weight_decay for x in back.layers] == pytest.approx([x.weight_decay for x in s.layers])


def test_the_transfer_rule_commutes_with_the_symmetry():
    """muP ~ mean-field (theta = 1/2): transferring in muP then converting equals converting the base-width
    setting then transferring with the shifted exponents (wd_l = wd (n/b)^(c_l - k theta))."""
    base, n = _base("coupled"), 4096
    at_base = theory.transfer("mup", "adamw", base, base.width)
    at_n = theory.transfer("mup", "adamw", base, n)

    def to_mf(tr, width):
        s = Setting(parameterization="mup", optimizer="adamw", width=width, layers=tr.layers)
        return theory.convert(s, "mup", "mean_field").setting

    mf_base, mf_n = to_mf(at_base, base.width), to_mf(at_n, n)
    c_mf = theory.solve_exponents("mean_field", "adamw", Alignment.full()).c
    for layer in LAYERS:
        assert mf_n[layer].weight_decay == pytest.approx(mf_base[layer].weight_decay * (n / base.width) ** c_mf[layer])
