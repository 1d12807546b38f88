"""Your own JAX model (issue 13 item 6) and the vector-like role (item 7) in the runner.

The example model is ``examples/user_model.py``; the roles come from ``theory.groups``' default rules, and
the per-parameter init stds and LRs must be ``group_spec(..., multiplier_free)``'s.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from abcscale import theory
from abcscale.runner import sweep as sw
from abcscale.runner import user
from abcscale.runner.nn import EMB, HID, OUT, VEC
from abcscale.runner.spec import SweepSpec
from abcscale.schemas.groups import Form
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import group_spec, spec_params

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'user_model.py'}:factory"


def _spec(**kw) -> SweepSpec:
    base = dict(model=EXAMPLE, widths=[16, 32], depth=1, log2_lr="-6:-4:2", steps=6, batch=4, seq_len=8,
                data="synthetic", eval_batches=1, batching="vmap", chunk=4, parameterizations=["mup"])
    return SweepSpec(**(base | kw))


def test_the_example_is_laid_out_by_the_default_rules():
    specs = user.layout(user.build(EXAMPLE, 32, 1, 256, 8), 32)
    assert specs["tok_embed.embedding"].layer == EMB and specs["pos_embed.embedding"].layer == EMB
    assert specs["blocks.0.attn.q.kernel"].layer == HID and specs["blocks.0.mlp.fc_in.kernel"].layer == HID
    assert specs["lm_head.kernel"].layer == OUT
    for name in ("ln_f.scale", "ln_f.bias", "blocks.0.ln1.scale", "blocks.0.attn.q.bias", "blocks.0.mlp.fc_in.bias"):
        assert specs[name].layer == VEC, name
    assert specs["ln_f.scale"].init == "ones" and specs["blocks.0.attn.q.bias"].init == "zeros"
    # fan-in 4D: std * 4**-(a+b) = std / 2; fan-in D: std
    assert specs["blocks.0.mlp.fc_out.kernel"].std_const == pytest.approx(0.5)
    assert specs["blocks.0.mlp.fc_in.kernel"].std_const == 1.0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_user_model_gets_the_multiplier_free_form_per_parameter(optimizer):
    """Every parameter's init std and LR (beta = 1) are theory.groups.spec_params' for the multiplier-free
    spec of the cell's transfer; multipliers are all 1."""
    spec = _spec(optimizers=[optimizer], widths=[16, 64])
    cell = spec.cells()[1]
    h = sw.layer_hyper(spec, cell)
    base = BaseConfig(width=16, beta=1.0, **dict(cell.constants(spec)))
    tr = theory.transfer("mup", optimizer, base, 64, "full", "per_layer")
    gs = group_spec(tr, Form.multiplier_free)
    model = user.build(EXAMPLE, 64, 1, 256, 8)
    want = spec_params(gs, model.shapes, layout="jax")
    assert h.form == "multiplier_free" and h.multiplier == (1.0, 1.0, 1.0)
    for name, p in user.layout(model, 64, h.fan_in_exponent).items():
        role, setting = want[name]
        assert sw.ROLE_NAMES[p.layer] == role.value, name
        assert h.lr_factor[p.layer] == pytest.approx(setting.lr, rel=1e-12), name
        if setting.init_std is not None:
            assert h.init_std[p.layer] * p.std_const == pytest.approx(setting.init_std, rel=1e-12), name


def test_the_vector_role_follows_vector_setting():
    """muP: vector-like LRs are constant in width with Adam (c_v = 0) and grow as n with SGD (c_v = -1); the
    transformer's LayerNorm gains are vector-like."""
    from abcscale.runner.transformer import param_specs

    spec = _spec(model="transformer", head_dim=8, widths=[16, 64], optimizers=["adam", "sgd"])
    by = {(c.optimizer, c.width): sw.layer_hyper(spec, c) for c in spec.cells()}
    assert by[("adam", 64)].lr_factor[VEC] == pytest.approx(by[("adam", 16)].lr_factor[VEC])
    assert by[("sgd", 64)].lr_factor[VEC] == pytest.approx(4 * by[("sgd", 16)].lr_factor[VEC])
    # before: the gains took the embedding's LR, (n/b)^-1/2 under muP + Adam
    assert by[("adam", 64)].lr_factor[EMB] == pytest.approx(0.5 * by[("adam", 16)].lr_factor[EMB])
    assert by[("adam", 64)].weight_decay[VEC] == 0.0
    specs = param_specs(sw._program(spec, spec.cells()[0], (), False).model)
    assert {n for n, s in specs.items() if s.layer == VEC} == {"ln_f", "b0.ln1", "b0.ln2"}


def test_the_chain_reads_the_vector_lr():
    from abcscale.runner.optim import make_optimizer

    params, grads = {"g": jnp.ones(3), "h": jnp.ones((3, 3))}, {"g": jnp.ones(3), "h": jnp.ones((3, 3))}
    for lr_4, moved in (([1.0, 1.0, 1.0, 0.0], False), ([0.0, 0.0, 0.0, 0.5], True)):
        tx = make_optimizer("sgd", jnp.asarray(lr_4), jnp.zeros(4), {"g": VEC, "h": HID}, steps=2,
                            schedule_kind="constant")
        u, _ = tx.update(grads, tx.init(params), params)
        assert bool(jnp.any(u["g"] != 0)) == moved and bool(jnp.any(u["h"] != 0)) != moved


