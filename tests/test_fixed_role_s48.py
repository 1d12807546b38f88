"""Session 48: the ``fixed`` role. A parameter with no width-sized axis (the readout's bias, whose length is the
classes or the vocabulary; a scalar gate) took the vector role's numbers, whose LR grows with the width under
SGD (muP: 16x at 16x the base width) while its gradient, dL/dlogits, does not. It now keeps the vector role's
numbers at the base width at every width, as microsoft/mup's MuSGD and MuAdam leave such parameters unscaled
(tests/torch/test_mup_equivalence.py checks that against mup itself)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.enums import Layer
from abcscale.schemas.groups import SPEC_ROLES, MupSetup, Role
from abcscale.schemas.theory import BaseConfig
from abcscale.theory import transfer
from abcscale.theory.groups import (
    assign,
    fixed_setting,
    group_spec,
    invariants,
    mup_setting,
    settle_fixed,
    vector_setting,
)

runner = CliRunner()
BASE, BETA = 64, 0.01
OPTIMIZERS = ("sgd", "adam", "adamw", "adafactor", "lion", "muon")


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("parameterization", ["mup", "standard", "ntk", "mean_field"])
def test_the_fixed_role_is_the_vector_role_at_the_base_width_at_every_width(parameterization, optimizer):
    base = BaseConfig(width=BASE, beta=BETA, weight_decay=0.1 if optimizer in ("adamw", "lion", "muon") else 0.0)
    at_base = vector_setting(transfer(parameterization, optimizer, base, BASE))
    for width in (BASE, 4 * BASE, 64 * BASE):
        tr = transfer(parameterization, optimizer, base, width)
        f = fixed_setting(tr)
        assert f.role is Role.fixed and f.init_std is None and f.multiplier == 1.0
        assert f.lr == pytest.approx(at_base.lr, rel=1e-12)
        assert (f.epsilon is None) == (at_base.epsilon is None)
        if f.epsilon is not None:
            assert f.epsilon == pytest.approx(at_base.epsilon, rel=1e-12)
        assert f.weight_decay == at_base.weight_decay


def test_under_sgd_mup_the_vector_lr_grows_and_the_fixed_one_does_not():
    spec = abcscale.recommend("mup", "sgd", width=16 * BASE, base_width=BASE, beta=BETA).groups
    assert spec["vector"].lr == pytest.approx(16 * BETA)  # a bias of width n: microsoft/mup's vector-like rule
    assert spec["fixed"].lr == pytest.approx(BETA)
    one = abcscale.recommend("mup", "sgd", width=16 * BASE, base_width=BASE, beta=BETA, lr_mode="global").groups
    assert one["fixed"].lr == pytest.approx(one["vector"].lr)  # one LR for every parameter


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_form_trains_the_fixed_role_alike(optimizer):
    tr = transfer("mup", optimizer, BaseConfig(width=BASE, beta=BETA), 8 * BASE)
    abc, free, mup = (group_spec(tr, form)[Role.fixed] for form in ("abc", "multiplier_free", "mup"))
    assert abc.lr == free.lr == mup.lr and abc.epsilon == free.epsilon == mup.epsilon
    inv = [invariants(s, optimizer) for s in (abc, free, mup)]
    assert inv[0] == inv[1] == inv[2]
    spec = group_spec(tr, "mup")
    if optimizer != "muon":  # MuAdam / MuSGD leave a parameter with no width-sized axis unscaled: given = applied
        assert spec[Role.fixed].mup_lr == spec[Role.fixed].lr


@pytest.mark.parametrize(("name", "shape", "role"), [
    ("temperature", (), Role.fixed), ("logit_scale", (1,), Role.fixed), ("h.0.ln.scale", (1,), Role.fixed),
    ("h.0.mlp.bias", (256,), Role.vector), ("gate", (256,), Role.vector)])
def test_a_scalar_is_fixed_and_a_width_sized_vector_is_not(name, shape, role):
    assert assign(name, shape, 256)[0] is role


@pytest.mark.parametrize(("placed", "bias"), [
    ([("head.weight", (10, 256), Role.readout), ("head.bias", (10,), Role.vector)], "head.bias"),  # torch
    ([("params/Dense_2/kernel", (256, 10), Role.readout), ("params/Dense_2/bias", (10,), Role.vector)],
     "params/Dense_2/bias"),  # flax
    ([("mlp/~/linear_2/w", (256, 10), Role.readout), ("mlp/~/linear_2/b", (10,), Role.vector)],
     "mlp/~/linear_2/b"),  # haiku
])
def test_the_readouts_bias_is_fixed(placed, bias):
    roles = dict(zip([n for n, _, _ in placed], settle_fixed(placed), strict=True))
    assert roles[bias] is Role.fixed


def test_other_biases_stay_vector_and_a_users_rule_is_kept():
    placed = [("fc1.weight", (256, 784), Role.embedding), ("fc1.bias", (256,), Role.vector),
              ("fc2.weight", (256, 256), Role.hidden), ("fc2.bias", (256,), Role.vector),
              ("fc3.weight", (10, 256), Role.readout), ("fc3.bias", (10,), Role.vector)]
    assert settle_fixed(placed) == [Role.embedding, Role.vector, Role.hidden, Role.vector, Role.readout, Role.fixed]
    rules = [abcscale.GroupRule(pattern=r"fc3\.bias", role="vector")]
    assert settle_fixed(placed, rules)[-1] is Role.vector


def test_the_optax_export_gives_an_sgd_classifiers_bias_the_same_step_at_every_width():
    """Known truth: at init the logits of a muP readout are near 0, so the head bias's gradient (softmax - onehot,
    averaged) is the same at every width, and so must its first SGD step be. It was 16x larger at 16x the base
    width (the vector role's LR)."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    import optax

    from abcscale import optax as abcoptax

    x = jax.random.normal(jax.random.key(1), (32, 20))
    y = jax.random.randint(jax.random.key(2), (32,), 0, 10)
    steps = {}
    for width in (BASE, 16 * BASE):
        spec = abcscale.recommend("mup", "sgd", width=width, base_width=BASE, beta=0.1, form="multiplier_free").groups
        params = {"Dense_0": {"kernel": jnp.zeros((20, width)), "bias": jnp.zeros(width)},
                  "Dense_1": {"kernel": jnp.zeros((width, width)), "bias": jnp.zeros(width)},
                  "head": {"kernel": jnp.zeros((width, 10)), "bias": jnp.zeros(10)}}
        rules = [("Dense_0", "embedding")]
        # jitted, the draw and the gradient: eagerly each op compiled apart for each width's shapes (7 CPU-s)
        params = jax.jit(functools.partial(abcoptax.init, spec, rules=rules))(params, jax.random.key(0))
        assert abcoptax.labels(spec, params, rules=rules)["head"] == {"kernel": "readout", "bias": "fixed"}

        def loss(p):
            h = jax.nn.relu(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
            h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
            logits = h @ p["head"]["kernel"] + p["head"]["bias"]
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        tx = abcoptax.transform(spec, params, rules=rules)
        updates, _ = tx.update(jax.jit(jax.grad(loss))(params), tx.init(params), params)
        steps[width] = np.asarray(updates["head"]["bias"])
    ratio = np.linalg.norm(steps[16 * BASE]) / np.linalg.norm(steps[BASE])
    assert 0.8 < ratio < 1.25, ratio  # the vector role's LR gave 16x


def test_the_torch_export_puts_the_readouts_bias_in_a_fixed_group():
    from abcscale import torch as abctorch
    from tests.test_exports_review_s36 import Linear, _Net

    w = 256
    net = _Net(fc1=Linear(w, 784), fc2=Linear(w, w), head=Linear(10, w))
    spec = abcscale.recommend("mup", "sgd", width=w, base_width=BASE, beta=BETA, form="multiplier_free").groups
    groups = {g["name"]: g for g in abctorch.param_groups(net, spec, rules={"fc1": "embedding"})}
    assert [id(p) for p in groups["fixed"]["params"]] == [id(net.modules["head"].bias)]
    assert groups["fixed"]["lr"] == pytest.approx(BETA) and groups["vector"]["lr"] == pytest.approx(4 * BETA)
    drawn = abctorch.init_(net, spec, rules={"fc1": "embedding"})
    assert "head.bias" not in drawn and "head.weight" in drawn  # the bias keeps its init, as a vector's does


def test_a_mup_setup_applies_the_fixed_groups_lr_unscaled():
    """microsoft/mup's MuSGD: `fixed_p` (no infinite dimension) keeps its group's lr; a vector-like one is scaled."""
    setup = MupSetup(optimizer="sgd", base_width=BASE, width=16 * BASE, lr=BETA)
    got = mup_setting(setup)
    assert got[Role.vector].lr == pytest.approx(16 * BETA) and got[Role.fixed].lr == pytest.approx(BETA)
    own = mup_setting(setup.model_copy(update={"lr": {**setup.lr, Role.fixed: 2 * BETA}}))
    assert own[Role.fixed].lr == pytest.approx(2 * BETA) and set(own) == set(SPEC_ROLES)


def test_a_non_mup_parameterization_exported_to_mup_gives_the_fixed_group_its_own_lr():
    """Standard parameterization + SGD in the mup form: the vector-like group's mup lr is not the fixed one's, so
    the setup names a fixed group (one group for both would give the readout's bias the wrong LR)."""
    spec = abcscale.recommend("standard", "sgd", width=16 * BASE, base_width=BASE, beta=BETA, form="mup").groups
    assert spec.mup is not None
    assert spec.mup.lr[Role.fixed] == pytest.approx(spec["fixed"].lr)
    assert spec.mup.lr[Role.fixed] != pytest.approx(spec.mup.lr[Role.vector])
    applied = mup_setting(spec.mup)
    assert applied[Role.fixed].lr == pytest.approx(spec["fixed"].lr)
    # and the muP setup of the same needs none: one vector-like group carries both
    assert Role.fixed not in abcscale.recommend("mup", "sgd", width=16 * BASE, base_width=BASE, beta=BETA,
                                                form="mup").groups.mup.lr


def test_check_compares_lr_fixed_with_the_fixed_rule(tmp_path):
    rec = transfer("mup", "sgd", BaseConfig(width=BASE, beta=BETA), 16 * BASE)
    cfg = {"parameterization": "mup", "optimizer": "sgd", "width": 16 * BASE, "base_width": BASE, "beta": BETA,
           "lr": {"hidden": rec[Layer.hidden].lr, "fixed": BETA}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 0, res.output
    # the vector role's LR on the readout's bias (what abcscale said before) is 16x too high
    path.write_text(yaml.safe_dump(cfg | {"lr": {"hidden": rec[Layer.hidden].lr, "fixed": 16 * BETA}}))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["failed"] == ["lr (fixed) too high"]


def test_recommend_prints_the_fixed_row():
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "sgd", "--width", "1024", "--base-width", "64",
                              "--base-lr", "0.01"])
    assert res.exit_code == 0, res.output
    vector = next(line for line in res.output.splitlines() if line.strip("│ ").startswith("vector"))
    fixed = next(line for line in res.output.splitlines() if line.strip("│ ").startswith("fixed"))
    assert "0.16" in vector and "0.01" in fixed and "0.16" not in fixed
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "sgd", "--width", "1024", "--base-width", "64",
                              "--base-lr", "0.01", "--json"])
    roles = {r["role"]: r for r in json.loads(res.stdout)["groups"]["roles"]}
    assert roles["fixed"]["lr"] == pytest.approx(0.01) and roles["vector"]["lr"] == pytest.approx(0.16)


