"""Lion and Muon (docs/theory.md section 11): each rule against a hand derivation for the four parameterizations,
the mixed optimizer's answer layer by layer, and what transfer, convert and the parameter-group spec make of them.

The hand derivations use section 2's constraints with (alpha, omega, u) = (1, 1/2, 1) (full) or (1/2, 1/2, 1/2)
(none), and the (a, b) tables of section 1:

    standard (0,0) (0,1/2) (0,1/2)     ntk (0,0) (1/2,0) (1/2,0)
    mup (-1/2,1/2) (0,1/2) (1/2,1/2)   mean_field (0,0) (1/2,0) (1,0)      (embedding, hidden, readout)
"""

from __future__ import annotations

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Layer
from abcscale.schemas.groups import Form, Role
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import group_spec, invariants
from tests.theory.test_solver import PARAMS, PUBLISHED

E, H, R = Layer.embedding, Layer.hidden, Layer.readout
h = 0.5

# Lion: sign(c_t) is +-1 per coordinate whatever the gradient's size, exactly as Adam's normalised step is O(1):
# U_l = a_l + c_l on every layer, no epsilon, no backprop scale. The constraints are Adam's, so the answer is the
# paper's Adam row in every cell (written out, not read from the solver):
LION = {
    "full": [(0, 1, 1), (0, h, h), (h, 1, h), (0, h, 0)],
    "none": [(0, h, h), (0, 0, 0), (h, h, 0), (0, 0, -h)],
}

# Muon: AdamW on embedding and readout (U = a + c, alignment as given); on the hidden matrices the step is
# eta * orth(M) with operator norm eta (spectral convention, square-like matrix), i.e. U_h = a_h + c_h + 1 counted
# as a rank-one step of that operator norm, and full alignment whatever the activations (a full-rank orthogonal
# step meets every input at its operator norm). Per layer:
#   embedding: r_1 = U_1 = a_1 + c_1 >= 0                         -> c_emb = -a_1
#   hidden:    r_h <= U_h - 1 = a_h + c_h,  r_h <= a_h + c_h + r_1, r_h <= r_1;  r_h >= 0  -> c_hid = -a_h
#   readout:   U_o - alpha >= 0 -> c_out >= alpha - a_o;  U_o + r_h - u >= 0 is looser (r_h >= 0, u = alpha)
#              -> c_out = alpha - a_o   (alpha = 1 full, 1/2 none)
# so c_hid = -a_h: 0 for standard and muP, -1/2 for NTK and mean-field (Adam's hidden c minus 1 under full alignment),
# and the hidden c does not depend on the alignment.
MUON = {
    #         standard        NTK               muP             mean-field
    "full": [(0, 0, 1), (0, -h, h), (h, 0, h), (0, -h, 0)],
    "none": [(0, 0, h), (0, -h, 0), (h, 0, 0), (0, -h, -h)],
}
EXPECTED = {"lion": LION, "muon": MUON}
CASES = [(o, al, p, row[i]) for o, table in EXPECTED.items() for al, row in table.items()
         for i, p in enumerate(PARAMS)]


@pytest.mark.parametrize(("opt", "alignment", "param", "expected"), CASES)
def test_each_rule_matches_the_hand_derivation(opt, alignment, param, expected):
    sol = theory.solve_exponents(param, opt, alignment)
    assert tuple(sol.c[l] for l in LAYERS) == tuple(float(x) for x in expected)
    assert sol.unique
    # one global LR: the smallest shared c is the largest per-layer one (raising a c only relaxes the constraints)
    assert sol.global_c == max(expected)


def test_lion_is_adams_row_and_muon_is_adams_with_the_hidden_one_lower():
    for al in ("full", "none"):
        assert LION[al] == PUBLISHED[("adam", al)]
    for adam, muon in zip(PUBLISHED[("adam", "full")], MUON["full"], strict=True):
        assert (muon[0], muon[1], muon[2]) == (adam[0], adam[1] - 1, adam[2])


