"""theory.groups: the vector-like rule, the three forms, name rules, microsoft/mup in and out.

Ground truth for mup (issue 13): microsoft/mup at base 256, width 4096, lr 3e-3 gives Adam LRs lr/16 on matrix-like
weights and lr on vector-like ones (embeddings, norm gains, biases, the readout weight, whose output multiplier is
1/16), SGD LRs lr and 16 lr, epsilon unscaled.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale import theory
from abcscale.schemas.groups import Form, GroupRule, MupSetup, Role
from abcscale.schemas.theory import BaseConfig, PerLayer
from abcscale.theory.groups import (
    DEFAULT_RULES,
    assign,
    from_mup,
    group_spec,
    invariants,
    mup_setting,
    spec_params,
    tied_readout_multiplier,
    to_mup,
    vector_setting,
)

BETA = 3e-3
MUP = MupSetup(optimizer="adam", base_width=256, width=4096, lr=BETA,
               init_std={"embedding": 1.0, "hidden": 1 / 16, "readout": 1 / 16})


def _spec(parameterization="mup", optimizer="adam", width=4096, form=Form.abc, **constants):
    base = BaseConfig(width=256, beta=BETA, **constants)
    return group_spec(theory.transfer(parameterization, optimizer, base, width), form)


def _close(x, y, rel=1e-9):
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(x, y, rel_tol=rel)


# --- the vector-like rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("optimizer", "c_v"), [("adam", 0.0), ("sgd", -1.0), ("adamw", 0.0)])
def test_vector_like_lr_exponent_under_mup(optimizer, c_v):
    """muP: a gain's LR is constant (Adam) or grows like n (SGD), as microsoft/mup gives vector-like parameters."""
    base = BaseConfig(width=256, beta=BETA)
    lr = {n: vector_setting(theory.transfer("mup", optimizer, base, n)).lr for n in (256, 1024, 4096)}
    slope = math.log(lr[4096] / lr[256]) / math.log(16)
    assert slope == pytest.approx(-c_v)
    assert lr[256] == pytest.approx(BETA)  # gamma_e * beta at the base width


def test_vector_like_rule_differs_from_the_embedding_lr_it_replaced():
    """The runner used to give gains the embedding's LR, (n/b)^-1/2 too small under muP + Adam (4x at 4096)."""
    tr = theory.transfer("mup", "adam", BaseConfig(width=256, beta=BETA), 4096)
    assert vector_setting(tr).lr / tr["embedding"].lr == pytest.approx(4.0)


def test_vector_like_epsilon_follows_its_gradient():
    tr = theory.transfer("mup", "adam", BaseConfig(width=256, beta=BETA), 4096)  # per_layer epsilon
    # a gain's gradient is ~1/n, the embedding's ~n^-1/2: epsilon one more factor (n/b)^-1/2 down
    assert vector_setting(tr).epsilon / tr["embedding"].epsilon == pytest.approx(0.25)
    assert vector_setting(tr, "constant").epsilon == tr["embedding"].epsilon


# --- forms: all the same training, by the invariants -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(p=st.sampled_from(["standard", "ntk", "mup", "mean_field"]),
       opt=st.sampled_from(["sgd", "adam", "adamw", "adafactor"]),
       width=st.integers(8, 20000), gamma=st.floats(0.1, 10), mult=st.floats(0.1, 10), scale=st.floats(0.1, 10),
       wd=st.one_of(st.just(0.0), st.floats(1e-6, 0.5)), wd_mode=st.sampled_from(["coupled", "independent"]))
def test_forms_share_every_invariant(p, opt, width, gamma, mult, scale, wd, wd_mode):
    base = BaseConfig(width=64, beta=BETA, gamma=PerLayer(hidden=gamma), multiplier=PerLayer(readout=mult),
                      init_scale=PerLayer(embedding=scale), weight_decay=wd if opt == "adamw" else 0.0,
                      weight_decay_mode=wd_mode)
    tr = theory.transfer(p, opt, base, width)
    specs = {f: group_spec(tr, f) for f in Form}
    for role in Role:
        inv = {f: invariants(s[role], opt, wd_mode) for f, s in specs.items()}
        for key in ("forward", "update", "epsilon", "weight_decay"):
            assert _close(inv[Form.abc][key], inv[Form.multiplier_free][key]), (role, key)
            assert _close(inv[Form.abc][key], inv[Form.mup][key]), (role, key)


