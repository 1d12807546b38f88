"""Every recommendation carries its parameter groups (``groups``) in the requested form, with the caller's name
rules tried first; the forms are one answer (the symmetry's invariants agree); rules come from loose inputs and
files with errors naming the entry."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from abcscale import theory
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.api import AnalyticRecommend, FitRecommend
from abcscale.schemas.groups import ROLES, Form, GroupRule, GroupSpec, Role
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import DEFAULT_RULES, assign, group_spec, invariants
from abcscale.usecases import fit_sweep, recommend, recommend_request
from abcscale.usecases.recommend import parse_rules, read_rules

BASE = BaseConfig(width=256, beta=3e-3)


def _analytic(**kw) -> AnalyticRecommend:
    return AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                             "base": BASE, **kw})


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "mup"])
def test_analytic_groups_are_the_theory_spec_of_the_same_transfer(form):
    rec = recommend(_analytic(form=form))
    tr = theory.transfer("mup", "adam", BASE, 4096)
    assert rec.groups == group_spec(tr, form, DEFAULT_RULES)
    # the per-layer fields stay in the abc form whatever the groups' form
    assert rec.layers == tr.layers and rec.groups.form is Form(form)


def test_the_three_forms_are_one_answer():
    """The symmetry leaves forward scale, update, epsilon and decay unchanged: every form agrees on them."""
    base = BASE.model_copy(update={"weight_decay": 0.1})
    specs = {f: recommend(_analytic(optimizer="adamw", form=f, base=base)).groups for f in Form}
    for role in ROLES:
        want = invariants(specs[Form.abc][role], "adamw")
        for f in (Form.multiplier_free, Form.mup):
            got = invariants(specs[f][role], "adamw")
            assert got.keys() == want.keys() and [k for k, v in got.items() if v is None] == [
                k for k, v in want.items() if v is None], (f, role)
            assert {k: v for k, v in got.items() if v is not None} == pytest.approx(
                {k: v for k, v in want.items() if v is not None}, rel=1e-12), (f, role)
    assert all(s.multiplier is None for s in specs[Form.multiplier_free].roles)
    assert specs[Form.mup].mup is not None and specs[Form.abc].mup is None


def test_user_rules_are_tried_before_the_defaults():
    # by default `lm_head.weight` is the readout; a user's rule makes it (say, a tied weight) the embedding
    rules = [GroupRule(pattern=r"lm_head", role=Role.embedding)]
    spec = recommend(_analytic(rules=rules)).groups
    assert spec.rules == [*rules, *DEFAULT_RULES]
    assert assign("lm_head.weight", (50304, 4096), 4096, spec.rules)[0] is Role.embedding
    assert assign("lm_head.weight", (50304, 4096), 4096, DEFAULT_RULES)[0] is Role.readout


def test_fit_based_groups_follow_the_fitted_transfer(tmp_path):
    sweep = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                            group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"})
    fit = fit_sweep(sweep, None)
    req = FitRecommend(fit_id="local", width=2048, form="plain", rules=[{"pattern": "proj", "role": "hidden"}])
    rec = recommend(req, fit)
    assert rec.source == "fit" and rec.groups is not None
    want = group_spec(rec, Form.multiplier_free, [GroupRule(pattern="proj", role="hidden"), *DEFAULT_RULES])
    assert rec.groups.model_dump(exclude={"warnings"}) == want.model_dump(exclude={"warnings"})
    # multiplier-free: the update (lr * multiplier for Adam) is the abc layer's
    abc = rec.abc_setting("hidden")  # rec["hidden"] is refused in a form other than abc
    assert rec.groups["hidden"].lr * 1.0 == pytest.approx(abc.lr * abc.multiplier)


@pytest.mark.parametrize("given", [
    [{"pattern": "ln_", "role": "vector"}],
    [("ln_", "vector")],
    {"ln_": "vector"},
    {"rules": [{"pattern": "ln_", "role": "vec"}]},
    [GroupRule(pattern="ln_", role=Role.vector)],
])
def test_loose_rules_read_alike(given):
    assert parse_rules(given) == (GroupRule(pattern="ln_", role=Role.vector),)
    req = recommend_request(width=64, parameterization="mup", optimizer="adam", base_width=32, beta=1e-3,
                            rules=given, form="multiplier-free")
    assert req.rules == (GroupRule(pattern="ln_", role=Role.vector),) and req.form is Form.multiplier_free


@pytest.mark.parametrize("given, named", [
    ([{"pattern": "x", "role": "hidden"}, {"pattern": "(", "role": "hidden"}], "rules[1] (pattern)"),
    ([("x", "hiddn")], "rules[0] (role)"),
    (5, "rules: expected a list"),
])
def test_bad_rules_name_the_entry(given, named):
    with pytest.raises(ValidationError) as exc:
        recommend_request(width=64, parameterization="mup", optimizer="adam", base_width=32, beta=1e-3, rules=given)
    from abcscale.schemas.errors import validation_message

    assert named in validation_message(exc.value, {})


@pytest.mark.parametrize("suffix, text", [
    (".json", json.dumps([{"pattern": "wpe", "role": "embedding"}, {"pattern": "c_fc", "role": "hidden"}])),
    (".yaml", "- {pattern: wpe, role: embedding}\n- {pattern: c_fc, role: hidden}\n"),
    (".toml", '[[rules]]\npattern = "wpe"\nrole = "embedding"\n[[rules]]\npattern = "c_fc"\nrole = "hidden"\n'),
])
def test_rules_files(tmp_path, suffix, text):
    path = tmp_path / f"rules{suffix}"
    path.write_text(text)
    assert read_rules(path) == (GroupRule(pattern="wpe", role="embedding"), GroupRule(pattern="c_fc", role="hidden"))


@pytest.mark.parametrize("name, text, says", [
    ("r.json", "[{", "not valid JSON"),
    ("r.txt", "[]", "unknown format"),
    ("r.yaml", "- {pattern: x, role: bias_or_not}\n", "rules[0]: role"),
    ("missing.json", None, "cannot read"),
])
def test_bad_rules_files_name_the_file(tmp_path, name, text, says):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=r".*") as exc:
        read_rules(path)
    assert str(path) in str(exc.value) and says in str(exc.value)


def test_spec_json_round_trips():
    spec = recommend(_analytic(form="mup")).groups
    assert GroupSpec.model_validate_json(spec.model_dump_json()) == spec
