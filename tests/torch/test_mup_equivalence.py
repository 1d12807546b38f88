"""The spec's mup form against real microsoft/mup (``make test-torch``; skipped when mup is not installed).

A mup user's model at width 4096 with base shapes from width 256 (``set_base_shapes``, ``MuReadout``,
``mup.init.normal_`` at the base stds), trained with ``MuAdamW`` / ``MuSGD`` at ``lr = beta``: what mup applies
to each parameter (its optimizer groups' LR, epsilon and decay, the readout's output multiplier, the init std
measured on the tensors) against ``group_spec(transfer(mup, opt, from_mup(setup), 4096), "mup")``. Run with
``-s`` for the table.
"""

from __future__ import annotations

import pytest
import torch

from abcscale.schemas.groups import MupSetup, Role
from abcscale.theory import transfer
from abcscale.theory.groups import assign, from_mup, group_spec, settle_fixed
from tests.torch.models import MupMLP

mup = pytest.importorskip("mup")

BASE, WIDTH, BETA, EPS, WD = 256, 4096, 3e-3, 1e-8, 0.1
#: the mup user's init stds at the base width (std ~ fan_in^-1/2 for the hidden weights, so c_proj, whose fan-in
#: is 4x, takes half the hidden one); mup.init keeps embedding/readout stds and scales hidden ones by wm^-1/2
BASE_STD = {"wte.weight": 1.0, "c_fc.weight": BASE**-0.5, "c_proj.weight": (4 * BASE) ** -0.5,
            "lm_head.weight": BASE**-0.5}
#: where the two differ by design, not by a mistake (printed, not asserted): abcscale gives vector-like
#: parameters no decay (mup decays everything it is given). (A bias of fixed size, the readout's [vocab] bias,
#: has no width dimension, so MuSGD leaves its LR at beta: abcscale's fixed role agrees; before session 48 the
#: vector rule gave it width_mult * beta.)
KNOWN = {(o, "weight_decay", r) for o in ("adamw", "sgd") for r in ("vector", "fixed")}


def _mup_model() -> torch.nn.Module:
    with torch.device("meta"):
        base, delta = MupMLP(BASE, mup.MuReadout), MupMLP(2 * BASE, mup.MuReadout)
    torch.manual_seed(0)
    model = MupMLP(WIDTH, mup.MuReadout)
    mup.set_base_shapes(model, base, delta=delta)
    for name, p in model.named_parameters():
        if name in BASE_STD:
            mup.init.normal_(p, std=BASE_STD[name])
    return model


