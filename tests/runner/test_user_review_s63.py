"""Session 63: a JAX team's review of sweeping its own model. A hidden layer's bias as long as the vocabulary
(the README example's MLP bias [4D] = [256] at width 64) trained as the readout's bias (fixed) at that width alone,
and `sweep --show-roles` showed the smallest width's role and numbers at every width; an embedding on a dense
`kernel` was drawn at std 1 by the sweep and fan-in^-1/2 by abcscale.optax; `runner.draws.draw` needed an
undocumented `options=`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("jax")

from abcscale.cli import app  # noqa: E402
from abcscale.runner.spec import SweepSpec  # noqa: E402

runner = CliRunner()
V = 256

#: a flat model whose MLP bias `b1` [4D] sits at the top beside the readout: one width cannot tell it from the
#: readout's bias at width 64 (4D = V); a nested flax-like `Dense_0` whose bias has a hidden sibling kernel
FLAT = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"wte": (vocab, D), "w1": (D, 4 * D), "b1": (4 * D,), "w2": (4 * D, D), "b2": (D,),
              "lm_head": (D, vocab), "lm_head_bias": (vocab,)}
    def apply(p, tok, record):
        x = p["wte"][tok]
        x = x + jax.nn.gelu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return x @ p["lm_head"] + p["lm_head_bias"]
    return {"shapes": shapes, "apply": apply}
'''

#: the roles given change with the width (a stand-in for any role that does): `gain` fixed at 16, vector at 32
SHIFTING = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"wte": (vocab, width), "mix": (width, width), "gain": (width,), "head": (width, vocab)}
    def apply(p, tok, record):
        return (jax.nn.relu(p["wte"][tok] @ p["mix"]) * p["gain"]) @ p["head"]
    roles = {"wte": "embedding", "head": "readout"} | ({"gain": "fixed"} if width == 16 else {})
    return {"shapes": shapes, "apply": apply, "roles": roles}
'''

#: the review's flax MLP classifier: Dense_0 on one-hot tokens, its kernel named the embedding by `roles` (%s: more
#: of the factory's answer, a `fan_in`)
FLAX_MLP_WITH = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"Dense_0": {"kernel": (vocab, D), "bias": (D,)}, "Dense_1": {"kernel": (D, D), "bias": (D,)},
              "Dense_2": {"kernel": (D, vocab), "bias": (vocab,)}}
    def apply(p, tok, record):
        x = jax.nn.one_hot(tok, vocab)
        h = jax.nn.relu(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
        return h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]
    return {"shapes": shapes, "apply": apply,
            "roles": {"Dense_0": {"kernel": "embedding"}, "Dense_2": {"kernel": "readout"}}%s}
'''
FLAX_MLP = FLAX_MLP_WITH % ""


def _ref(tmp_path, source, name="m.py"):
    (tmp_path / name).write_text(source)
    return f"{tmp_path / name}:make"


def _roles(ref, widths, optimizer="sgd", depth=1):
    from abcscale.runner.roles import parameter_roles

    spec = SweepSpec(model=ref, parameterizations=["mup"], optimizers=[optimizer], widths=widths, depth=depth,
                     seq_len=8, batch=2, steps=2, data="synthetic")
    (config,) = parameter_roles(spec)
    return {p.name: p for p in config.parameters}


def test_the_readme_examples_mlp_bias_is_vector_at_every_width():
    # the README's own `--widths 32,64`: fc_in.bias [256] = [vocab] at 64 was fixed there, LR/beta 1 not 2
    by_name = _roles("examples/user_model.py:factory", [32, 64])
    p = by_name["blocks.0.mlp.fc_in.bias"]
    assert p.roles == ["vector", "vector"] and p.role == "vector"
    assert p.lr_factor == pytest.approx([1.0, 2.0])  # muP + SGD: the vector role's LR grows as the width
    assert by_name["blocks.0.mlp.fc_in.bias"].lr_factor == by_name["blocks.0.mlp.fc_out.bias"].lr_factor


def test_a_bias_that_grows_with_the_width_is_never_fixed(tmp_path):
    # one width cannot tell `b1` [4D] beside `lm_head` [D, V] from the readout's bias at 4D = V; the runner builds
    # the model at another width too and sees it grow
    by_name = _roles(_ref(tmp_path, FLAT), [32, 64])
    assert by_name["b1"].roles == ["vector", "vector"]
    assert by_name["lm_head_bias"].roles == ["fixed", "fixed"] and by_name["lm_head_bias"].lr_factor == [1.0, 1.0]


def test_the_runners_layout_is_one_at_any_sweeps_widths(tmp_path):
    from abcscale.runner import user
    from abcscale.schemas.groups import SPEC_ROLES

    ref = _ref(tmp_path, FLAT)
    for widths in ([64], [64, 128], [32, 64]):
        user.check(ref, widths, 1, 8)
    spec = user.layout(user.build(ref, 64, 1, V, 8), 64, grown=user.grown_model(ref, 64, 1, V, 8))
    assert SPEC_ROLES[spec["b1"].layer] == "vector"


def test_a_scan_stacks_bias_agrees_with_the_export(tmp_path):
    import jax.numpy as jnp

    from abcscale import optax as abcoptax
    from abcscale import recommend
    from abcscale.runner import user

    ref = _ref(tmp_path, SCAN)
    by_name = _roles(ref, [32, 64], depth=2)
    assert by_name["blocks/fc/bias"].roles == ["vector", "vector"]
    model = user.build(ref, 64, 2, V, 8)
    spec = recommend("mup", "sgd", width=64, base_width=32, beta=1.0, form="multiplier_free").groups
    labels = abcoptax.labels(spec, model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()}))
    assert labels["blocks"]["fc"]["bias"] == "vector" and labels["lm_head"]["bias"] == "fixed"
    lrs = abcoptax.lr_tree(spec, model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()}))
    assert lrs["blocks"]["fc"]["bias"] == pytest.approx(by_name["blocks/fc/bias"].lr_factor[1])


SCAN = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"wte": {"embedding": (vocab, D)},
              "blocks": {"fc": {"kernel": (depth, D, 4 * D), "bias": (depth, 4 * D)},
                         "proj": {"kernel": (depth, 4 * D, D)}},
              "lm_head": {"kernel": (D, vocab), "bias": (vocab,)}}
    def apply(p, tok, record):
        def body(x, layer):
            h = jax.nn.gelu(x @ layer["fc"]["kernel"] + layer["fc"]["bias"])
            return x + h @ layer["proj"]["kernel"], None
        x, _ = jax.lax.scan(body, p["wte"]["embedding"][tok], p["blocks"])
        return x @ p["lm_head"]["kernel"] + p["lm_head"]["bias"]
    return {"shapes": shapes, "apply": apply}
'''


def test_show_roles_shows_each_widths_own_role_and_numbers(tmp_path):
    by_name = _roles(_ref(tmp_path, SHIFTING), [16, 32])
    gain = by_name["gain"]
    assert gain.roles == ["fixed", "vector"] and gain.role == "fixed / vector" and gain.changes_role
    # muP + SGD, base 16: fixed keeps LR/beta 1; the vector role's grows to 2 at 32 (it showed 1 / 1)
    assert gain.lr_factor == pytest.approx([1.0, 2.0])
    assert not by_name["mix"].changes_role


def test_show_roles_text_flags_a_role_change(tmp_path):
    ref = _ref(tmp_path, SHIFTING)
    base = ["sweep", "--show-roles", "--model", ref, "-p", "mup", "-o", "sgd", "--widths", "16,32", "--depth", "1",
            "--seq-len", "8", "--batch", "2", "--steps", "2", "--data", "synthetic"]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "note: gain changes role with the width (fixed / vector at 16 / 32)" in out
    res = runner.invoke(app, [*base, "--json"])
    (config,) = json.loads(res.stdout)["configurations"]
    gain = next(p for p in config["parameters"] if p["name"] == "gain")
    assert gain["roles"] == ["fixed", "vector"] and gain["lr_factor"] == pytest.approx([1.0, 2.0])


def test_an_embedding_on_a_dense_kernel_starts_as_the_export_draws_it(tmp_path):
    import jax
    import jax.numpy as jnp

    from abcscale import optax as abcoptax
    from abcscale import recommend
    from abcscale.runner import user
    from abcscale.runner.nn import init_params

    ref = _ref(tmp_path, FLAX_MLP)
    by_name = _roles(ref, [16, 32], optimizer="adam")
    kernel = by_name["Dense_0/kernel"]
    assert kernel.role == "embedding" and kernel.init_std == pytest.approx([V ** -0.5] * 2)  # not 1 / 1
    for w, shown in zip((16, 32), kernel.init_std, strict=True):
        model = user.build(ref, w, 1, V, 8)
        params = model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()})
        spec = recommend("mup", "adam", width=w, base_width=16, beta=1.0, form="multiplier_free").groups
        stds = abcoptax.init_std_tree(spec, params, rules=[("Dense_0", "embedding"), ("Dense_2", "readout")])
        assert stds["Dense_0"]["kernel"] == pytest.approx(shown, rel=1e-6)
        laid = user.layout(model, w, grown=user.grown_model(ref, w, 1, V, 8))
        drawn = init_params(laid, jax.random.PRNGKey(0), jnp.ones(3))["Dense_0/kernel"]
        assert float(jnp.std(drawn)) == pytest.approx(V ** -0.5, rel=0.1)


def test_a_lookup_table_keeps_the_embeddings_std(tmp_path):
    by_name = _roles(_ref(tmp_path, SHIFTING), [16, 32], optimizer="adam")
    assert by_name["wte"].init_std == pytest.approx([1.0, 1.0])  # a bare parameter indexed by the tokens: a lookup


def test_draw_takes_the_runners_own_options_by_default(tiny_spec, monkeypatch):
    from abcscale.runner import draws
    from abcscale.runner.sweep import _program
    from abcscale.runner.train import compiler_options

    cell = tiny_spec.cells()[0]
    prog = _program(tiny_spec, cell, (), False)
    init_3 = np.array([1.0, 0.5, 0.25], np.float32)
    args = (prog.specs(), np.array([0, 1]), init_3)
    kw = {"steps": 3, "batch": 2, "high": 100}
    given = draws.draw(*args, **kw, options=compiler_options(prog))
    # the options the default compiles with, captured: on this tiny MLP options={} draws the same numbers, so
    # comparing the draws alone passed for any default (a code review)
    used: list[dict] = []
    one_seed = draws._one_seed

    def spy(specs, names, seed, init, options):
        used.append(dict(options))
        return one_seed(specs, names, seed, init, options)

    monkeypatch.setattr(draws, "_one_seed", spy)
    default = draws.draw(*args, **kw)  # a TypeError before: options was required, and undocumented
    monkeypatch.undo()
    assert compiler_options(prog), "conftest's opt level 0 makes the runner's options non-empty"
    assert used == [compiler_options(prog)] * 2 or not draws.shared_draw()
    assert compiler_options(specs=prog.specs()) == compiler_options(prog)
    assert given.starts.tolist() == default.starts.tolist()
    for name in given.params:
        assert np.array_equal(given.params[name], default.params[name])
