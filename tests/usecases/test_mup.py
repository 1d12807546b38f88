"""microsoft/mup in and out (issue 13 item 4): a mup setup as abcscale's constants, and back, equal."""

from __future__ import annotations

import pytest

import abcscale
from abcscale import theory
from abcscale.schemas.api import AnalyticRecommend, MupImportRequest
from abcscale.schemas.groups import ROLES, Role
from abcscale.schemas.theory import PerLayer
from abcscale.theory.groups import mup_setting
from abcscale.usecases.mup import mup_export, mup_import

BETA, BASE, WIDTH = 3e-3, 256, 4096
STDS = {"embedding": 1.0, "hidden": 1 / 16, "readout": 1 / 16}


def imported(optimizer: str, **kw) -> abcscale.MupImport:
    return mup_import(MupImportRequest(optimizer=optimizer, base_width=BASE, width=WIDTH, lr=BETA, init_std=STDS,
                                       epsilon=1e-8, **kw))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_import_gives_the_constants_for_base_256(optimizer):
    out = imported(optimizer)
    c = out.constants
    assert (c.width, c.beta) == (BASE, pytest.approx(BETA))
    assert c.multiplier == PerLayer(embedding=1 / 16, hidden=1.0, readout=16.0)
    assert c.init_scale == PerLayer(embedding=16.0, hidden=1.0, readout=1.0)
    assert c.gamma == PerLayer(embedding=1.0, hidden=1.0, readout=1.0)
    assert "--multiplier 0.0625,1,16 --init-scale 16,1,1" in out.command
    assert out.command.startswith(f"abcscale recommend -p mup -o {optimizer} --width {WIDTH} --base-width {BASE}")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_equivalent_recommendation_trains_like_the_mup_run(optimizer):
    out = imported(optimizer)
    rec = abcscale.recommend("mup", optimizer, width=WIDTH, base_width=BASE, beta=out.constants.beta,
                             constants=abcscale.Constants(**out.constants.model_dump(exclude={"width", "beta"})))
    actual = mup_setting(out.setup)
    for layer in rec.layers:  # the invariants: forward m * sigma, update m^k * lr
        k = theory.optimizer_rule(optimizer).k
        mine = actual[Role(layer.layer.value)]
        assert layer.multiplier * layer.init_std == pytest.approx(mine.multiplier * mine.init_std)
        assert layer.lr * layer.multiplier**k == pytest.approx(mine.lr * mine.multiplier**k)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_export_of_an_import_is_the_setup_again(optimizer):
    out = imported(optimizer)
    back = mup_export(out.recommend)
    assert back.setup.base_width == BASE and back.setup.width == WIDTH and back.setup.output_mult == 1.0
    assert back.setup.lr == pytest.approx(dict.fromkeys(ROLES, BETA))  # what MuAdam/MuSGD is given
    assert back.setup.init_std == pytest.approx({Role(k): v for k, v in STDS.items()})
    if optimizer == "adam":  # mup's one eps is abcscale's (constant) epsilon at the base width; at 4096 each
        # group's is the rule's, which the mup form's multipliers spread over the groups
        assert back.setup.epsilon == pytest.approx({r.role: r.epsilon for r in back.roles if r.role in ROLES})
        assert back.setup.epsilon[Role.hidden] == pytest.approx(1e-8)
        at_base = mup_export(out.recommend.model_copy(update={"width": BASE}))
        assert at_base.setup.epsilon == pytest.approx(dict.fromkeys(ROLES, 1e-8))
    else:
        assert back.setup.epsilon is None
    applied = {r.role: r.lr for r in back.roles}  # ground truth: what mup applies at 4096
    want = ({Role.hidden: BETA / 16} if optimizer == "adam" else
            {r: 16 * BETA for r in (Role.embedding, Role.readout, Role.vector)})
    # a fixed parameter (a readout's bias) shares the vector-like group, which MuSGD scales and it does not
    assert applied == pytest.approx({r: want.get(r, BETA) for r in (*ROLES, Role.fixed)})
    assert Role.fixed not in back.setup.lr  # one group for both: muP gives the fixed one its number unscaled
    assert next(r for r in back.roles if r.role is Role.readout).multiplier == pytest.approx(1 / 16)


def test_export_gives_each_group_its_epsilon():
    """MuAdam passes a param group's eps to Adam as given, so the export sets each group's: the largest for all
    (what it did) made the embedding's 256x the rule's here."""
    req = AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "adam", "width": WIDTH,
                                            "base": {"width": BASE, "beta": BETA}})
    out = mup_export(req)
    rule = {r.role: r.epsilon for r in out.roles}
    assert out.setup.epsilon == rule and len(set(rule.values())) > 1
    applied = mup_setting(out.setup)  # what a mup run applies at the width: the recommendation's
    assert {r: s.epsilon for r, s in applied.items()} == pytest.approx(rule)
    rec = abcscale.recommend("mup", "adam", width=WIDTH, base_width=BASE, beta=BETA)
    for layer in rec.layers:  # the invariant epsilon / m^k' against the abc form's
        mine, k = applied[Role(layer.layer.value)], theory.optimizer_rule("adam").k
        assert layer.epsilon / layer.multiplier**k == pytest.approx(mine.epsilon / mine.multiplier**k)
    assert any(f"hold at width {WIDTH}" in w for w in out.warnings)
    assert not any("the largest" in w for w in out.warnings)


