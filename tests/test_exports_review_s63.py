"""A session-63 review of the exports on the SP -> muP path (GPT-2 tuned at 256 with one std, 0.02, on every matrix):

- `abcscale mup import --json`'s document, which `recommend --constants` takes, was refused by the exports as "not
  a constants file from `abcscale tune`" with 22 fields;
- a hidden matrix of fan-in 4 x the width (mlp.c_proj) was drawn at half the imported hidden std, unsaid, and the mup
  form's per-group stds gave it the hidden std itself (2x what the exports draw);
- abcscale.optax's warnings pointed at abcscale's own line, and named PyTorch's API (abctorch.multipliers,
  MuReadout) to JAX users.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pytest

import abcscale
from abcscale.schemas.groups import Role
from abcscale.usecases.snippets import fallback

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
abcoptax = pytest.importorskip("abcscale.optax")

BASE, BETA, STD = 256, 3e-3, 0.02
C_PROJ = "h_0/mlp/c_proj/kernel"


def _import(tmp_path: Path, **kw) -> Path:
    """`abcscale mup import -o adamw --base-width 256 --lr 3e-3 --init-std 0.02,0.02,0.02 --weight-decay 0.1 --json`
    (the API's from_mup writes the same document)."""
    doc = abcscale.from_mup("adamw", base_width=BASE, lr=BETA, init_std=STD, weight_decay=0.1, epsilon=1e-8, **kw)
    path = tmp_path / "import.json"
    path.write_text(doc.model_dump_json(indent=2))
    return path


def _tree(d: int) -> dict:
    """A GPT-2 block as a flax-style tree: kernels [in, out], c_proj's fan-in 4D."""
    z = jnp.zeros
    return {"wte": {"embedding": z((96, d))},
            "h_0": {"ln_1": {"scale": jnp.ones(d)},
                    "attn": {"c_attn": {"kernel": z((d, 3 * d))}, "c_proj": {"kernel": z((d, d))}},
                    "mlp": {"c_fc": {"kernel": z((d, 4 * d)), "bias": z(4 * d)}, "c_proj": {"kernel": z((4 * d, d))}}},
            "lm_head": {"kernel": z((d, 96))}}


def _flat(tree) -> dict[str, object]:
    with_path = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): v for path, v in with_path}


@pytest.mark.parametrize("form", [None, "abc", "mup"])
def test_the_exports_take_a_mup_import_document_as_recommend_does(tmp_path, form):
    path, width = _import(tmp_path), 1024
    params = _tree(width)
    want = abcscale.recommend(constants=str(path), width=width, form=form or "multiplier_free").groups
    assert want is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the form's and the wide fan-in's warnings: their own tests below
        roles = _flat(abcoptax.labels(path, params, width=width, form=form))
        lrs = _flat(abcoptax.lr_tree(str(path), params, width=width, form=form))
        stds = _flat(abcoptax.init_std_tree(path, params, width=width, form=form))
        mults = _flat(abcoptax.multiplier_tree(path, params, width=width, form=form))
        abcoptax.transform(path, params, width=width, form=form)
    assert roles[C_PROJ] == "hidden" and roles["lm_head/kernel"] == "readout"
    for name, role in roles.items():
        s = want[role]
        assert lrs[name] == pytest.approx(s.lr, rel=1e-12), name
        assert mults[name] == pytest.approx(s.multiplier or 1.0, rel=1e-12), name
        if s.init_std is not None and role != "hidden":
            assert stds[name] == pytest.approx(s.init_std, rel=1e-12), name
    assert stds["h_0/attn/c_proj/kernel"] == pytest.approx(want["hidden"].init_std, rel=1e-12)
    assert stds[C_PROJ] == pytest.approx(want.init_std("hidden", 4.0), rel=1e-12)
    # and the numbers are the import's, not abcscale's default constants: every matrix at beta at the base width
    at_base = _flat(abcoptax.lr_tree(path, _tree(BASE), width=BASE))
    assert [at_base[k] for k in ("wte/embedding", C_PROJ, "lm_head/kernel")] == pytest.approx([BETA] * 3)


def test_a_constants_object_without_its_setup_is_one_line_saying_what_to_give(tmp_path):
    path = tmp_path / "constants.json"  # mup import's `constants` alone: no parameterization nor optimizer
    path.write_text(json.dumps({"gamma": {"embedding": 1.0, "hidden": 1.0, "readout": 1.0}, "width": BASE,
                                "beta": BETA}))
    with pytest.raises(ValueError) as err:
        abcoptax.lr_tree(path, _tree(512), width=512)
    said = str(err.value)
    assert "\n" not in said and len(said) < 500 and "Field required" not in said
    assert "parameterization" in said and "optimizer" in said and "mup import --json" in said
    # what it says to do works
    spec = abcscale.recommend("mup", "adamw", constants=str(path), width=512, form="multiplier_free").groups
    assert _flat(abcoptax.lr_tree(spec, _tree(512)))[C_PROJ] == pytest.approx(spec["hidden"].lr)


