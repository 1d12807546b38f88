"""transfer() (theory/transfer.py): per-layer settings at a new width, docs/theory.md sections 1 and 5."""

from __future__ import annotations

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Layer, Optimizer
from abcscale.schemas.theory import BaseConfig


def test_transfer_formula():
    base = BaseConfig(width=256, beta=3e-3, gamma={"hidden": 2.0}, epsilon=1e-8)
    rec = theory.transfer("mup", "adam", base, 4096, "full", "per_layer")
    rho = 4096 / 256
    assert rec["hidden"].lr == pytest.approx(3e-3 * 2.0 * rho**-1.0)
    assert rec["embedding"].lr == pytest.approx(3e-3 * rho**-0.5)
    assert rec["readout"].multiplier == pytest.approx(4096**-0.5)
    assert rec["embedding"].multiplier == pytest.approx(4096**0.5)
    assert rec["hidden"].init_std == pytest.approx(4096**-0.5)
    assert rec["hidden"].epsilon == pytest.approx(1e-8 * rho**-1.0)
    same = theory.transfer("mup", "adam", base, 256)
    assert same["readout"].lr == pytest.approx(3e-3)


def test_transfer_global_mode_uses_binding_exponent():
    base = BaseConfig(width=128, beta=1e-2)
    rec = theory.transfer("standard", "adam", base, 1024, "full", "global")
    assert [s.lr for s in rec.layers] == pytest.approx([1e-2 / 8] * 3)
    assert any("one global LR shrinks as n^-1, the smallest c every layer can share" in w for w in rec.warnings)


def test_the_global_warning_does_not_call_the_shared_c_a_layer_s_when_u_exceeds_alpha():
    """u > alpha can let one shared c sit below the largest per-layer c: standard + Muon at (1/2, 1/2, 1) has
    per-layer (0, 0, 1) and shares 1/2; the warning said "follows the binding layer (hidden, c=0.75)" of an
    Adam case (session 32's review) that hidden layers in series (session 51) pin at 1."""
    base = BaseConfig(width=256, beta=1e-3)
    rec = theory.transfer("standard", "muon", base, 4096, "0.5,0.5,1", "global")
    said = next(w for w in rec.warnings if "global LR" in w)
    assert "n^-0.5" in said and "readout's, 1" in said
    assert [s.lr for s in rec.layers] == pytest.approx([1e-3 * 16 ** -0.5] * 3)


def test_hidden_layers_in_series_bind_when_u_exceeds_alpha():
    """Reference section 2's recursion r_l <= U_h + r_{l-1} - u, l = 2..L, with every hidden layer alike, needs
    U_h >= u: with one hidden rule tied to the embedding alone, muP + Adafactor at (1/2, 1/2, 1) gave the hidden
    layers c = 0 (1e-3 at 64x the base width; unstable with two hidden matrices in series) and standard + Adam a
    shared c of 3/4 (a theory review, session 51)."""
    from abcscale.theory.solver import solve_exponents

    ada = solve_exponents("mup", "adafactor", "0.5,0.5,1")
    assert ada.c[Layer.hidden] == 0.5 and ada.global_c == 0.5
    rec = theory.transfer("mup", "adafactor", BaseConfig(width=64, beta=1e-3), 4096, "0.5,0.5,1")
    assert rec["hidden"].lr == pytest.approx(1e-3 * 64 ** -0.5)
    for p, opt, shared in (("standard", "adam", 1.0), ("mup", "adam", 1.0), ("ntk", "adam", 0.5),
                           ("standard", "adafactor", 0.5), ("mean_field", "adam", 0.5)):
        assert solve_exponents(p, opt, "0.5,0.5,1").global_c == shared, (p, opt)
    for alignment in ("full", "none"):  # u <= alpha: the published tables, unchanged
        assert solve_exponents("standard", "adam", alignment).global_c == {"full": 1.0, "none": 0.5}[alignment]
    with pytest.raises(ValueError, match="less than or equal to 0.5"):  # omega > 1/2: no layer in series is stable
        solve_exponents("mup", "adam", "1,0.75,1")
    from abcscale.schemas.theory import Alignment
    from abcscale.theory.rules import layer_rules
    from abcscale.theory.solver import _solve
    from abcscale.theory.tables import ab_table

    past = Alignment.model_construct(alpha=1, omega=0.75, u=1)  # past the schema: the solver says it too
    with pytest.raises(ValueError, match="no stable exponents"):
        _solve(ab_table("mup"), Optimizer.adam, layer_rules("adam"), past)