def test_muon_global_lr_under_mup_is_no_longer_bound_by_the_hidden_layer():
    assert theory.solve_exponents("mup", "adam", "full").binding_layer is H
    sol = theory.solve_exponents("mup", "muon", "full")
    assert sol.global_c == 0.5 and sol.c[H] == 0.0


def test_epsilon_only_on_muons_adam_layers_with_adams_exponents():
    for p in PARAMS:
        for al in ("full", "none"):
            rows = {r.layer: r.epsilon_exponent for r in theory.theory_table([p], ["muon"], [al])}
            adam = {r.layer: r.epsilon_exponent for r in theory.theory_table([p], ["adam"], [al])}
            assert rows[H] is None and (rows[E], rows[R]) == (adam[E], adam[R])
            assert all(r.epsilon_exponent is None for r in theory.theory_table([p], ["lion"], [al]))


def test_muon_transfer_keeps_the_hidden_lr_and_decays_every_layer():
    base = BaseConfig(width=128, beta=0.02, epsilon=1e-8, weight_decay=0.1)
    tr = theory.transfer("mup", "muon", base, 1024)
    rho = 1024 / 128
    assert tr[H].lr == pytest.approx(0.02)  # c_hid = 0: Muon's LR transfers as it is under muP
    assert tr[E].lr == pytest.approx(0.02 * rho**-0.5) and tr[R].lr == pytest.approx(0.02 * rho**-0.5)
    assert tr[H].epsilon is None and tr[E].epsilon is not None
    # coupled decay: lr_l * wd_l is the same at every width on every layer
    assert [s.lr * s.weight_decay for s in tr.layers] == pytest.approx([0.02 * 0.1] * 3)


@pytest.mark.parametrize("opt", ["lion", "muon"])
def test_lion_and_muon_take_a_weight_decay(opt):
    tr = theory.transfer("mup", opt, BaseConfig(width=64, beta=1e-3, weight_decay=0.3), 256)
    assert all(s.weight_decay is not None for s in tr.layers) and tr.weight_decay_mode is not None


@pytest.mark.parametrize("opt", ["lion", "muon"])
@pytest.mark.parametrize(("src", "dst"), [("standard", "ntk"), ("mup", "mean_field"), ("ntk", "standard")])
def test_the_symmetry_holds_for_lion_and_muon(opt, src, dst):
    """k = 1 on every layer (a sign step and an orthogonalised one both ignore the gradient's scale): the exponent
    tables of symmetric pairs differ by -theta, and the converted setting keeps m * lr (the update) and m * sigma."""
    tr = theory.transfer(src, opt, BaseConfig(width=128, beta=1e-3, weight_decay=0.1), 512)
    from abcscale.schemas.theory import Setting
    setting = Setting(parameterization=src, optimizer=opt, width=512, layers=tr.layers)
    conv = theory.convert(setting, src, dst)
    assert conv.symmetric and conv.k == 1
    assert all(conv.c_to[l] == pytest.approx(conv.c_from[l] - conv.theta[l]) for l in LAYERS)
    for before, after in zip(setting.layers, conv.setting.layers, strict=True):
        assert after.multiplier * after.lr == pytest.approx(before.multiplier * before.lr)
        assert after.multiplier * after.init_std == pytest.approx(before.multiplier * before.init_std)
        assert (after.epsilon is None) == (before.epsilon is None)


def test_muon_mup_form_runs_the_hidden_group_unwrapped():
    tr = theory.transfer("mup", "muon", BaseConfig(width=128, beta=0.02), 512)
    spec = group_spec(tr, Form.mup)
    wm = 512 / 128
    assert spec[Role.hidden].mup_lr == pytest.approx(spec[Role.hidden].lr)  # plain Muon: no MuAdam division
    assert spec[Role.readout].mup_lr == pytest.approx(spec[Role.readout].lr)  # MuAdam leaves vector-like LRs
    assert any("microsoft/mup has no muon" in w for w in spec.warnings)
    lion = group_spec(theory.transfer("mup", "lion", BaseConfig(width=128, beta=0.02), 512), Form.mup)
    assert lion[Role.hidden].mup_lr == pytest.approx(lion[Role.hidden].lr * wm)  # MuAdam(impl=Lion) divides
    assert not any("microsoft/mup has no" in w for w in lion.warnings)