def test_a_file_of_no_kind_is_one_line_naming_the_kinds(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"learning_rate": 3e-3, "d_model": 256}))
    with pytest.raises(ValueError) as err:
        abcoptax.lr_tree(path, _tree(512), width=512)
    said = str(err.value)
    assert "\n" not in said and "Field required" not in said and "Extra inputs" not in said
    assert all(kind in said for kind in ("abcscale tune", "mup import --json", "recommend --format json"))


def test_a_broken_tune_file_still_names_its_fields(tmp_path):
    """A file that says it is tune's (its kind) keeps the fields it lacks: they are what to fix."""
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"kind": "abcscale.tuned-constants", "parameterization": "mup"}))
    with pytest.raises(ValueError, match="not a constants file from `abcscale tune` .*optimizer: Field required"):
        abcoptax.lr_tree(path, _tree(512), width=512)


def test_a_wide_fan_in_drawn_from_an_import_is_said_with_the_way_to_keep_its_std(tmp_path):
    path, width = _import(tmp_path), 512
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        stds = _flat(abcoptax.init_std_tree(path, _tree(width), width=width))
    said = [str(w.message) for w in got if C_PROJ in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    assert "fan_in=" in said[0] and "r^-1/2" in said[0] and f"{STD:.4g}" in said[0]
    assert "h_0/attn/c_proj/kernel" not in said[0]  # fan-in = the width: drawn at the hidden std itself
    assert all(w.filename == __file__ for w in got if C_PROJ in str(w.message))
    hidden = stds["h_0/attn/c_proj/kernel"]
    assert stds[C_PROJ] == pytest.approx(hidden / 2, rel=1e-12)
    # the way it names keeps the model's own std (the hidden one) and is quiet
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        kept = _flat(abcoptax.init_std_tree(path, _tree(width), width=width, fan_in={C_PROJ: width}))
        drawn = _flat(abcoptax.init(path, _tree(width), jax.random.key(0), width=width, fan_in={C_PROJ: width}))
    assert kept[C_PROJ] == pytest.approx(hidden, rel=1e-12)
    assert float(jnp.std(drawn[C_PROJ])) == pytest.approx(hidden, rel=0.05)
    assert not [w for w in got if C_PROJ in str(w.message)]
    # abcscale's own spec (not an import) draws it by its rule, unsaid
    spec = abcscale.recommend(constants=str(path), width=width, form="multiplier_free").groups
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        abcoptax.init_std_tree(spec, _tree(width))
    assert not [w for w in got if C_PROJ in str(w.message)]


def test_mup_import_says_what_a_wide_fan_in_gets():
    out = abcscale.from_mup("adamw", base_width=BASE, lr=BETA, init_std=STD)
    said = [w for w in out.warnings if w.startswith("init_std:")]
    assert len(said) == 1 and "r^-1/2" in said[0] and "fan_in=" in said[0] and f"{STD / 2:g}" in said[0]
    assert not any(w.startswith("init_std: the hidden") for w in abcscale.from_mup("adamw", base_width=BASE,
                                                                                  lr=BETA).warnings)


@pytest.mark.parametrize("width", [BASE, 2048])
def test_the_mup_forms_stds_are_what_the_exports_draw_per_fan_in(tmp_path, width):
    """spec.mup.init_std per param group, times mup.init's width_mult^-1/2 on a matrix, is the std init draws: the
    group at fan-in 4x took the hidden std itself (2x), and the snippet's comment gave one hidden std."""
    spec = abcscale.recommend(constants=str(_import(tmp_path)), width=width, form="mup").groups
    assert spec is not None and spec.mup is not None
    stds = _flat(abcoptax.init_std_tree(spec, _tree(width), form="mup"))
    wm = width / BASE
    for name, group in ((C_PROJ, "hidden (fan-in 4x width)"), ("h_0/attn/c_proj/kernel", "hidden")):
        assert spec.mup.init_std[group] * wm**-0.5 == pytest.approx(stds[name], rel=1e-12), group
    assert spec.mup.init_std["hidden (fan-in 4x width)"] == pytest.approx(STD / 2, rel=1e-12)
    assert spec.mup.lr["hidden (fan-in 4x width)"] == spec.mup.lr[Role.hidden]  # MuAdam scales each tensor's own
    text = "\n".join(fallback(spec, "torch"))
    line = next(x for x in text.splitlines() if "mup.init stds" in x)
    assert "r^-1/2" in line and f"{STD / 2:.6g} for an MLP's 4D -> D projection" in line


def _warned(call) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        call()
    return list(got)


def test_optax_warnings_point_at_the_callers_line():
    """They were all at abcscale/optax.py's `_run` (one location: under the default filter a second tree's
    warning was said only where its text differed)."""
    spec = abcscale.recommend("mup", "adamw", width=512, base_width=BASE, beta=BETA, form="multiplier_free").groups
    tied = _tree(512)
    del tied["lm_head"]
    calls = [lambda: abcoptax.labels(spec, _tree(512), rules=[("c_prj", "hidden")]),  # a rule that matches nothing
             lambda: abcoptax.lr_tree(spec, tied),  # no readout: the tied-logits multiplier
             lambda: abcoptax.transform(spec, tied),
             lambda: abcoptax.init(spec, tied, jax.random.key(0))]
    for call in calls:
        got = _warned(call)
        assert got, call
        assert {w.filename for w in got} == {__file__}, [(w.filename, w.lineno, str(w.message)[:60]) for w in got]


@pytest.mark.parametrize("form", ["abc", "mup"])
def test_optax_names_its_own_api_for_the_multipliers(form):
    spec = abcscale.recommend("mup", "adamw", width=1024, base_width=BASE, beta=BETA, form=form).groups
    for call in (lambda: abcoptax.lr_tree(spec, _tree(1024)), lambda: abcoptax.init_std_tree(spec, _tree(1024)),
                 lambda: abcoptax.transform(spec, _tree(1024)),
                 lambda: abcoptax.init(spec, _tree(1024), jax.random.key(0))):
        said = [w for w in _warned(call) if "form, whose LRs and init stds assume" in str(w.message)]
        assert len(said) == 1
        text = str(said[0].message)
        assert "abcoptax.multiplier_tree" in text and "abctorch" not in text
        assert "use it as the readout" not in text  # MuReadout is PyTorch's
        assert said[0].filename == __file__
        if form == "mup":
            m = spec["readout"].multiplier
            assert m is not None and re.search(rf"readout {m:.4g}", text) and "apply function" in text
    # multiplier_tree says what to multiply: no warning
    assert not [w for w in _warned(lambda: abcoptax.multiplier_tree(spec, _tree(1024)))
                if "assume" in str(w.message)]
    assert math.isclose(_flat(abcoptax.multiplier_tree(spec, _tree(1024)))["lm_head/kernel"],
                        spec["readout"].multiplier or 1.0)


# --- session 83 ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["a{99999999999}", "(" * 100_000 + ")" * 100_000])
def test_a_pattern_python_cannot_compile_is_refused_like_any_bad_one(pattern):
    # OverflowError (a repeat count past C's) and RecursionError were tracebacks, every other bad pattern a message
    from pydantic import ValidationError

    from abcscale.schemas.groups import GroupRule

    with pytest.raises(ValidationError, match="not a regular expression Python can compile"):
        GroupRule(pattern=pattern, role="vector")


def test_the_snippets_comment_says_what_a_vector_rule_takes():
    # it said "a vector rule takes 1-D tensors only" while its code put a matched matrix in the vector group
    from abcscale.schemas.groups import GroupRule
    from abcscale.theory.groups import named_role

    rules = [GroupRule(pattern="wte", role="vector"), GroupRule(pattern="wte", role="embedding")]
    assert named_role("wte.weight", (50, 128), rules) is Role.vector  # a matrix: the vector rule takes it
    matrix_first = [GroupRule(pattern="ln", role="hidden"), GroupRule(pattern="ln", role="vector")]
    assert named_role("ln.weight", (128,), matrix_first) is Role.vector  # a 1-D match of a matrix role goes on
    rec = abcscale.recommend("mup", "adam", width=128, base_width=32, beta=1e-2, rules=[rules[0]])
    text = "\n".join(fallback(rec.groups, "torch"))
    assert "a vector or fixed rule takes any shape" in text and "takes 1-D tensors only" not in text


@pytest.mark.parametrize(("rules", "dead"), [
    ([("lm_head", "readout"), ("lm_head", "embedding")], True),
    ([("wte", "vector"), ("wte", "embedding")], True),
    ([("ln", "hidden"), ("ln", "vector")], False),  # the matrices hidden, the 1-D ones vector: both apply
    ([("x", "readout"), ("x", "readout")], False),  # the same rule twice: harmless
])
def test_a_rule_an_earlier_one_of_its_pattern_shadows_is_refused(rules, dead):
    # the first match wins: `lm_head` -> embedding after `lm_head` -> readout never applied, unsaid (a review)
    from abcscale.usecases.recommend import parse_rules

    if dead:
        with pytest.raises(ValueError, match=r"the pattern .* of rules\[1\] is rules\[0\]'s.* never applies: drop one"):
            parse_rules(rules)
        with pytest.raises(ValueError, match=r"^rules: the pattern .* of rules\[1\] is rules\[0\]'s"):
            abcscale.recommend("mup", "adam", width=128, base_width=32, beta=1e-2, rules=rules)
    else:
        assert len(parse_rules(rules)) == 2
