"""A session-63 review's SP -> muP path in PyTorch: a GPT-2 model tuned at 256 with 0.02 on every matrix, imported
with `abcscale mup import --init-std 0.02,0.02,0.02 --json`.

- abctorch refused the import's document ("not a constants file from `abcscale tune`", 22 fields);
- abctorch.init_ drew mlp.c_proj (fan-in 4D) at 0.02 x 4^-1/2, unsaid, while the mup form's per-group std gave it
  0.02, so `mup.init.normal_(std=spec.mup.init_std[...])` and init_ disagreed by 2x.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import abcscale
from abcscale import torch as abctorch
from tests.torch.models import GPT, MupMLP

BASE, BETA, STD = 256, 3e-3, 0.02
C_PROJ = "transformer.h.0.mlp.c_proj.weight"


def _import(tmp_path: Path) -> Path:
    doc = abcscale.from_mup("adamw", base_width=BASE, lr=BETA, init_std=STD, weight_decay=0.1, epsilon=1e-8)
    path = tmp_path / "import.json"
    path.write_text(doc.model_dump_json(indent=2))
    return path


@pytest.mark.parametrize("width", [BASE, 512])
def test_param_groups_take_the_import_as_recommend_does(tmp_path, width):
    path = _import(tmp_path)
    want = abcscale.recommend(constants=str(path), width=width, form="multiplier_free").groups
    assert want is not None
    groups = abctorch.param_groups(GPT(width), path, width=width)
    assert {g["name"] for g in groups} >= {"embedding", "hidden", "hidden (fan-in 4x width)", "readout", "vector"}
    for g in groups:
        s = want[g["name"].split(" ")[0]]
        assert (g["lr"], g["eps"], g["weight_decay"]) == pytest.approx((s.lr, s.epsilon, s.weight_decay or 0.0),
                                                                       rel=1e-12), g["name"]
    if width == BASE:  # the tuned model's one LR and decay on every matrix
        mats = [g for g in groups if g["name"] in ("embedding", "hidden", "readout")]
        assert [x for g in mats for x in (g["lr"], g["weight_decay"])] == pytest.approx([BETA, 0.1] * len(mats))


def test_init_from_an_import_says_the_wide_fan_in_and_fan_in_keeps_the_models_std(tmp_path):
    path, width = _import(tmp_path), 512
    torch.manual_seed(0)
    model = GPT(width)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        drawn = abctorch.init_(model, path, width=width)
    said = [w for w in got if C_PROJ in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__, [str(w.message) for w in got]
    assert "fan_in=" in str(said[0].message) and "r^-1/2" in str(said[0].message)
    assert "transformer.h.0.attn.c_proj.weight" not in str(said[0].message)
    hidden = drawn["transformer.h.0.attn.c_proj.weight"]
    assert drawn[C_PROJ] == pytest.approx(hidden / 2, rel=1e-12)
    # the way the warning names: the model's own std on it (0.02 at the base width, mup's width_mult^-1/2 here)
    wide = {n: width for n, _ in model.named_parameters() if n.endswith("mlp.c_proj.weight")}
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        kept = abctorch.init_(model, path, width=width, fan_in=wide)
    assert not [w for w in got if "c_proj" in str(w.message)]
    assert kept[C_PROJ] == pytest.approx(hidden, rel=1e-12) == pytest.approx(STD * (width / BASE) ** -0.5)
    assert model.get_parameter(C_PROJ).std().item() == pytest.approx(hidden, rel=0.05)


def test_the_mup_forms_group_std_is_what_init_draws(tmp_path):
    """microsoft/mup's mup.init.normal_ given each param group's spec.mup.init_std draws what abctorch.init_ draws
    for the mup-form spec (it gave c_proj's group the hidden std: 2x)."""
    mup = pytest.importorskip("mup")
    width = 1024
    spec = abcscale.recommend(constants=str(_import(tmp_path)), width=width, form="mup").groups
    assert spec is not None and spec.mup is not None
    torch.manual_seed(0)
    ours = MupMLP(width, mup.MuReadout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MuReadout's multiplier, said by multipliers()
        want = abctorch.init_(ours, spec, form="mup")
        groups = abctorch.param_groups(ours, spec, form="mup")
    with torch.device("meta"):
        base, delta = MupMLP(BASE, mup.MuReadout), MupMLP(2 * BASE, mup.MuReadout)
    theirs = MupMLP(width, mup.MuReadout)
    mup.set_base_shapes(theirs, base, delta=delta)
    by_name = dict(theirs.named_parameters())
    ids = {id(p): n for n, p in ours.named_parameters()}
    measured = {}
    for g in groups:
        for p in g["params"]:
            name = ids[id(p)]
            if name in want:
                mup.init.normal_(by_name[name], std=spec.mup.init_std[g["name"]])
                measured[name] = by_name[name].std().item()
    assert "c_proj.weight" in measured and "c_fc.weight" in measured
    for name, std in measured.items():
        assert std == pytest.approx(want[name], rel=0.05), name