def test_multiplier_free_has_no_multipliers_and_mup_has_microsofts():
    free = _spec(form="multiplier-free")
    assert all(s.multiplier is None for s in free.roles)
    mup = _spec(form="mup")
    assert [mup[r].multiplier for r in Role] == pytest.approx([1.0, 1.0, 1 / 16, 1.0, 1.0])
    assert mup.warnings == []
    assert any("not muP" in w for w in _spec("standard", form="mup").warnings)


def test_a_wrong_form_would_be_caught():
    """The invariants do see a real difference: one hidden LR 4x off changes the update invariant."""
    s = _spec(form="mup")
    bad = s["hidden"].model_copy(update={"lr": s["hidden"].lr * 4})
    assert invariants(bad, "adam")["update"] == pytest.approx(4 * invariants(s["hidden"], "adam")["update"])


# --- microsoft/mup ground truth ---------------------------------------------------------------------------------


MUP_CONSTANTS = {"multiplier": PerLayer(embedding=1 / 16, hidden=1, readout=16),
                 "init_scale": PerLayer(embedding=16, hidden=1, readout=1), "epsilon_mode": "constant"}


@pytest.mark.parametrize(("optimizer", "hidden", "vector_like"), [("adam", BETA / 16, BETA), ("sgd", BETA, 16 * BETA)])
def test_mup_form_matches_microsoft_mup(optimizer, hidden, vector_like):
    spec = _spec(optimizer=optimizer, form="mup", **MUP_CONSTANTS)
    assert spec["hidden"].lr == pytest.approx(hidden)
    for role in ("embedding", "readout", "vector"):
        assert spec[role].lr == pytest.approx(vector_like), role
    assert spec["readout"].multiplier == pytest.approx(1 / 16)
    assert [s.mup_lr for s in spec.roles] == pytest.approx([BETA] * 5)  # one lr to MuAdam / MuSGD
    # a fixed parameter (a readout's bias): MuSGD's `fixed_p` and MuAdam's vector-like group keep the lr given
    assert spec["fixed"].lr == pytest.approx(BETA)
    setup = to_mup(spec)
    assert setup.output_mult == 1.0 and setup.lr[Role.hidden] == pytest.approx(BETA)
    assert setup.init_std[Role.hidden] == pytest.approx(1 / 16)  # mup.init scales it by width_mult^-1/2


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mup_setting_is_the_ground_truth(optimizer):
    got = mup_setting(MupSetup.model_validate(MUP.model_dump() | {"optimizer": optimizer}))
    hidden, vector_like = (BETA / 16, BETA) if optimizer == "adam" else (BETA, 16 * BETA)
    assert got[Role.hidden].lr == pytest.approx(hidden)
    assert [got[r].lr for r in (Role.embedding, Role.readout, Role.vector)] == pytest.approx([vector_like] * 3)
    assert got[Role.readout].multiplier == pytest.approx(1 / 16)
    assert got[Role.hidden].init_std == pytest.approx(1 / 64)


def test_from_mup_gives_the_documented_constants():
    base = from_mup(MUP)
    assert (base.width, base.beta) == (256, BETA)
    assert [base.multiplier[l] for l in ("embedding", "hidden", "readout")] == pytest.approx([1 / 16, 1, 16])
    assert [base.init_scale[l] for l in ("embedding", "hidden", "readout")] == pytest.approx([16, 1, 1])
    assert [base.gamma[l] for l in ("embedding", "hidden", "readout")] == pytest.approx([1, 1, 1])


@settings(max_examples=40, deadline=None)
@given(opt=st.sampled_from(["adam", "sgd"]), base_width=st.sampled_from([32, 64, 256]), ratio=st.integers(1, 64),
       lr=st.floats(1e-5, 1.0), out=st.floats(0.1, 10), s_e=st.floats(0.1, 3), s_h=st.floats(0.01, 1))
