"""Session 68: `sweep --model` against abcscale.optax for the same JAX model, where the two read a parameter apart (the
team tunes constants in the sweep and applies the export's settings to its big model):

- under `-o muon` the sweep orthogonalised the hidden 2-D matrices alone: a conv kernel ([kh, kw, C_in, C_out], a 1-D
  conv's [k, C, C]) and a `lax.scan` stack took Adam's step at Muon's hidden LR, where the export's Muon
  orthogonalises a conv kernel as one [taps x C_in, C_out] matrix (Keller Jordan's Muon flattens a conv filter alike;
  the theory's fan-in is taps x C_in) and a stack one matrix a layer;
- a depthwise conv kernel [7, 7, 1, C] (ConvNeXt's `dwconv`), vector-like in the export, was refused by the sweep with
  the embedding's role advised;
- a readout of 3 or more axes that is no conv (`DenseGeneral(axis=(-2, -1))`'s [heads, head_dim, V]) took its second
  last axis as its fan-in in the sweep, every axis but its last in the export: a readout std constant in the width
  against the export's 1/width under muP;
- a conv-named 5-axis kernel without a bias whose first axis is the depth (an `nn.scan` stack of 2-D convs, or one 3-D
  conv) is asked about in the sweep; a bias-less unnamed 4-axis kernel is read alike (a stack, warned by the export).

The models are plain JAX (the conv kernels in flax's [*kernel, in, out] layout, under flax's names).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import abcscale  # noqa: E402
from abcscale import optax as abcoptax  # noqa: E402
from abcscale.runner import draws, user  # noqa: E402
from abcscale.runner import sweep as sw  # noqa: E402
from abcscale.runner import train as tr  # noqa: E402
from abcscale.runner.nn import ModelConfig, init_params  # noqa: E402
from abcscale.runner.optim import make_optimizer  # noqa: E402
from abcscale.runner.spec import SweepSpec  # noqa: E402
from abcscale.schemas.groups import SPEC_ROLES  # noqa: E402
from tests.runner.compiled import jit  # noqa: E402

V, BASE, WIDTH, BETA = 256, 16, 32, 2.0**-6

#: a causal conv LM in flax's layouts: a 2-D conv Conv_0 [3, 1, D, D] (over [B, T, 1, D]) and a 1-D conv conv_a
#: [3, D, D], each with its bias; a lax.scan-style stack `layers/w` [depth, D, D] of hidden matrices
CONV = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "Conv_0": {"kernel": (3, 1, D, D), "bias": (D,)},
                         "conv_a": {"kernel": (3, D, D), "bias": (D,)},
                         "layers": {"w": (depth, D, D)},
                         "lm_head": {"kernel": (D, vocab)}}}
    def conv2(x, k, b):
        y = jax.lax.conv_general_dilated(x[:, :, None, :], k, (1, 1), ((2, 0), (0, 0)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y[:, :, 0, :] + b
    def conv1(x, k, b):
        xp = jnp.pad(x, ((0, 0), (2, 0), (0, 0)))
        return sum(xp[:, i:i + x.shape[1]] @ k[i] for i in range(3)) + b
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.nn.gelu(conv2(x, p["Conv_0"]["kernel"], p["Conv_0"]["bias"]))
        x = x + jax.nn.gelu(conv1(x, p["conv_a"]["kernel"], p["conv_a"]["bias"]))
        for i in range(depth):
            x = x + jnp.tanh(x @ p["layers"]["w"][i])
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply}
'''

#: ConvNeXt's block on a sequence: a depthwise conv `dwconv` [7, 7, 1, D] (feature_group_count = D) %s, pointwise
#: up and down projections
CONVNEXT = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "dwconv": {"kernel": (7, 7, 1, D)%s},
                         "pwconv1": {"kernel": (D, 4 * D), "bias": (4 * D,)},
                         "pwconv2": {"kernel": (4 * D, D), "bias": (D,)},
                         "lm_head": {"kernel": (D, vocab)}}}
    def dw(x, k):
        y = jax.lax.conv_general_dilated(x[:, :, None, :], k, (1, 1), ((6, 0), (3, 3)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
        return y[:, :, 0, :]
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        h = dw(x, p["dwconv"]["kernel"])%s
        h = jax.nn.gelu(h @ p["pwconv1"]["kernel"] + p["pwconv1"]["bias"])
        x = x + h @ p["pwconv2"]["kernel"] + p["pwconv2"]["bias"]
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply%s}
'''

#: a readout over heads: flax's DenseGeneral(vocab, axis=(-2, -1)) on [B, T, heads, 8], its kernel [heads, 8, V]
HEADS_READOUT = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D, HD = width, 8
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "mlp": {"up": {"kernel": (D, 4 * D)}, "down": {"kernel": (4 * D, D)}},
                         "head": {"kernel": (D // HD, HD, vocab), "bias": (vocab,)}}}
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.nn.gelu(x @ p["mlp"]["up"]["kernel"]) @ p["mlp"]["down"]["kernel"]
        xh = x.reshape(*x.shape[:-1], D // HD, HD)
        return jnp.einsum("bthe,hev->btv", xh, p["head"]["kernel"]) + p["head"]["bias"]
    return {"shapes": shapes, "apply": apply}
'''

#: a readout [D, 4, V / 4]: DenseGeneral(features=(4, V / 4)) contracts D alone
SPLIT_READOUT = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "mlp": {"up": {"kernel": (D, 4 * D)}, "down": {"kernel": (4 * D, D)}},
                         "head": {"kernel": (D, 4, vocab // 4)}}}
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.nn.gelu(x @ p["mlp"]["up"]["kernel"]) @ p["mlp"]["down"]["kernel"]
        y = jnp.einsum("btd,dij->btij", x, p["head"]["kernel"])
        return y.reshape(*y.shape[:2], vocab)
    return {"shapes": shapes, "apply": apply}
'''

#: bias-less kernels: `proj` [3, 1, D, D] (a 2-D conv under no conv name) and a conv-named 5-axis `Conv_0` [n, 3, 1, D,
#: D] (a stack of n 2-D convs, nn.scan's, or one 3-D conv: n the depth, or 3)
BIASLESS = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "blk": {"proj": {"kernel": (3, 1, D, D)}, "Conv_0": {"kernel": (%s, 3, 1, D, D)}},
                         "lm_head": {"kernel": (D, vocab)}}}
    def conv(x, k):
        y = jax.lax.conv_general_dilated(x[:, :, None, :], k, (1, 1), ((k.shape[0] - 1, 0), (0, 0)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y[:, :, 0, :]
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.nn.gelu(conv(x, p["blk"]["proj"]["kernel"]))
        k = p["blk"]["Conv_0"]["kernel"]
        for i in range(k.shape[0]):
            x = x + jax.nn.gelu(conv(x, k[i]))
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply%s}
'''


def _ref(tmp_path, source, name="m.py"):
    (tmp_path / name).write_text(source)
    return f"{tmp_path / name}:make"


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def _spec(ref, optimizer="adam", depth=1):
    return SweepSpec(model=ref, widths=[BASE, WIDTH], depth=depth, log2_lr="-6:-6:1", steps=2, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, parameterizations=["mup"], optimizers=[optimizer])


def _cfg(spec, width):
    cell = next(c for c in spec.cells() if c.width == width)
    hyper = sw.layer_hyper(spec, cell)
    return hyper, ModelConfig("user", width, spec.depth, 8, factory=spec.model, fan_in_exponent=hyper.fan_in_exponent,
                              readout_fan_in_exponent=hyper.readout_fan_in_exponent)


def _groups(optimizer, width):
    return abcscale.recommend("mup", optimizer, width=width, base_width=BASE, beta=BETA,
                              form="multiplier_free").groups


def _leaf(tree, model, name):
    for key in model.paths[name]:
        tree = tree[key]
    return tree


def _runner_vs_export(ref, optimizer="adam", depth=1, fan_in=None):
    """Per width and parameter: (the sweep's init std, the export's, the sweep's role, the export's role, init)."""
    spec = _spec(ref, optimizer, depth)
    user.check(ref, [BASE, WIDTH], depth, 8)
    out = {}
    for width in (BASE, WIDTH):
        hyper, cfg = _cfg(spec, width)
        model = user.build(ref, width, depth, V, 8)
        tree = model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()})
        given = None if fan_in is None else fan_in(width)
        stds, _ = _quiet(abcoptax.init_std_tree, _groups(optimizer, width), tree, fan_in=given)
        labels, _ = _quiet(abcoptax.labels, _groups(optimizer, width), tree, fan_in=given)
        for name, p in user.param_specs(cfg).items():
            drawn = None if p.init != "normal" else \
                (hyper.init_std[p.layer] if p.layer < 3 else 1.0) * p.std_const
            out[(width, name)] = (drawn, _leaf(stds, model, name), SPEC_ROLES[p.layer].value,
                                  _leaf(labels, model, name), p.init)
    return out


def _sweep_and_export_steps(ref, depth=1, fan_in=None, width=WIDTH):
    """One Muon step of the sweep's optimizer (runner.optim, with the model's Muon matrices) and of the export's
    transform on the same gradients, per parameter."""
    spec = _spec(ref, "muon", depth)
    hyper, cfg = _cfg(spec, width)
    specs = user.param_specs(cfg)
    tx = make_optimizer("muon", jnp.asarray(hyper.lr_factor) * BETA, jnp.asarray(hyper.epsilon),
                        {k: v.layer for k, v in specs.items()}, steps=10, schedule_kind="constant",
                        wd_3=jnp.zeros(5), muon_dims=user.muon_dims(cfg))
    params = {k: jnp.zeros(s.shape) for k, s in specs.items()}
    rng = np.random.default_rng(1)  # numpy's normals: jax.random's compiled a kernel per shape (2 CPU-s a call)
    grads = {k: jnp.asarray(rng.standard_normal(s.shape), jnp.float32) for k, s in sorted(specs.items())}
    # jitted, as a training step runs them (tests.runner.compiled): eagerly Muon's Newton-Schulz steps compiled op
    # by op (seconds a call)
    ours, _ = jit(tx.update)(grads, tx.init(params), params)
    model = user.build(ref, width, depth, V, 8)
    tree = model.tree(params)
    etx, _ = _quiet(abcoptax.transform, _groups("muon", width), tree, fan_in=fan_in)
    theirs, _ = jit(etx.update)(model.tree(grads), etx.init(tree), tree)
    return {name: (np.asarray(ours[name]), np.asarray(_leaf(theirs, model, name))) for name in specs}, hyper, specs


# --- 1. Muon on a conv kernel, a 1-D conv's and a scan stack: the sweep's step is the export's


def test_muon_steps_a_conv_kernel_in_the_sweep_as_the_export_does(tmp_path):
    steps, hyper, specs = _sweep_and_export_steps(_ref(tmp_path, CONV), depth=2)
    for name, (ours, theirs) in steps.items():
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8, err_msg=name)
    lr = hyper.lr_factor[specs["params/Conv_0/kernel"].layer] * BETA
    for name, taps in (("params/Conv_0/kernel", 3), ("params/conv_a/kernel", 3)):
        # one [taps x C, C] matrix, orthogonalised: its singular values near 1 once the LR is divided out (Adam's
        # near-sign step before: every entry about the LR, singular values ~sqrt(taps x C))
        s = np.linalg.svd(steps[name][0].reshape(taps * WIDTH, WIDTH) / lr, compute_uv=False)
        assert s.max() < 1.3 and s.min() > 0.5, (name, s)
    for layer in steps["params/layers/w"][0]:  # each layer of the stack a matrix of its own
        s = np.linalg.svd(layer / lr, compute_uv=False)
        assert s.max() < 1.3 and s.min() > 0.5, s


def test_the_sweeps_program_trains_with_the_models_muon_matrices(tmp_path, monkeypatch):
    from abcscale.runner.data import load_corpus

    ref = _ref(tmp_path, CONV)
    hyper, cfg = _cfg(_spec(ref, "muon", 2), WIDTH)
    given = []

    def spy(*args, **kwargs):
        given.append(kwargs.get("muon_dims"))
        return make_optimizer(*args, **kwargs)

    monkeypatch.setattr(tr, "make_optimizer", spy)
    c = load_corpus("synthetic", 20_000, 0.1, 10)
    prog = tr.Program(cfg, "muon", steps=2, batch=2)
    lr = np.full((1, 5), BETA, np.float32) * np.asarray(hyper.lr_factor, np.float32)
    out = tr.run_program(prog, c.train, c.eval, np.ones(3, np.float32), np.asarray(hyper.init_std, np.float32), lr,
                         np.asarray([hyper.epsilon], np.float32), np.array([0], np.uint32))
    assert np.isfinite(out.final_loss).all()
    assert given and given[0] == user.muon_dims(cfg)
    dims = given[0]["params/Conv_0/kernel"]
    assert tuple(dims.reduction_axis) == (0, 1, 2) and dims.output_axis == 3


def test_a_muon_cell_of_a_conv_model_is_another_cell_and_other_cells_keep_their_keys(tmp_path):
    conv = _cfg(_spec(_ref(tmp_path, CONV), "muon", 2), WIDTH)[1]
    assert user.layout_digest(conv, "muon") != user.layout_digest(conv, "adam") == user.layout_digest(conv, "sgd")
    assert user.layout_digest(conv) == user.layout_digest(conv, "muon")
    plain = _cfg(_spec(_ref(tmp_path, SPLIT_READOUT, "plain.py"), "muon"), WIDTH)[1]
    assert user.layout_digest(plain, "muon") == user.layout_digest(plain, "adam")  # 2-D matrices: as before


# --- 2. a depthwise conv kernel: vector-like, drawn as the model draws it


@pytest.mark.parametrize("bias", [False, True])
def test_a_depthwise_conv_kernel_is_swept_as_the_export_reads_it(tmp_path, bias):
    source = CONVNEXT % ((', "bias": (D,)', ' + p["dwconv"]["bias"]', "") if bias else ("", "", ""))
    got = _runner_vs_export(_ref(tmp_path, source))  # refused before, the embedding's role advised
    for width in (BASE, WIDTH):
        drawn, exported, role, label, init = got[(width, "params/dwconv/kernel")]
        # the export keeps its own init (exported None); the sweep draws flax's nn.Conv default, lecun normal
        assert (role, label, init, exported) == ("vector", "vector", "normal", None)
        assert drawn == pytest.approx(49 ** -0.5)
        for name, (drawn, exported, role, label, _) in got.items():
            if exported is not None:
                assert drawn == pytest.approx(exported, rel=1e-9) and role == label, name


def test_a_depthwise_kernel_is_drawn_at_its_std_by_both_of_the_runners_draws(tmp_path):
    ref = _ref(tmp_path, CONVNEXT % ("", "", ""))
    hyper, cfg = _cfg(_spec(ref), WIDTH)
    specs = user.param_specs(cfg)
    init_3 = np.asarray(hyper.init_std, np.float32)
    # jitted as in the training program (eagerly, a kernel compiled per parameter shape); indexed past the three
    # before
    in_program = jit(lambda key, std: init_params(specs, key, std))(jax.random.key(0), jnp.asarray(init_3))
    shared = draws.draw(specs, np.array([3], np.uint32), init_3, steps=1, batch=1, high=100).params
    for kernel in (np.asarray(in_program["params/dwconv/kernel"]), shared["params/dwconv/kernel"][0]):
        assert float(np.std(kernel)) == pytest.approx(1 / 7, rel=0.1)
    assert float(np.std(shared["params/lm_head/kernel"][0])) == pytest.approx(
        hyper.init_std[specs["params/lm_head/kernel"].layer], rel=0.1)


def test_a_depthwise_kernels_own_std_is_the_factorys_init(tmp_path):
    ref = _ref(tmp_path, CONVNEXT % ("", "", ', "init": {"params/dwconv/kernel": 0.02}'))
    got = _runner_vs_export(ref)
    assert got[(WIDTH, "params/dwconv/kernel")][0] == pytest.approx(0.02)
    assert got[(BASE, "params/dwconv/kernel")][0] == pytest.approx(0.02)


def test_a_depthwise_kernel_given_the_vector_role_is_drawn_alike(tmp_path):
    ref = _ref(tmp_path, CONVNEXT % ("", "", ', "roles": {"params/dwconv/kernel": "vector"}'))
    got = _runner_vs_export(ref)  # "init: ... starts at ones or zeros" before
    assert got[(WIDTH, "params/dwconv/kernel")][0] == pytest.approx(49 ** -0.5)


def test_a_number_is_no_matrix_roles_init(tmp_path):
    ref = _ref(tmp_path, CONVNEXT % ("", "", ', "init": {"params/pwconv1/kernel": 0.02}'))
    with pytest.raises(ValueError, match=r"init: 'params/pwconv1/kernel' has 0.02.*hidden"):
        user.check(ref, [BASE, WIDTH], 1, 8)
    bad = _ref(tmp_path, CONVNEXT % ("", "", ', "init": {"params/dwconv/kernel": -1}'), "bad.py")
    with pytest.raises(ValueError, match=r"init: 'params/dwconv/kernel' has -1; expected normal \| ones \| zeros"):
        user.check(bad, [BASE, WIDTH], 1, 8)


# --- 3. a readout of 3 axes: every axis but its last, in the sweep as in the export


@pytest.mark.parametrize("source", [HEADS_READOUT, SPLIT_READOUT], ids=["heads", "split"])
def test_a_readout_of_three_axes_starts_in_the_sweep_as_the_export_draws_it(tmp_path, source):
    got = _runner_vs_export(_ref(tmp_path, source))
    for (width, name), (drawn, exported, role, label, _) in got.items():
        assert role == label, name
        if exported is not None:
            assert drawn == pytest.approx(exported, rel=1e-9), (width, name)
    # muP: the readout's std shrinks as 1 / width (its fan-in grows with it); the sweep's stayed at head_dim's, the
    # same at every width (8x the export's at 4x the base width: a constant tuned on one, exported onto the other)
    head = [got[(w, "params/head/kernel")][0] for w in (BASE, WIDTH)]
    assert head[1] == pytest.approx(head[0] * BASE / WIDTH, rel=1e-9)


def test_a_heads_readout_is_drawn_at_the_2d_readouts_std(tmp_path):
    got = _runner_vs_export(_ref(tmp_path, HEADS_READOUT))
    for width in (BASE, WIDTH):  # [heads, 8, V] sums over heads x 8 = D, as [D, V] does
        assert got[(width, "params/head/kernel")][0] == pytest.approx(_groups("adam", width).init_std("readout", 1.0))


# --- 4. bias-less kernels of 4 and 5 axes


def test_a_conv_kernel_of_five_axes_whose_first_is_the_depth_is_asked_about(tmp_path):
    ref = _ref(tmp_path, BIASLESS % ("depth", ""))
    with pytest.raises(ValueError, match=r"'params/blk/Conv_0/kernel' \[2, 3, 1, 16, 16\].*first axis \(2\) is the "
                                         r"depth.*\[1, 2, 3\]} for a stack \(abcscale.optax: fan_in=\{"
                                         r"'params/blk/Conv_0/kernel': 48}\), \[0, 1, 2, 3\] for one convolution"):
        user.check(ref, [BASE, WIDTH], 2, 8)


def test_a_stack_of_convs_given_its_fan_in_trains_in_the_sweep_as_in_the_export(tmp_path):
    ref = _ref(tmp_path, BIASLESS % ("depth", ', "fan_in": {"params/blk/Conv_0/kernel": [1, 2, 3]}'))
    fan_in = lambda w: {"params/blk/Conv_0/kernel": 3 * w}  # noqa: E731
    got = _runner_vs_export(ref, depth=2, fan_in=fan_in)
    for (width, name), (drawn, exported, _, _, _) in got.items():
        if exported is not None:
            assert drawn == pytest.approx(exported, rel=1e-9), (width, name)
    assert got[(WIDTH, "params/blk/Conv_0/kernel")][0] == pytest.approx((3 * WIDTH) ** -0.5)  # one layer's taps x in
    steps, _, _ = _sweep_and_export_steps(ref, depth=2, fan_in=fan_in(WIDTH))
    for name, (ours, theirs) in steps.items():
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8, err_msg=name)


def test_bias_less_kernels_of_four_and_five_axes_read_alike_in_the_sweep_and_the_export(tmp_path):
    """Where the leading axis is not the depth: `proj` [3, 1, D, D] a stack of [D, D] matrices by its last two (the
    export warns: no conv name or bias says), `Conv_0` [3, 3, 1, D, D] one convolution of 3 kernel axes, both alike in
    their init std and in Muon's matrices."""
    ref = _ref(tmp_path, BIASLESS % ("3", ""))
    got = _runner_vs_export(ref, depth=2)
    for (width, name), (drawn, exported, role, label, _) in got.items():
        assert role == label and (drawn == pytest.approx(exported, rel=1e-9) if exported else True), (width, name)
    assert got[(WIDTH, "params/blk/proj/kernel")][0] == pytest.approx(WIDTH ** -0.5)
    assert got[(WIDTH, "params/blk/Conv_0/kernel")][0] == pytest.approx((9 * WIDTH) ** -0.5)
    steps, _, _ = _sweep_and_export_steps(ref, depth=2)
    for name, (ours, theirs) in steps.items():
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8, err_msg=name)