def test_an_old_spec_without_the_fixed_role_says_so():
    spec = abcscale.recommend("mup", "sgd", width=256, base_width=BASE, beta=BETA).groups
    old = spec.model_copy(update={"roles": [r for r in spec.roles if r.role is not Role.fixed]})
    with pytest.raises(ValueError, match="no fixed role's setting"):
        old["fixed"]


# --- a code review of the above (helper) -------------------------------------------------------------------------


def test_a_tied_readouts_bias_is_fixed_whichever_module_comes_first():
    """PyTorch lists a tied tensor once, under its first name: with `wte` declared first, `lm_head.weight` was not
    among the placed parameters, so `lm_head.bias` stayed vector (4x the LR at 4x the base width under SGD)."""
    from abcscale import torch as abctorch
    from tests.test_exports_review_s36 import Embedding, Linear
    from tests.test_exports_review_s47 import _TiedNet

    w = 256
    spec = abcscale.recommend("mup", "sgd", width=w, base_width=BASE, beta=BETA, form="multiplier_free").groups
    for first in (True, False):
        wte, head = Embedding(512, w), Linear(512, w)
        head.weight = wte.weight
        parts = {"wte": wte, "fc": Linear(w, w), "lm_head": head}
        net = _TiedNet(**(parts if first else {"lm_head": head, "wte": wte, "fc": parts["fc"]}))
        with pytest.warns(UserWarning, match="tied"):
            groups = {g["name"]: g for g in abctorch.param_groups(net, spec)}
        assert [id(p) for p in groups["fixed"]["params"]] == [id(head.bias)], first


