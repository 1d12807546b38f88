"""Session 48: the runner trains a user model's readout bias (no width-sized axis) in the fixed role: its LR is the
vector role's at the base width, at every width (tests/test_fixed_role_s48.py has the theory)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

jax = pytest.importorskip("jax")
runner = CliRunner()

FACTORY = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"first": (vocab, width), "mix/kernel": (width, width), "mix/bias": (width,),
              "head/kernel": (width, vocab), "head/bias": (vocab,)}
    def apply(p, tok, record):
        h = jax.nn.relu(p["first"][tok] @ p["mix/kernel"] + p["mix/bias"])
        return h @ p["head/kernel"] + p["head/bias"]
    return {"shapes": shapes, "apply": apply, "roles": {"first": "embedding", "head/kernel": "readout"}}
'''


def _ref(tmp_path):
    (tmp_path / "m.py").write_text(FACTORY)
    return f"{tmp_path / 'm.py'}:make"


def test_show_roles_gives_the_readouts_bias_the_fixed_lr(tmp_path):
    res = runner.invoke(app, ["sweep", "--show-roles", "--json", "--model", _ref(tmp_path), "-p", "mup", "-o", "sgd",
                              "--widths", "32,128", "--base-width", "32", "--depth", "1",
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    (config,) = json.loads(res.stdout)["configurations"]
    by_name = {p["name"]: p for p in config["parameters"]}
    assert by_name["head/bias"]["role"] == "fixed" and by_name["mix/bias"]["role"] == "vector"
    fixed, vector = by_name["head/bias"]["lr_factor"], by_name["mix/bias"]["lr_factor"]
    assert fixed[0] == pytest.approx(fixed[1])  # the same at every width
    assert vector[1] == pytest.approx(4 * vector[0])  # SGD muP: a width-sized bias's LR grows as n
    want = abcscale.recommend("mup", "sgd", width=128, base_width=32, beta=1.0, form="multiplier_free").groups
    assert fixed[1] == pytest.approx(want["fixed"].lr, rel=1e-12)


def test_a_sweep_trains_it_and_records_lr_fixed(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", "--model", _ref(tmp_path), "-p", "mup", "-o", "sgd", "--widths", "16,32",
                              "--base-width", "16", "--depth", "1", "--log2-lr=-4", "--steps", "3", "--batch", "2",
                              "--seq-len", "8", "--seeds", "1", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    rows = pd.read_parquet(out / "results.parquet").sort_values("width")
    assert np.isfinite(rows["final_loss"]).all()
    assert rows["lr_fixed"].tolist() == pytest.approx([2.0**-4] * 2)
    assert rows["lr_vector"].tolist() == pytest.approx([2.0**-4, 2 * 2.0**-4])


def test_the_optimizer_steps_a_fixed_parameter_at_its_own_lr():
    """runner.optim: the fifth per-role slot is the fixed role's (a 4-long array gives it the vector's, as before)."""
    import jax.numpy as jnp

    from abcscale.runner.nn import FIX, VEC
    from abcscale.runner.optim import make_optimizer
    from abcscale.runner.train import _per_role

    lr = jnp.asarray([1.0, 2.0, 3.0, 4.0, 5.0])
    tx = make_optimizer("sgd", lr, jnp.zeros(5), {"v": VEC, "f": FIX}, steps=10, schedule_kind="constant")
    params = {"v": jnp.zeros(3), "f": jnp.zeros(3)}
    grads = {"v": jnp.ones(3), "f": jnp.ones(3)}
    updates, _ = tx.update(grads, tx.init(params), params)
    assert np.asarray(updates["v"]) == pytest.approx([-4.0] * 3)
    assert np.asarray(updates["f"]) == pytest.approx([-5.0] * 3)
    assert _per_role(np.asarray([1.0, 2.0, 3.0, 4.0])).tolist() == [1.0, 2.0, 3.0, 4.0, 4.0]
    assert _per_role(np.asarray([1.0, 2.0, 3.0])).tolist() == [1.0, 2.0, 3.0, 1.0, 1.0]


STACKED = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"first": (vocab, width), "blocks/kernel": (depth, width, width), "blocks/gate": (depth,),
              "aux/kernel": (depth, width, vocab), "aux/bias": (depth, vocab),
              "head/kernel": (width, vocab), "head/bias": (vocab,)}
    def apply(p, tok, record):
        h = p["first"][tok]
        for i in range(depth):
            h = h + p["blocks/gate"][i] * jax.nn.relu(h @ p["blocks/kernel"][i])
        return h @ p["head/kernel"] + p["head/bias"] + (h @ p["aux/kernel"][0] + p["aux/bias"][0])
    return {"shapes": shapes, "apply": apply,
            "roles": {"first": "embedding", "head/kernel": "readout", "aux/kernel": "readout"}}
'''


@pytest.mark.parametrize("depth", [1, 2])
def test_stacked_biases_and_gates_are_fixed_at_every_depth(tmp_path, depth):
    """A code review: a stacked readout bias [depth, V] stayed vector, a stack of per-layer gates [depth] was fixed
    at depth 1 and vector at depth 2."""
    from abcscale.runner.nn import LAYER_TYPES
    from abcscale.runner.user import build, layout

    (tmp_path / "s.py").write_text(STACKED)
    model = build(f"{tmp_path / 's.py'}:make", 64, depth, 256, 8)
    roles = {name: LAYER_TYPES[s.layer] for name, s in layout(model, 64).items()}
    assert roles["head/bias"] == roles["aux/bias"] == roles["blocks/gate"] == "fixed", roles
    assert roles["blocks/kernel"] == "hidden"


def test_a_user_models_cells_are_keyed_by_the_fixed_rule(tmp_path, monkeypatch):
    """Cells trained before the fixed role (the readout's bias at the vector LR) are other cells: a resumed sweep
    must not reuse them."""
    import abcscale.runner.spec as spec_module
    from abcscale.runner.spec import SweepSpec

    seen = []
    real = spec_module.json.dumps
    monkeypatch.setattr(spec_module.json, "dumps", lambda obj, **kw: (seen.append(obj), real(obj, **kw))[1])
    spec = SweepSpec(model=_ref(tmp_path), widths=[16, 32], base_width=16, depth=1)
    spec.cells()[0].key(spec, "sha")
    assert any(isinstance(o, dict) and o.get("spec", {}).get("fixed_rule") == "theory.groups.fixed_setting"
               for o in seen)


def test_the_runners_decaying_variants_are_its_chains():
    """runner.spec refuses a weight decay for a variant whose chain applies none: the list it checks is the
    chains' (sgd's L2 term is one of them since session 49)."""
    from abcscale.runner.optim import OPTIMIZER_VARIANTS
    from abcscale.runner.spec import DECAYING_VARIANTS, SweepSpec

    assert DECAYING_VARIANTS == {name for name, v in OPTIMIZER_VARIANTS.items() if v.decays}
    assert "sgd" in DECAYING_VARIANTS
    SweepSpec(optimizers=["sgd"], constants={"weight_decay": 0.1})
    with pytest.raises(ValueError, match="constants.weight_decay: adam has no weight decay that abcscale transfers"):
        SweepSpec(optimizers=["adam"], constants={"weight_decay": 0.1})