def test_from_mup_then_transfer_trains_like_mup_at_every_width(opt, base_width, ratio, lr, out, s_e, s_h):
    """abcscale's transfer from the imported constants and the mup run agree on every invariant at any width."""
    setup = MupSetup(optimizer=opt, base_width=base_width, width=base_width * ratio, lr=lr, output_mult=out,
                     init_std={"embedding": s_e, "hidden": s_h, "readout": s_h})
    tr = theory.transfer("mup", opt, from_mup(setup), setup.width)
    ours = group_spec(tr)
    theirs = mup_setting(setup)
    for role in Role:
        a, b = invariants(ours[role], opt), invariants(theirs[role], opt)
        assert _close(a["update"], b["update"]), role
        if role is not Role.vector:
            assert _close(a["forward"], b["forward"]), role


@settings(max_examples=40, deadline=None)
@given(opt=st.sampled_from(["adamw", "lion", "muon"]), ratio=st.integers(1, 64), wd=st.floats(1e-4, 1.0),
       lr=st.floats(1e-5, 1e-1))
def test_a_mup_runs_weight_decay_carries_over_at_every_width(opt, ratio, wd, lr):
    """One weight_decay given to MuAdamW (which multiplies a hidden group's by width_mult): the imported
    constants decay every matrix role by the same lr x weight_decay step at any width."""
    setup = MupSetup(optimizer=opt, base_width=64, width=64 * ratio, lr=lr, weight_decay=wd,
                     init_std={"embedding": 1.0, "hidden": 0.125, "readout": 0.125})
    base = from_mup(setup)
    assert base.weight_decay == pytest.approx(wd)
    ours, theirs = group_spec(theory.transfer("mup", opt, base, setup.width)), mup_setting(setup)
    for role in (Role.embedding, Role.hidden, Role.readout):
        assert _close(ours[role].lr * ours[role].weight_decay, theirs[role].lr * theirs[role].weight_decay), role