def test_import_takes_per_group_epsilons_and_says_what_it_keeps():
    eps = {"embedding": 4e-11, "hidden": 6e-10, "readout": 1e-8, "vector": 6e-10}
    out = mup_import(MupImportRequest(optimizer="adam", base_width=BASE, width=WIDTH, lr=BETA, init_std=STDS,
                                      epsilon=eps))
    assert out.setup.epsilon == {Role(k): v for k, v in eps.items()}
    assert out.constants.epsilon == 6e-10  # the hidden group's: beta's
    assert any("the groups' differ" in w and "hidden group's (6e-10)" in w for w in out.warnings)
    same = mup_import(MupImportRequest(optimizer="adam", base_width=BASE, lr=BETA, epsilon=dict.fromkeys(eps, 1e-7)))
    assert same.constants.epsilon == 1e-7 and not any("the groups' differ" in w for w in same.warnings)
    with pytest.raises(ValueError, match="epsilon"):
        MupImportRequest(optimizer="adam", base_width=BASE, lr=BETA, epsilon={"hiden": 1e-8})
    with pytest.raises(ValueError, match="epsilon"):
        MupImportRequest(optimizer="adam", base_width=BASE, lr=BETA, epsilon=dict.fromkeys(eps, -1.0))


def test_a_muon_export_without_hidden_eps_imports_and_checks():
    """Muon's hidden groups have no eps, so the export's table has none: the import takes the vector-like group's
    (the same number the hidden one would be), and `check` reads the table (its eps said, not checked)."""
    import yaml
    from typer.testing import CliRunner

    from abcscale.cli import app

    out = mup_export(AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "muon",
                                                       "width": WIDTH, "base": {"width": BASE, "beta": BETA}}))
    eps = out.setup.epsilon
    assert Role.hidden not in eps and len(set(eps.values())) > 1
    back = mup_import(MupImportRequest(optimizer="muon", base_width=BASE, width=WIDTH, lr=BETA,
                                       epsilon={r.value: v for r, v in eps.items()}))
    assert back.constants.epsilon == eps[Role.vector]
    assert any("the vector group's" in w for w in back.warnings)
    cfg = {"optimizer": "muon", "width": WIDTH,
           "mup": {"base_width": BASE, "lr": {r.value: v for r, v in out.setup.lr.items()},
                   "init_std": {r.value: v for r, v in out.setup.init_std.items()},
                   "epsilon": {r.value: v for r, v in eps.items()}}}
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "run.yaml").write_text(yaml.safe_dump(cfg))
        res = CliRunner().invoke(app, ["check", str(Path(d) / "run.yaml"), "--json"])
    import json
    report = json.loads(res.stdout)
    assert res.exit_code == 0, res.output
    assert all(c["ratio"] == pytest.approx(1.0) for c in report["checks"]) and report["checks"]
    assert any("not checked" in w for w in report["warnings"])


def test_import_warns_where_mup_and_abcscale_differ():
    out = mup_import(MupImportRequest(optimizer="adam", base_width=BASE, lr={"embedding": 1e-3, "hidden": 1e-3,
                                                                            "readout": 1e-3, "vector": 2e-3}))
    text = " ".join(out.warnings)
    assert "init_std not given" in text and "vector-like" in text and "epsilon" in text
    assert out.setup.width == BASE  # no width: the base width


def test_python_api_from_mup_equals_the_use_case():
    api = abcscale.from_mup("adam", base_width=BASE, width=WIDTH, lr=BETA, init_std=STDS, epsilon=1e-8)
    assert api == imported("adam")
    assert "from_mup" in abcscale.__all__ and "MupImport" in abcscale.__all__
    with pytest.raises(ValueError, match="base_width") as exc:
        abcscale.from_mup("adam", base_width=0, lr=BETA)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="lr"):
        abcscale.from_mup("adam", base_width=BASE, lr={"embedding": 1e-3})


def test_export_of_a_default_mup_recommendation_says_what_mup_needs():
    req = AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "adam", "width": WIDTH,
                                            "base": {"width": BASE, "beta": BETA}})
    out = mup_export(req)
    # abcscale's default constants (multipliers 1) in mup's terms: MuAdam gets 16 beta on embedding ...
    assert out.setup.lr[Role.embedding] == pytest.approx(16 * BETA)
    assert out.setup.lr[Role.hidden] == pytest.approx(BETA)
