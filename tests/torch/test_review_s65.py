"""Session 65's review of the PyTorch path (muP, width 256 over 64, the plain form): roles taken silently wrong.

- a block's `output` projection outside numbered blocks (`ffn.output` [D, 4D]) trained as the readout, beside the
  real `head`: 8x too small an LR and init;
- an input layer and no readout: a classifier of 1024 classes at width 256 (4D, the blocks' expansion too) trained
  as a hidden matrix, unsaid, and so did microsoft/mup's MuReadout of that shape, whose class says readout;
- nn.MultiheadAttention cross-attending to 768 features (kdim = vdim = 768): its k/v projections [D, 768] hidden of
  fan-in 3x the width at 256, an error at 512;
- nn.Bilinear's weight [out, in1, in2] (fan-in in1 x in2) hidden of fan-in in2: outputs 8x at 64, 16x at 256;
- spec.mup.init_std: `in` and `.get()` said no for a group name `[]` answered;
- a readout of fan-in 2x the width (a ResNet's fc on 2C channels) drew the std of a fan-in of C.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402
from abcscale.schemas.groups import Role  # noqa: E402
from abcscale.theory.groups import assign  # noqa: E402

D = 256


def _spec(optimizer: str = "adam", form: str = "plain", width: int = D, **kw):
    return abcscale.recommend("mup", optimizer, width=width, base_width=64, beta=1e-3, form=form, **kw).groups


def _groups(model: nn.Module, spec, **kw) -> dict[str, str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["name"] for g in abctorch.param_groups(model, spec, **kw) for p in g["params"]}


def _module(**children: nn.Module) -> nn.Module:
    m = nn.Module()
    for name, child in children.items():
        m.add_module(name, child)
    return m


def test_a_blocks_output_projection_outside_numbered_blocks_is_hidden_not_the_readout():
    m = _module(embed=nn.Linear(16, D),
                ffn=nn.ModuleDict({"hidden": nn.Linear(D, 4 * D), "output": nn.Linear(4 * D, D)}),
                norm=nn.LayerNorm(D), head=nn.Linear(D, 1))
    spec, rules = _spec("adamw", weight_decay=0.1), [(r"^embed\.weight$", "embedding")]
    roles = _groups(m, spec, rules=rules)
    assert roles["ffn.output.weight"] == "hidden (fan-in 4x width)" and roles["ffn.output.bias"] == "vector"
    assert roles["head.weight"] == "readout" and roles["head.bias"] == "fixed"
    drawn = abctorch.init_(m, spec, rules=rules)
    assert drawn["ffn.output.weight"] == pytest.approx(spec.init_std("hidden", 4))  # 1/32, not the readout's 1/256
    # by its shape, in either layout; a readout of a vocabulary 4x the width on a fan-in of the width stays one
    assert assign("ffn.output.weight", (D, 4 * D), D) == (Role.hidden, 4.0)
    assert assign("ffn/output/kernel", (4 * D, D), D, layout="jax") == (Role.hidden, 4.0)
    assert assign("output.weight", (4 * D, D), D)[0] is Role.readout
    assert assign("output/kernel", (D, 4 * D), D, layout="jax")[0] is Role.readout
    assert assign("lm_head.weight", (D, 4 * D), D)[0] is Role.readout  # a name only a readout takes


class MuReadout(nn.Linear):  # microsoft/mup's class, read by its name (mup need not be installed)
    pass


def _vit(head: nn.Module | None) -> nn.Module:
    m = _module(patch_embed=nn.Conv2d(3, D, 16, 16),
                blocks=nn.ModuleList([nn.ModuleDict({"fc1": nn.Linear(D, 4 * D), "fc2": nn.Linear(4 * D, D)})
                                      for _ in range(2)]))
    if head is not None:
        m.classifier = head
    return m


PATCH = [(r"^patch_embed\.weight$", "embedding")]


def test_a_classifier_that_looks_like_a_hidden_matrix_beside_an_input_layer_asks_for_its_role():
    m = _vit(nn.Linear(D, 4 * D))  # 1024 classes: the blocks' expansion too
    with pytest.raises(ValueError, match=r"'classifier.weight' \[1024, 256\]: no rule names its role, and the "
                                         r"model has an embedding or input layer \('patch_embed.weight'\) but no "
                                         r"readout.*"
                                         r"\(r'\^classifier\\\.weight\$', 'readout'\)"):
        abctorch.param_groups(m, _spec(), rules=PATCH)
    roles = _groups(m, _spec(), rules=[*PATCH, (r"^classifier\.weight$", "readout")])
    assert roles["classifier.weight"] == "readout" and roles["classifier.bias"] == "fixed"


@pytest.mark.parametrize("cls", ["named", "mup"])
def test_a_mu_readout_is_the_readout_by_its_class(cls):
    if cls == "mup":
        mup = pytest.importorskip("mup")
        head = mup.MuReadout(D, 4 * D)
    else:
        head = MuReadout(D, 4 * D)
    m = _vit(head)
    roles = _groups(m, _spec(form="mup"), rules=PATCH)
    assert roles["classifier.weight"] == "readout" and roles["classifier.bias"] == "fixed"
    with pytest.raises(ValueError, match=r"'classifier.weight' is microsoft/mup's MuReadout"):
        abctorch.param_groups(_vit(MuReadout(D, 4 * D)), _spec(), rules=PATCH)  # the plain form: refused, as before


def test_a_model_with_an_input_layer_and_no_readout_is_said():
    backbone = _vit(None)
    with pytest.warns(UserWarning, match=r"no readout found: the model has an embedding or input layer "
                                         r"\('patch_embed.weight'\).*add a rule \(pattern, 'readout'\).*h @ W.T"):
        roles = _groups(backbone, _spec(), rules=PATCH)
    assert "readout" not in roles.values()
    # a top-level square matrix (a pooler, or a head of as many classes as the width) is named as a candidate
    pooled = _vit(nn.Linear(D, D))
    with pytest.warns(UserWarning, match=r"no readout found.*if its output layer is 'classifier.weight'.*"
                                         r"\(r'\^classifier\\\.weight\$', 'readout'\)"):
        abctorch.param_groups(pooled, _spec(), rules=PATCH)
    # tied: the readout is the embedding's other name, said by the tie's own warning only
    tied = _module(wte=nn.Embedding(1000, D), h=nn.ModuleList([nn.Linear(D, D) for _ in range(2)]),
                   lm_head=nn.Linear(D, 1000, bias=False))
    tied.lm_head.weight = tied.wte.weight
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        abctorch.param_groups(tied, _spec())
    assert not [w for w in got if "no readout found" in str(w.message)]
    assert [w for w in got if "are one tensor (tied)" in str(w.message)]


def _xattn(width: int, kdim: int, vdim: int) -> nn.Module:
    return _module(tok_emb=nn.Embedding(500, width),
                   layers=nn.ModuleList([nn.ModuleDict({"xattn": nn.MultiheadAttention(width, 4, kdim=kdim, vdim=vdim)})
                                         for _ in range(2)]),
                   lm_head=nn.Linear(width, 500))


@pytest.mark.parametrize("width", [D, 2 * D])
def test_cross_attention_on_a_context_of_another_size_asks_for_its_role(width):
    with pytest.raises(ValueError, match=r"'layers.0.xattn.k_proj_weight' \[\d+, 768\]: a projection of a context "
                                         r"of 768 features \(nn.MultiheadAttention's kdim=768.*'embedding'.*"
                                         r"'hidden'.*'layers.0.xattn.v_proj_weight'.*vdim=768"):
        abctorch.param_groups(_xattn(width, 768, 768), _spec(width=width))
    spec, m = _spec(width=width), _xattn(width, 768, 768)
    fixed = [(r"xattn\.[kv]_proj_weight$", "embedding")]
    roles = _groups(m, spec, rules=fixed)
    assert roles["layers.0.xattn.k_proj_weight"] == "embedding" and roles["layers.0.xattn.q_proj_weight"] == "hidden"
    drawn = abctorch.init_(m, spec, rules=fixed)  # an input layer on 768 features: x 768^-1/2
    assert drawn["layers.0.xattn.k_proj_weight"] == pytest.approx(spec.init_std("embedding") * 768**-0.5)
    grows = _xattn(width, 2 * width, 2 * width)  # a context that grows with the width: hidden, its fan-in 2x
    roles = _groups(grows, spec, rules=[(r"xattn\.[kv]_proj_weight$", "hidden")])
    assert roles["layers.1.xattn.v_proj_weight"] == "hidden (fan-in 2x width)"
    # self-attention (kdim = vdim = embed_dim) is one in_proj_weight, hidden as before
    assert _groups(_xattn(width, width, width), spec)["layers.0.xattn.in_proj_weight"] == "hidden"


@pytest.mark.parametrize("width", [64, D])
def test_bilinear_is_refused_unless_its_fan_in_is_given(width):
    def model() -> nn.Module:
        return _module(tok_emb=nn.Embedding(500, width), bil=nn.Bilinear(width, width, width),
                       lm_head=nn.Linear(width, 500))

    spec = _spec(width=width)
    with pytest.raises(ValueError, match=rf"'bil.weight' \[{width}, {width}, {width}\]: nn.Bilinear's weight "
                                         rf"\[out, in1, in2\].*fan_in=\{{'bil.weight': {width * width}\}}"):
        abctorch.param_groups(model(), spec)
    m = model()
    drawn = abctorch.init_(m, spec, fan_in={"bil.weight": width * width})
    assert drawn["bil.weight"] == pytest.approx(spec.init_std("hidden", width))  # 1/width: fan-in (in1 in2)^-1/2
    torch.manual_seed(0)
    nn.init.zeros_(m.bil.bias)
    out = m.bil(torch.randn(512, width), torch.randn(512, width)).std().item()
    assert out == pytest.approx(spec.init_std("hidden") * width**0.5, rel=0.1)  # the hidden std's O(1) output
    kept = abctorch.init_(model(), spec, rules=[(r"^bil\.weight$", "vector")])
    assert "bil.weight" not in kept


@pytest.mark.filterwarnings("ignore:abctorch.param_groups. the spec is in the mup form")
def test_the_mup_tables_in_and_get_agree_with_their_lookup_by_group_name():
    m = _module(wte=nn.Embedding(1000, D), fc1=nn.Linear(D, 4 * D), fc2=nn.Linear(4 * D, D),
                lm_head=nn.Linear(D, 1000))
    for optimizer in ("adam", "sgd"):
        spec = _spec(optimizer, form="mup")
        assert spec.mup is not None
        names = {g["name"] for g in abctorch.param_groups(m, spec)}
        assert "hidden (fan-in 4x width)" in names and "fixed" in names
        for table in (spec.mup.lr, spec.mup.init_std, *([spec.mup.epsilon] if spec.mup.epsilon else [])):
            for name in names:
                try:
                    want = table[name]
                except KeyError:
                    assert name not in table and table.get(name) is None and table.get(name, 7.0) == 7.0, name
                else:
                    assert name in table and table.get(name) == want, name
        k = "hidden (fan-in 4x width)"
        assert k in spec.mup.init_std and spec.mup.init_std.get(k) == spec.mup.init_std[k] == pytest.approx(
            spec.mup.init_std[Role.hidden] / 2)
        # the vector and fixed groups keep their init: no std (README)
        assert "vector" not in spec.mup.init_std and spec.mup.init_std.get("fixed") is None
        # by role, what the setup itself holds: under SGD the fixed group shares the vector one
        if optimizer == "sgd":
            assert Role.fixed not in spec.mup.lr and spec.mup.lr.get(Role.fixed) is None
            assert "fixed" in spec.mup.lr and spec.mup.lr.get("fixed") == spec.mup.lr[Role.vector]


def _resnet_like(c: int) -> nn.Module:
    return _module(stem=nn.Conv2d(3, c, 3), conv=nn.Conv2d(c, 2 * c, 3), conv2=nn.Conv2d(2 * c, 2 * c, 3),
                   fc=nn.Linear(2 * c, 10))


@pytest.mark.filterwarnings("ignore:abctorch.param_groups. the spec is in the mup form")
def test_a_readout_of_a_fan_in_2x_the_width_takes_the_ratio_as_a_hidden_matrix_does():
    c, rules = 64, [(r"^stem\.weight$", "embedding"), (r"^fc\.weight$", "readout")]
    spec = abcscale.recommend("mup", "adam", width=c, base_width=32, beta=1e-3, form="plain").groups
    m = _resnet_like(c)
    groups = {g["name"]: g for g in abctorch.param_groups(m, spec, rules=rules)}
    assert groups["readout (fan-in 2x width)"]["params"] == [m.fc.weight]
    assert groups["readout (fan-in 2x width)"]["lr"] == spec["readout"].lr
    drawn = abctorch.init_(m, spec, rules=rules)
    assert drawn["fc.weight"] == spec.init_std("readout", 2.0) == pytest.approx(1 / 128)
    # the mup form: its LR table reads the group; its std table has no entry (the readout's exponent is not there)
    mup = abcscale.recommend("mup", "adam", width=c, base_width=32, beta=1e-3, form="mup").groups
    assert mup.mup is not None
    names = {g["name"] for g in abctorch.param_groups(m, mup, rules=rules)}
    assert "readout (fan-in 2x width)" in names
    assert mup.mup.lr["readout (fan-in 2x width)"] == mup.mup.lr[Role.readout]
    assert "readout (fan-in 2x width)" not in mup.mup.init_std
    with pytest.raises(KeyError):
        mup.mup.init_std["readout (fan-in 2x width)"]


def test_init_says_a_tied_tensor_under_the_name_named_parameters_lists():
    """A tied model whose lm_head is declared before wte: named_parameters() lists the tensor as `lm_head.weight`;
    init_ said `wte.weight`, a name the model does not list (the draw itself, the embedding's std, was right)."""
    m = _module(lm_head=nn.Linear(D, 1000, bias=False), wte=nn.Embedding(1000, D),
                h=nn.ModuleList([nn.Linear(D, D) for _ in range(2)]))
    m.lm_head.weight = m.wte.weight
    spec = _spec()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawn = abctorch.init_(m, spec)
    listed = {n for n, _ in m.named_parameters()}
    assert set(drawn) <= listed and drawn["lm_head.weight"] == spec.init_std("embedding")