def _spec(optimizer: str):
    # SGD's weight decay (its L2 term) is carried since session 48, as MuSGD rescales it
    setup = MupSetup(optimizer=optimizer, base_width=BASE, width=WIDTH, lr=BETA, output_mult=1.0, epsilon=EPS,
                     weight_decay=WD,
                     init_std={"embedding": 1.0, "hidden": BASE**-0.5, "readout": BASE**-0.5})
    base = from_mup(setup)
    return setup, group_spec(transfer("mup", optimizer, base, WIDTH), "mup")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4g}"


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_mup_form_is_what_microsoft_mup_applies(optimizer):
    model = _mup_model()
    setup, spec = _spec(optimizer)
    # what to pass to MuAdamW / MuSGD: the spec's mup_lr, beta for every role, and (AdamW) its weight decays, the
    # one WD on every matrix role (the vector-like group's is abcscale's 0)
    assert {s.mup_lr for s in spec.roles} == {BETA}
    if optimizer == "adamw":
        given = spec.mup.weight_decay
        assert [given[r] for r in (Role.embedding, Role.hidden, Role.readout)] == pytest.approx([WD] * 3)
    opt = (mup.MuAdamW(model.parameters(), lr=BETA, eps=EPS, weight_decay=WD) if optimizer == "adamw"
           else mup.MuSGD(model.parameters(), lr=BETA, weight_decay=WD))
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    wm = model.lm_head.width_mult()
    rows, bad = [], []
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    placed = [(name, *assign(name, shape, WIDTH, spec.rules, layout="torch")) for name, shape in shapes.items()]
    roles = settle_fixed([(name, shapes[name], role) for name, role, _ in placed], spec.rules)
    assert dict(zip(shapes, roles, strict=True))["lm_head.bias"] is Role.fixed
    for (name, _, ratio), role in zip(placed, roles, strict=True):
        p = dict(model.named_parameters())[name]
        s, g = spec[role], group_of[id(p)]
        measured = {"lr": g["lr"], "epsilon": g.get("eps"),
                    "weight_decay": g["weight_decay"],
                    "multiplier": model.lm_head.output_mult / wm if name == "lm_head.weight" else 1.0,
                    "init_std": p.std().item() if name in BASE_STD else None}
        ours = {"lr": s.lr, "epsilon": s.epsilon, "weight_decay": s.weight_decay,
                "multiplier": s.multiplier, "init_std": spec.init_std(role, ratio)}
        rows.append((name, role.value, measured, ours))
        for key in measured:
            if {(optimizer, key, role.value), (optimizer, key, name)} & KNOWN or key == "epsilon":
                continue
            m, o = measured[key], ours[key]
            tol = 0.02 if key == "init_std" else 1e-9
            if (m is None) != (o is None) or (m is not None and abs(m - o) > tol * abs(o)):
                bad.append(f"{name} {key}: mup {m}, abcscale {o}")
    _print(optimizer, setup, rows)
    assert not bad
    # the ground truth of the issue: Adam beta/16 on matrix-like weights and beta on vector-like ones; SGD beta
    # and 16 beta
    hidden, vector = spec[Role.hidden].lr, spec[Role.vector].lr
    assert (hidden, vector) == pytest.approx((BETA / 16, BETA) if optimizer == "adamw" else (BETA, 16 * BETA))
    assert spec[Role.readout].multiplier == pytest.approx(1 / 16)


def _print(optimizer, setup, rows) -> None:
    print(f"\nmicrosoft/mup {'MuAdamW' if optimizer == 'adamw' else 'MuSGD'}(lr={BETA:g}"
          f"{f', eps={EPS:g}' if optimizer == 'adamw' else ''}, weight_decay={WD:g}), base {BASE}, width {WIDTH} "
          f"(width_mult {WIDTH // BASE}), MuReadout(output_mult=1) vs abcscale's mup form from from_mup(setup)")
    keys = ("lr", "epsilon", "weight_decay", "multiplier", "init_std")
    print(f"| parameter | role | {' | '.join(f'{k} mup / abcscale' for k in keys)} |")
    print("|---" * (2 + len(keys)) + "|")
    for name, role, m, o in rows:
        print(f"| `{name}` | {role} | " + " | ".join(f"{_fmt(m[k])} / {_fmt(o[k])}" for k in keys) + " |")


def test_an_exported_setup_gives_muadam_each_groups_epsilon():
    """`abcscale mup export` as a user applies it: one param group per role with the setup's lr and eps, through
    real ``MuAdam``: every tensor's group steps with the recommendation's LR and its role's epsilon (MuAdam passes
    eps on unscaled), where one eps for all (the export before) gave the embedding 256x the rule's."""
    from abcscale.schemas.api import AnalyticRecommend
    from abcscale.theory.groups import DEFAULT_RULES
    from abcscale.usecases.mup import mup_export

    out = mup_export(AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "adam",
                                                       "width": WIDTH, "base": {"width": BASE, "beta": BETA}}))
    model, role_of, groups = _mup_model(), {}, {}
    for name, p in model.named_parameters():
        role_of[id(p)] = assign(name, tuple(p.shape), WIDTH, DEFAULT_RULES, layout="torch")[0]
        groups.setdefault(role_of[id(p)], []).append(p)
    opt = mup.MuAdam([{"params": ps, "lr": out.setup.lr[r], "eps": out.setup.epsilon[r]} for r, ps in groups.items()])
    want = {r.role: r for r in out.roles}
    assert len({want[r].epsilon for r in groups}) > 1
    for g in opt.param_groups:
        for p in g["params"]:
            role = role_of[id(p)]
            assert g["eps"] == want[role].epsilon
            assert g["lr"] == pytest.approx(want[role].lr, rel=1e-12)