def test_the_mup_form_gives_each_group_the_decay_mu_adamw_must_be_given():
    """muP + AdamW tuned at 256 with weight decay 0.1 (coupled), at 4096: MuAdamW multiplies the hidden group's
    decay by width_mult 16, so it is given 1.6 / 16; the vector-like group takes none (abcscale's rule)."""
    spec = _spec(optimizer="adamw", form=Form.mup, weight_decay=0.1)
    assert spec.mup is not None and spec.mup.weight_decay is not None
    given = spec.mup.weight_decay
    assert [given[r] for r in Role] == pytest.approx([0.00625, 0.1, 1.6, 0.0, 0.0])
    applied = mup_setting(spec.mup)
    for role in Role:
        assert applied[role].weight_decay == pytest.approx(spec[role].weight_decay), role
        assert applied[role].lr == pytest.approx(spec[role].lr), role
    # one number stands for every group, as MuAdamW(weight_decay=...) gives it: the hidden one is scaled
    one = mup_setting(spec.mup.model_copy(update={"weight_decay": dict.fromkeys(Role, 0.1)}))
    assert [one[r].weight_decay for r in Role] == pytest.approx([0.1, 1.6, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("optimizer", ["lion", "muon"])
def test_mup_form_decays_round_trip_for_every_decoupled_optimizer(optimizer):
    spec = _spec(optimizer=optimizer, form=Form.mup, weight_decay=0.05)
    applied = mup_setting(spec.mup)
    assert [applied[r].weight_decay for r in Role] == pytest.approx([spec[r].weight_decay for r in Role])
    if optimizer == "muon":  # plain Muon runs the hidden group: it takes its decay as given
        assert spec.mup.weight_decay[Role.hidden] == pytest.approx(spec[Role.hidden].weight_decay)


def test_a_decay_independent_of_the_lr_has_no_mu_adamw_spelling():
    spec = _spec(optimizer="adamw", form=Form.mup, weight_decay=1e-4, weight_decay_mode="independent")
    assert spec.mup.weight_decay is None
    assert any("independent" in w and "MuAdamW" in w for w in spec.warnings)


def test_from_mup_refuses_per_group_decays_its_constants_cannot_hold():
    setup = MUP.model_copy(update={"optimizer": "adamw", "weight_decay": {
        Role.embedding: 0.1, Role.hidden: 0.2, Role.readout: 0.1, Role.vector: 0.0}})
    with pytest.raises(ValueError, match=r"weight_decay: .*one weight decay.*hidden 0.2"):
        from_mup(setup)
    # the vector-like group's own decay is not a constant of abcscale's (its rule gives it none)
    ok = setup.model_copy(update={"weight_decay": {Role.embedding: 0.1, Role.hidden: 0.1, Role.readout: 0.1,
                                                   Role.vector: 0.3}})
    assert from_mup(ok).weight_decay == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_mup_setup_weight_decay_is_checked(bad):
    with pytest.raises(ValueError, match="non-negative finite"):
        MupSetup(optimizer="adamw", base_width=256, width=4096, lr=BETA, weight_decay=bad)


def test_mup_scaling_is_adams_so_adafactor_is_warned_both_ways():
    """MuAdam(impl=Adafactor) divides the hidden LR by width_mult; muP + Adafactor needs width_mult^-1/2
    (c_hid = 1/2), so a mup setup matches the rule at one width: the hidden LR it applies at 4096 from 256 is
    4x below abcscale's."""
    assert theory.groups.mup_scaling_warnings("adam") == theory.groups.mup_scaling_warnings("sgd") == []
    assert theory.groups.mup_scaling_warnings("adafactor")
    spec = _spec(optimizer="adafactor", form=Form.mup)
    assert any("width_mult^-1/2" in w for w in spec.warnings)
    setup = MUP.model_copy(update={"optimizer": "adafactor"})
    rule = group_spec(theory.transfer("mup", "adafactor", from_mup(setup), 4096))
    assert rule[Role.hidden].lr / mup_setting(setup)[Role.hidden].lr == pytest.approx(4.0)


# --- names to roles ---------------------------------------------------------------------------------------------

D, V, T = 64, 100, 16
E, H, R, VEC = "embedding", "hidden", "readout", "vector"
#: name -> (shape, role, fan-in ratio), per naming scheme and layout
NANOGPT = {"transformer.wte.weight": ((V, D), E, 1), "transformer.wpe.weight": ((T, D), E, 1),
           "transformer.h.0.ln_1.weight": ((D,), VEC, 1), "transformer.h.0.attn.c_attn.weight": ((3 * D, D), H, 1),
           "transformer.h.0.attn.c_attn.bias": ((3 * D,), VEC, 1),
           "transformer.h.0.mlp.c_fc.weight": ((4 * D, D), H, 1),
           "transformer.h.0.mlp.c_proj.weight": ((D, 4 * D), H, 4), "transformer.ln_f.weight": ((D,), VEC, 1),
           "lm_head.weight": ((V, D), R, 1)}
LLAMA_HF = {"model.embed_tokens.weight": ((V, D), E, 1), "model.layers.0.self_attn.q_proj.weight": ((D, D), H, 1),
            "model.layers.0.input_layernorm.weight": ((D,), VEC, 1),
            "model.layers.0.post_attention_layernorm.weight": ((D,), VEC, 1),
            "model.layers.0.mlp.down_proj.weight": ((D, 172), H, 172 / D), "model.norm.weight": ((D,), VEC, 1),
            "model.layers.0.mlp.gate_proj.weight": ((172, D), H, 1),
            "lm_head.weight": ((V, D), R, 1)}
LLAMA_META = {"tok_embeddings.weight": ((V, D), E, 1), "layers.0.attention.wq.weight": ((D, D), H, 1),
              "layers.0.attention_norm.weight": ((D,), VEC, 1), "layers.0.feed_forward.w2.weight": ((D, 3 * D), H, 3),
              "layers.0.ffn_norm.weight": ((D,), VEC, 1), "norm.weight": ((D,), VEC, 1),
              "output.weight": ((V, D), R, 1)}
FLAX = {"params/Embed_0/embedding": ((V, D), E, 1), "params/Dense_0/kernel": ((D, 4 * D), H, 1),
        "params/Dense_1/kernel": ((4 * D, D), H, 4), "params/Dense_1/bias": ((D,), VEC, 1),
        "params/LayerNorm_0/scale": ((D,), VEC, 1), "params/lm_head/kernel": ((D, V), R, 1)}


@pytest.mark.parametrize(("table", "layout"), [(NANOGPT, "torch"), (LLAMA_HF, "torch"), (LLAMA_META, "torch"),
                                               (FLAX, "jax")])
def test_default_rules_read_common_naming_schemes(table, layout):
    got = {name: assign(name, shape, D, layout=layout) for name, (shape, _, _) in table.items()}
    assert {n: (role.value, r) for n, (role, r) in got.items()} == {n: (role, r) for n, (_, role, r) in table.items()}


def test_unplaceable_parameter_asks_for_a_rule_and_a_rule_places_it():
    with pytest.raises(ValueError, match="'proj_in.w'.*add a rule"):
        assign("proj_in.w", (V, D), D)
    rules = (GroupRule(pattern=r"^proj_in\.", role="embedding"), *DEFAULT_RULES)
    assert assign("proj_in.w", (V, D), D, rules) == (Role.embedding, 1.0)
    with pytest.raises(ValueError, match="layout"):
        assign("lm_head.weight", (V, D), D, layout="tf")
    with pytest.raises(ValueError, match="regular expression"):
        GroupRule(pattern="(", role="hidden")


def test_wide_fan_in_init_std_and_spec_params():
    spec = _spec(width=D, form="multiplier_free")
    got = spec_params(spec, {name: shape for name, (shape, _, _) in NANOGPT.items()}, "torch")
    role, proj = got["transformer.h.0.mlp.c_proj.weight"]
    assert role is Role.hidden
    assert proj.init_std == pytest.approx(spec["hidden"].init_std / 2)  # fan-in 4D: std / sqrt(4)
    assert got["transformer.h.0.ln_1.weight"][1].init_std is None
    assert proj.lr == spec["hidden"].lr  # fan-in ratio to the base is the width ratio


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "mup"])
@pytest.mark.parametrize("parameterization", ["mup", "standard", "ntk", "mean_field"])
def test_tied_readout_multiplier_restores_the_readout_forward_scale(form, parameterization):
    """t * h @ E.T, E as stored (what lm_head(h) reads), starts the logits at the untied readout's size
    m_r * h @ W_r.T: in the abc form the embedding's multiplier (sqrt(width) under muP) is not on E."""
    spec = _spec(parameterization, form=form)
    t = tied_readout_multiplier(spec)
    e, r = spec["embedding"], spec["readout"]
    assert t * e.init_std == pytest.approx((r.multiplier or 1.0) * r.init_std)
    if form == "abc" and parameterization == "mup":
        assert e.multiplier > 1  # the case the old formula (divided by m_e) got wrong by that factor
    rng = np.random.default_rng(0)
    h = rng.standard_normal((64, 512))
    tied = t * h @ (e.init_std * rng.standard_normal((300, 512))).T
    untied = (r.multiplier or 1.0) * h @ (r.init_std * rng.standard_normal((300, 512))).T
    assert tied.std() == pytest.approx(untied.std(), rel=0.05)