@pytest.mark.parametrize("opt", ["lion", "muon"])
@pytest.mark.parametrize("param", PARAMS)
def test_every_form_keeps_the_invariants(opt, param):
    tr = theory.transfer(param, opt, BaseConfig(width=128, beta=0.01, weight_decay=0.1), 1024)
    specs = {f: group_spec(tr, f) for f in Form}
    for role in (Role.embedding, Role.hidden, Role.readout, Role.vector):
        inv = {f: invariants(s[role], opt) for f, s in specs.items()}
        ref = inv[Form.abc]
        for got in inv.values():
            for key, value in ref.items():
                assert (got[key] is None) == (value is None)
                if value is not None:
                    assert got[key] == pytest.approx(value)


def test_the_vector_rule_follows_the_embeddings_optimizer_under_muon():
    """Gains and biases run AdamW under Muon: c_v = c_e + k a_e with the embedding's k (1), so under muP c_v = 0."""
    tr = theory.transfer("mup", "muon", BaseConfig(width=128, beta=0.02), 2048)
    v = group_spec(tr)[Role.vector]
    assert v.lr == pytest.approx(0.02) and v.epsilon is not None


def test_muon_conventions_are_constants_with_the_spectral_one_assumed():
    assert theory.MUON_CONVENTIONS["spectral"] == 0.0
    assert theory.MUON_CONVENTIONS["moonshot"] == 0.5


# --- the same answers where users ask for them: `abcscale theory table`, `recommend`, `theory convert`, REST


def _cli(*args: str) -> dict | list:
    import json

    from typer.testing import CliRunner

    from abcscale.cli import app
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_cli_theory_table_takes_a_list_of_optimizers():
    rows = _cli("theory", "table", "-o", "lion,muon", "-p", "mup")
    assert {r["optimizer"] for r in rows} == {"lion", "muon"} and len(rows) == 2 * 2 * 3
    hidden = {(r["optimizer"], r["alignment"]["alpha"]): r["c"] for r in rows if r["layer"] == "hidden"}
    assert hidden == {("lion", 1.0): 1.0, ("lion", 0.5): 0.5, ("muon", 1.0): 0.0, ("muon", 0.5): 0.0}


def test_cli_recommend_muon_with_weight_decay():
    rec = _cli("recommend", "-p", "mup", "-o", "muon", "--width", "1024", "--base-width", "128", "--base-lr", "0.02",
               "--weight-decay", "0.1")
    layers = {s["layer"]: s for s in rec["layers"]}
    assert rec["exponents"]["hidden"]["c"] == 0.0 and layers["hidden"]["lr"] == pytest.approx(0.02)
    assert layers["hidden"]["epsilon"] is None and layers["embedding"]["epsilon"] is not None
    assert layers["hidden"]["weight_decay"] == pytest.approx(0.1)


def test_cli_convert_muon_is_symmetric_with_k_1():
    conv = _cli("theory", "convert", "-o", "muon", "--from", "mup", "--to", "mean_field", "--width", "1024",
                "--base-width", "128", "--base-lr", "0.02")
    assert conv["symmetric"] and conv["k"] == 1
    assert conv["c_to"] == {"embedding": 0.0, "hidden": -0.5, "readout": 0.0}
    assert [s["epsilon"] is None for s in conv["converted"]["layers"]] == [False, True, False]


def test_rest_recommend_lion_and_muon_take_a_weight_decay(tmp_path):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from abcscale.service.app import create_app
    from abcscale.service.config import Settings
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as client:
        for opt in ("lion", "muon"):
            body = {"parameterization": "mup", "optimizer": opt, "width": 2048,
                    "base": {"width": 256, "beta": 0.001, "weight_decay": 0.1}}
            r = client.post("/v1/recommend", json=body)
            assert r.status_code == 200, r.text
            want = theory.transfer("mup", opt, BaseConfig(width=256, beta=0.001, weight_decay=0.1), 2048)
            assert r.json()["exponents"] == want.model_dump(mode="json")["exponents"]