def test_a_bias_of_the_width_beside_a_non_square_readout_stays_vector():
    """The default readout rule takes an unnumbered `mlp.output` [W, 4W]: its bias [W] grows with the width."""
    w = 256
    placed = [("mlp.output.weight", (w, 4 * w), Role.readout), ("mlp.output.bias", (w,), Role.vector)]
    assert settle_fixed(placed, width=w)[1] is Role.vector
    # a vocabulary the size of the width: a square readout, its bias is fixed
    square = [("lm_head.weight", (w, w), Role.readout), ("lm_head.bias", (w,), Role.vector)]
    assert settle_fixed(square, width=w)[1] is Role.fixed


def test_in_global_mode_the_fixed_epsilon_stays_the_base_one():
    eps = [fixed_setting(transfer("mup", "adam", BaseConfig(width=BASE, beta=BETA), n, lr_mode="global")).epsilon
           for n in (BASE, 16 * BASE)]
    assert eps[1] == pytest.approx(eps[0], rel=1e-12)


def test_mup_import_says_a_fixed_groups_lr_is_not_carried_and_refuses_its_init_std():
    from abcscale.schemas.api import MupImportRequest
    from abcscale.usecases.mup import mup_import

    lr = {"embedding": BETA, "hidden": BETA, "readout": BETA, "vector": BETA}
    out = mup_import(MupImportRequest(optimizer="sgd", base_width=BASE, width=4 * BASE, lr=lr | {"fixed": 2 * BETA}))
    assert any("fixed group's" in w for w in out.warnings)
    assert not any("fixed group's" in w for w in mup_import(MupImportRequest(
        optimizer="sgd", base_width=BASE, width=4 * BASE, lr=lr)).warnings)
    with pytest.raises(ValueError, match="fixed: vector-like and fixed parameters keep their init"):
        MupImportRequest(optimizer="sgd", base_width=BASE, lr=BETA, init_std={"hidden": 0.1, "fixed": 1.0})