def test_each_group_names_its_update_and_a_mixed_optimizer_splits():
    """The spec carries an optimizer per group: Muon on hidden matrices, AdamW on the rest (issue 15)."""
    muon = _spec(optimizer="muon", form="multiplier_free")
    assert {s.role.value: s.optimizer for s in muon.roles} == {
        "embedding": "adamw", "hidden": "muon", "readout": "adamw", "vector": "adamw", "fixed": "adamw"}
    assert {s.optimizer for s in _spec(optimizer="adam", form="mup").roles} == {"adam"}


def test_the_nearest_point_of_a_non_unique_optimum():
    from abcscale.schemas.enums import Layer
    from abcscale.theory.solver import nearest_optimal, solve_exponents

    E, H, R = Layer.embedding, Layer.hidden, Layer.readout
    # u = 1.5 > alpha = 1: hidden layers in series pin c_h at u (1.5); embedding and readout trade on
    # c_E + c_R = 1.5 with c_E in [0, 1/2]
    face = [1.0, 0.5, 1.5]
    assert not solve_exponents("standard", "adam", face).unique
    assert nearest_optimal("standard", "adam", face, {E: 0.25, H: 1.5, R: 1.25}) == {E: 0.25, H: 1.5, R: 1.25}
    near = nearest_optimal("standard", "adam", face, {E: 0.0, H: 1.5, R: 1.0})  # total 2.5 < the least stable 3
    assert sum(near.values()) == pytest.approx(3.0) and max(abs(near[E]), abs(near[R] - 1.0)) == pytest.approx(0.25)
    unique = solve_exponents("mup", "adam")
    assert nearest_optimal("mup", "adam", None, {E: 0.3, H: 0.7, R: 0.1}) == pytest.approx(unique.c)