def test_three_long_arrays_give_vector_params_the_embedding_value():
    from abcscale.runner.train import _per_role

    np.testing.assert_array_equal(_per_role(np.asarray([[1.0, 2.0, 3.0]])), [[1.0, 2.0, 3.0, 1.0, 1.0]])
    # a 4-long one gives fixed parameters the vector-like one's, as before the fixed role
    np.testing.assert_array_equal(_per_role(np.asarray([1.0, 2.0, 3.0, 4.0])), [1.0, 2.0, 3.0, 4.0, 4.0])
    np.testing.assert_array_equal(_per_role(np.asarray([1.0, 2.0, 3.0, 4.0, 5.0])), [1.0, 2.0, 3.0, 4.0, 5.0])


def _factory_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bad_model.py"
    path.write_text("import jax.numpy as jnp\n\n\ndef factory(width, depth, *, vocab, seq_len):\n" + body)
    return f"{path}:factory"


@pytest.mark.parametrize(("body", "needle"), [
    ("    return {'apply': lambda p, t, r: t}\n", "'shapes'"),
    ("    return {'shapes': {'w': 'x'}, 'apply': lambda p, t, r: t}\n", "shapes: 'w'"),
    ("    return {'shapes': {'w': (width, width)}}\n", "'apply"),
    ("    return {'shapes': {'w': (width, width)}, 'apply': len, 'roles': {'v': 'hidden'}}\n", "roles: 'v'"),
    ("    return {'shapes': {'w': (width, width)}, 'apply': len, 'roles': {'w': 'middle'}}\n", "roles: 'w'"),
    ("    return {'shapes': {'w': (width, width)}, 'apply': len, 'init': {'w': 'uniform'}}\n", "init: 'w'"),
    ("    return {'shapes': {'g': (width,)}, 'apply': len, 'init': {'g': 'normal'}}\n", "init: 'g'"),
    ("    return {'shapes': {'w': (width, 7)}, 'apply': len}\n", "roles: parameter 'w'"),
    ("    raise RuntimeError('no GPU here')\n", "raised RuntimeError: no GPU here"),
])
def test_a_bad_factory_result_names_the_field(tmp_path, body, needle):
    ref = _factory_file(tmp_path, body)
    with pytest.raises(ValueError) as exc:
        user.check(ref, [16], 1, 8)
    assert needle in str(exc.value)


@pytest.mark.parametrize(("ref", "needle"), [
    ("no_such_pkg_xyz.models:factory", "cannot import 'no_such_pkg_xyz.models'"),
    (f"{ROOT / 'examples' / 'user_model.py'}:nope", "has no attribute 'nope'"),
    (f"{ROOT / 'examples' / 'missing.py'}:factory", "no such file"),
    (f"{ROOT / 'examples' / 'user_model.py'}:HEAD_DIM", "is not callable"),
])
def test_a_bad_reference_names_what_is_missing(ref, needle):
    with pytest.raises(ValueError, match="^model: ") as exc:
        user.load_factory(ref)
    assert needle in str(exc.value)


def test_a_reference_without_a_factory_is_refused_by_the_spec():
    with pytest.raises(ValueError, match="factory reference"):
        SweepSpec(model="examples/user_model.py")
    assert SweepSpec(model="pkg.mod:factory").model == "pkg.mod:factory"


@pytest.mark.e2e
def test_a_user_model_sweeps_with_resume_and_coord_stats(tmp_path):
    spec = _spec(coord_steps=[0, 5])
    df = sw.run_sweep(spec, tmp_path, progress=False)
    assert len(df) == 2 * 2 and not df["diverged"].any() and (df["form"] == "multiplier_free").all()
    assert (df["model"] == EXAMPLE).all() and (df[["multiplier_embedding", "multiplier_readout"]] == 1.0).all().all()
    assert (df["lr_vector"] > 0).all()
    coord = __import__("pandas").read_parquet(tmp_path / "coord.parquet")
    assert set(coord["layer"]) == {"tok_embed", "blocks.0.attn", "blocks.0.mlp", "logits"}
    assert (coord["act_rms"] > 0).all() and set(coord["layer_type"]) == {"activation"}
    again = sw.run_sweep(spec, tmp_path, progress=False)  # resumed: nothing reruns, same table
    assert again.drop(columns=["compile_s", "run_s"]).equals(df.drop(columns=["compile_s", "run_s"]))


def test_run_sweep_checks_the_model_before_it_trains(tmp_path):
    with pytest.raises(ValueError, match="^model: .*has no attribute 'nope'"):
        sw.run_sweep(_spec(model=EXAMPLE.replace(":factory", ":nope")), tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