# --- an end-to-end review of the fixed role and SGD's decay (helper) --------------------------------------------


def test_check_says_a_decay_on_a_role_that_takes_none(tmp_path):
    cfg = {"parameterization": "mup", "optimizer": "sgd", "width": 1024, "base_width": BASE, "beta": BETA,
           "lr": {"hidden": BETA}, "constants": {"weight_decay": 5e-4}, "weight_decay": {"fixed": 1e-4}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["failed"] == [
        "weight_decay (fixed) too high: this role takes none"]
    table = runner.invoke(app, ["check", str(path)])
    # the table says it (a crash printing nothing passed the check on "1e+300" alone)
    assert table.exit_code == 1 and "this role takes none" in " ".join(table.output.split()), table.output
    assert "1e+300" not in table.output


def test_mup_exports_show_the_decays_an_sgd_setup_needs(tmp_path):
    """The calculator's mup table gave the applied decays beside MuSGD's lr (16x too small once MuSGD divides them);
    `mup export` in independent mode left out the decays its warning pointed to."""
    res = runner.invoke(app, ["mup", "export", "-o", "sgd", "--width", "1024", "--base-width", "64", "--base-lr",
                              "0.1", "--weight-decay", "5e-4", "--weight-decay-mode", "independent"],
                        env={"COLUMNS": "160"})
    assert res.exit_code == 0 and "applied decay" in res.output and "MuSGD (the setup gives it none)" in " ".join(
        res.output.split())
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        page = client.get("/?source=theory&parameterization=mup&optimizer=sgd&base_width=64&base_lr=0.1&width=1024"
                          "&form=mup&weight_decay=5e-4").text
    assert "mup weight decay" in page and 'data-field="mup_weight_decay">7.813e-06<' in page


def test_an_adam_base_decay_is_said_at_the_field_that_gave_it(tmp_path):
    """`check`'s base decay is `constants.weight_decay` (its `weight_decay` is the run's); `mup export`'s is the flag;
    REST `/v1/theory/to-mup` points at `base.weight_decay` as `/v1/recommend` does."""
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base_width": BASE, "beta": 1e-3,
           "lr": {"hidden": 1e-4}, "constants": {"weight_decay": 5e-4}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path)])
    assert res.exit_code == 2 and ("error: constants.weight_decay: adam has no weight decay that abcscale transfers"
                                   in res.output)
    res = runner.invoke(app, ["mup", "export", "-o", "adam", "--width", "1024", "--base-width", "64", "--base-lr",
                              "0.01", "--weight-decay", "5e-4"])
    assert res.exit_code == 2 and ("error: --weight-decay: adam has no weight decay that abcscale transfers"
                                   in res.output)
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        r = client.post("/v1/theory/to-mup", json={"parameterization": "mup", "optimizer": "adam", "width": 1024,
                                                   "base": {"width": 64, "beta": 0.01, "weight_decay": 5e-4}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "base", "weight_decay"]