def test_transfer_rejects_bad_width():
    with pytest.raises(ValueError, match="width"):
        theory.transfer("mup", Optimizer.adam, BaseConfig(width=128, beta=1e-2), 0)


@pytest.mark.parametrize("opt", list(Optimizer))
def test_epsilon_only_where_the_rule_has_one(opt):
    rec = theory.transfer("standard", opt, BaseConfig(width=128, beta=1e-2, epsilon=1e-8), 1024)
    rules = theory.layer_rules(opt)
    assert all((s.epsilon is not None) == rules[s.layer].has_epsilon for s in rec.layers)


def test_constant_epsilon_mode_keeps_epsilon():
    base = BaseConfig(width=128, beta=1e-2, epsilon=1e-8, epsilon_mode="constant")
    rec = theory.transfer("mean_field", "adam", base, 8192)
    assert [s.epsilon for s in rec.layers] == [1e-8] * 3


def test_c_override_replaces_the_solver_exponent():
    base = BaseConfig(width=128, beta=1e-2)
    rec = theory.transfer("mup", "adam", base, 1024, c_override={Layer.hidden: 0.25})
    assert rec.exponents["hidden"].c == 0.25
    assert rec["hidden"].lr == pytest.approx(1e-2 * 8**-0.25)
    assert rec.exponents["embedding"].c == theory.solve_exponents("mup", "adam").c[Layer.embedding]


def test_custom_table_is_named_custom():
    ab = theory.AB_TABLES[theory.parameterization_of("mup")]
    rec = theory.transfer(ab, "sgd", BaseConfig(width=64, beta=0.1), 256)
    assert rec.parameterization == "custom"
    assert [rec.exponents[l.value].c for l in LAYERS] == [theory.solve_exponents("mup", "sgd").c[l] for l in LAYERS]


def test_the_theory_table_gives_each_layer_s_range_where_the_answer_is_not_unique():
    """The README promised each layer's range with `unique: false`; only recommend's warning text held it."""
    from abcscale.theory import theory_table

    rows = {r.layer.value: r for r in theory_table(["standard"], ["adam"], ["0.5,0.5,1"])}
    assert {k: r.c_range for k, r in rows.items()} == {"embedding": (0.0, 0.5), "hidden": (1.0, 1.0),
                                                       "readout": (0.5, 1.0)}
    assert all(not r.unique for r in rows.values())
    assert all(r.c_range is None for r in theory_table(["mup"], ["adam"], ["full"]))


def test_a_unique_vertex_that_still_trades_learning_rate_says_so():
    """u > alpha: standard + Muon at (1/2, 1/2, 1) minimises the total c at one vertex (0, 0, 1), yet the
    readout alone could run at c = 1/2 if another layer's LR shrank; the reference asks to say so (session 32)."""
    from abcscale.theory.solver import solve_exponents

    sol = solve_exponents("standard", "muon", "0.5,0.5,1")
    assert sol.unique and [sol.c[l] for l in sol.c] == [0.0, 0.0, 1.0]
    assert any("readout alone could reach c=0.5 (not 1)" in w for w in sol.warnings), sol.warnings
    for alignment in ("full", "none"):  # u <= alpha: nothing trades, nothing said
        assert not any("trade" in w for w in solve_exponents("standard", "muon", alignment).warnings)
