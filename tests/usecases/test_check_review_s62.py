"""Session 62, a PyTorch team's review of `check` with microsoft/mup (MuAdam, one lr per run, base shapes 128):

1. with a fit, a `mup:` table's per-role lrs were compared with their own ratios (a group given 10x passed, and
   the vector/fixed rows were compared with themselves);
2. a table's base width other than the fit's was mixed with it (readout 1.92x ok where microsoft/mup itself gives
   it 4x at the same lr);
3. the safe-side LR abcscale printed failed its own gate ("too low 0.45x");
4. `optimizer: MuAdam` was exit 2.
"""

from __future__ import annotations

import math

import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.enums import Optimizer
from abcscale.usecases.check import SAFE_SIDE, CheckConfig, compare, load_config, recommendation
from abcscale.usecases.config_map import ConfigError, ConfigMap

WIDTH = 8192
ROLES = ("embedding", "hidden", "readout", "vector", "fixed")


@pytest.fixture(scope="module")
def fit():
    """A MuAdam sweep's fit: one lr per run, width-independent (muP), optimum 2e-3, widths 128-1024."""
    table = synthetic_sweep((128, 256, 512, 1024), exponent=0.0, lr_base=2e-3, base_width=128, seeds=2,
                            group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"})
    return fit_table(table, n_boot=50)


def _cfg(lr, base_width=128, **extra) -> CheckConfig:
    mup = {"base_width": base_width, "lr": lr, "init_std": 0.02, "epsilon": 1e-8} | extra
    return CheckConfig.model_validate({"optimizer": "adam", "width": WIDTH, "mup": mup})


def _rows(report):
    return {c.layer.value: c for c in report.checks if c.setting == "lr"}


def _lr_star(cfg, fit):
    rec = recommendation(cfg, fit)
    assert rec.source == "fit" and rec.base_width == 128
    return rec, rec.beta


# --- 1. every role against the fit's one lr --------------------------------------------------------------------


@pytest.mark.parametrize("bumped", ["embedding", "vector"])
def test_a_group_given_10x_fails_against_the_fit(fit, bumped):
    rec, star = _lr_star(_cfg(2e-3), fit)
    lrs = dict.fromkeys(("embedding", "hidden", "readout", "vector"), star) | {bumped: 10 * star}
    cfg = _cfg(lrs)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    rows = _rows(report)
    assert not report.ok and report.exit_code == 1
    assert rows[bumped].verdict == "too high" and rows[bumped].ratio == pytest.approx(10, rel=1e-9)
    # the vector-like group carries the fixed role (the readout's bias): both off, both said
    off = {bumped} | ({"fixed"} if bumped == "vector" else set())
    assert {r for r, c in rows.items() if not c.ok} == off
    assert all(c.ratio == pytest.approx(1, rel=1e-9) for r, c in rows.items() if r not in off)
    assert any("one lr MuAdam gave every group in the fitted sweep" in w for w in report.warnings)


def test_one_lr_10x_fails_on_every_role_and_vector_rows_show_the_fit(fit):
    """The reviewer's train-8192-badlr.yaml: vector and fixed rows read "yours 0.02, recommended 0.02, 1x ok"."""
    _, star = _lr_star(_cfg(2e-3), fit)
    cfg = _cfg(10 * star)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    rows = _rows(report)
    assert set(rows) == set(ROLES)
    assert all(c.verdict == "too high" and c.ratio == pytest.approx(10, rel=1e-9) for c in rows.values())
    # what MuAdam applies, every group given the fit's LR: vector-like and fixed unscaled, hidden / width_mult
    assert rows["vector"].recommended == pytest.approx(star) and rows["fixed"].recommended == pytest.approx(star)
    assert rows["embedding"].recommended == pytest.approx(star)
    assert rows["hidden"].recommended == pytest.approx(star / (WIDTH / 128))


def test_the_fit_is_read_as_beta_is(fit):
    """The fit's LR with a mup table means what `beta` means (microsoft/mup's one lr): the same reference."""
    _, star = _lr_star(_cfg(2e-3), fit)
    lrs = {"embedding": 3 * star, "hidden": star, "readout": star / 3, "vector": 1.5 * star}
    with_fit = _cfg(lrs)
    by_fit = _rows(compare(with_fit, recommendation(with_fit, fit), config_name="c"))
    with_beta = CheckConfig.model_validate(with_fit.model_dump(exclude_unset=True) | {"beta": star})
    by_beta = _rows(compare(with_beta, recommendation(with_beta), config_name="c"))
    for role in ROLES:
        assert by_fit[role].recommended == pytest.approx(by_beta[role].recommended, rel=1e-9), role
        assert by_fit[role].verdict == by_beta[role].verdict, role


def test_the_matching_table_passes_and_init_is_said_unchecked(fit):
    rec, star = _lr_star(_cfg(2e-3), fit)
    cfg = _cfg(star)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    assert report.ok and all(c.ratio == pytest.approx(1, rel=1e-9) for c in _rows(report).values())
    assert any(w.startswith("a fit gives the LR alone") for w in report.warnings)


def test_beta_beside_a_fit_is_said_unused(fit):
    _, star = _lr_star(_cfg(2e-3), fit)
    cfg = CheckConfig.model_validate({"optimizer": "adam", "width": WIDTH, "beta": 10 * star,
                                      "mup": {"base_width": 128, "lr": star}})
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    assert report.ok  # the fit is the reference, not the beta beside it
    assert any(w.startswith("beta: not used with a fit") for w in report.warnings)


# --- 2. the table's base width against the fit's -------------------------------------------------------------


def test_base_width_512_against_a_base_128_fit_is_microsoft_mups_arithmetic(fit):
    """mup_base_ratio.txt: base 128 -> 512 at the same lr keeps the embedding's lr, multiplies the hidden lr and
    MuReadout's 1/width_mult by 4. So the readout is 4x too high, as the hidden layer is; both base widths said."""
    _, star = _lr_star(_cfg(2e-3), fit)
    cfg = _cfg(star, base_width=512)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    rows = _rows(report)
    assert rows["embedding"].ratio == pytest.approx(1, rel=1e-9) and rows["embedding"].ok
    assert rows["hidden"].ratio == pytest.approx(4, rel=1e-9) and rows["hidden"].verdict == "too high"
    assert rows["readout"].ratio == pytest.approx(4, rel=1e-9) and rows["readout"].verdict == "too high"
    assert rows["vector"].ratio == pytest.approx(1, rel=1e-9)
    note = next(w for w in report.warnings if w.startswith("mup.base_width 512 differs"))
    assert "the fit's base width 128" in note


def test_base_width_512_with_its_lrs_rescaled_passes(fit):
    """At base 512 the hidden group and the readout given lr / 4 get the updates MuAdam applied in the fit's base-128
    runs: every LR row 1x. The comparison is on what microsoft/mup applies, not on the table's numbers."""
    _, star = _lr_star(_cfg(2e-3), fit)
    cfg = _cfg({"embedding": star, "hidden": star / 4, "readout": star / 4, "vector": star}, base_width=512)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    assert report.ok, report.failed
    assert all(c.ratio == pytest.approx(1, rel=1e-9) for c in _rows(report).values())


def test_output_mult_and_init_are_the_tables_and_said(fit):
    """A fit holds neither: the table's are taken as the fitted runs', and a note says they are not checked."""
    _, star = _lr_star(_cfg(2e-3), fit)
    cfg = _cfg(star, output_mult=4.0)
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    assert report.ok and all(c.ratio == pytest.approx(1, rel=1e-9) for c in _rows(report).values())
    note = next(w for w in report.warnings if w.startswith("a fit gives the LR alone"))
    assert "output_mult" in note and "init" in note


# --- 3. the fit's safe side -----------------------------------------------------------------------------------


def _with_safe(rec, factor):
    """``rec`` with its band's safe-side LR at ``factor`` x LR* (the reviewer's fit: 0.45)."""
    return rec.model_copy(update={"band": rec.band.model_copy(update={
        "safe_lr": factor * rec.band.lr, "ci95": (factor * rec.band.lr, rec.band.ci95[1])})})


def test_the_printed_safe_side_lr_passes_and_says_so(fit):
    rec, star = _lr_star(_cfg(2e-3), fit)
    safe = 0.45 * star
    printed = float(f"{safe:.4g}")  # what `recommend` and the safe-side warning print
    cfg = _cfg(printed)
    report = compare(cfg, _with_safe(recommendation(cfg, fit), 0.45), config_name="c")
    rows = _rows(report)
    assert report.ok and report.exit_code == 0 and report.failed == []
    assert all(c.ok and c.verdict == SAFE_SIDE for c in rows.values())
    note = next(w for w in report.warnings if "passed as the fit's safe side" in w)
    assert f"{safe:.4g}" in note
    # not also "outside the fit's 95% band, the fit puts the optimum elsewhere"
    assert not any("outside the fit's 95% band" in w for w in report.warnings)
    # JSON says it the same way
    dumped = report.model_dump(mode="json")
    assert {c["verdict"] for c in dumped["checks"] if c["setting"] == "lr"} == {SAFE_SIDE}


def test_below_the_safe_side_still_fails_and_the_high_side_is_the_tolerances(fit):
    rec, star = _lr_star(_cfg(2e-3), fit)
    low = _cfg(0.45 * star * 0.99)  # 1% below the safe side: past the rounding slack
    report = compare(low, _with_safe(recommendation(low, fit), 0.45), config_name="c")
    assert not report.ok and all(c.verdict == "too low" for c in _rows(report).values())
    high = _cfg(star / 0.45)  # the mirror image above LR*: the tolerance's (2x), not widened
    report = compare(high, _with_safe(recommendation(high, fit), 0.45), config_name="c")
    assert not report.ok and all(c.verdict == "too high" for c in _rows(report).values())
    inside = _cfg(0.6 * star)  # inside the tolerance: a plain ok, not the safe side's
    report = compare(inside, _with_safe(recommendation(inside, fit), 0.45), config_name="c")
    assert report.ok and all(c.verdict == "ok" for c in _rows(report).values())


def test_the_safe_side_of_the_real_fit_with_a_tight_tolerance(fit):
    """The fit's own band (no edit): with --tolerance 1.01 its safe side lies below 1/tol and passes."""
    rec, star = _lr_star(_cfg(2e-3), fit)
    assert rec.band.safe_lr < star / 1.01
    cfg = _cfg(rec.band.safe_lr)
    report = compare(cfg, recommendation(cfg, fit), config_name="c", lr_tolerance=1.01)
    assert report.ok and {c.verdict for c in _rows(report).values()} == {SAFE_SIDE}


def test_the_safe_side_for_an_abc_config_too(fit):
    """Not a mup table's alone: any config checked against a fit passes at its safe side; theory's has none."""
    cfg = CheckConfig.model_validate({"parameterization": "mup", "optimizer": "adam", "width": WIDTH,
                                      "lr": {"hidden": 1.0}})
    rec = _with_safe(recommendation(cfg, fit), 0.45)
    hidden = next(s.lr for s in rec.layers if s.layer.value == "hidden")
    cfg = cfg.model_copy(update={"lr": cfg.lr.model_copy(update={"hidden": 0.4501 * hidden})})
    report = compare(cfg, rec, config_name="c")
    assert report.ok and _rows(report)["hidden"].verdict == SAFE_SIDE
    # theory has no band: 0.45x its LR stays too low
    cfg = CheckConfig.model_validate({"parameterization": "mup", "optimizer": "adam", "width": 1024,
                                      "base_width": 256, "beta": 3e-3, "lr": {"hidden": 0.45 * 3e-3 / 4},
                                      "form": "abc"})
    report = compare(cfg, recommendation(cfg), config_name="c")
    assert not report.ok and _rows(report)["hidden"].verdict == "too low"


# --- 4. microsoft/mup's optimizer names ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "base"), [("MuAdam", Optimizer.adam), ("muadamw", Optimizer.adamw),
                                            ("MUSGD", Optimizer.sgd), ("mup.optim.MuAdam", Optimizer.adam),
                                            ("Mu_AdamW", Optimizer.adamw)])
def test_mup_optimizer_names_are_their_base_optimizer(name, base):
    cfg = CheckConfig.model_validate({"optimizer": name, "width": WIDTH, "mup": {"base_width": 128, "lr": 2e-3},
                                      "beta": 2e-3})
    assert cfg.optimizer is base and cfg._mu_optimizer == name
    report = compare(cfg, recommendation(cfg), config_name="c")
    assert report.ok, report.failed
    assert not any(w.startswith("optimizer:") for w in report.warnings)  # a mup table: nothing to add


def test_a_mapped_muadam_reads(tmp_path):
    """A Hydra config's optimizer.name: MuAdam, mapped: exit 2 "Input should be 'sgd', 'adam', ..." before."""
    path = tmp_path / "train.yaml"
    path.write_text("model: {d_model: 8192}\nmup: {base_width: 128}\noptimizer: {name: MuAdam, lr: 2.0e-3}\n")
    cmap = ConfigMap(paths={"width": "model.d_model", "mup.base_width": "mup.base_width", "mup.lr": "optimizer.lr",
                            "optimizer": "optimizer.name"}, values={"beta": 2e-3})
    cfg = load_config(path, cmap)
    assert cfg.optimizer is Optimizer.adam and cfg.mup is not None and math.isclose(cfg.mup.lr, 2e-3)
    # another name is still exit 2, naming the mapped key
    path.write_text(path.read_text().replace("MuAdam", "MuAdamX"))
    with pytest.raises(ConfigError) as exc:
        load_config(path, cmap)
    assert exc.value.problems[0][0].startswith("optimizer")


def test_a_muadam_name_without_a_mup_table_is_said():
    cfg = CheckConfig.model_validate({"parameterization": "mup", "optimizer": "MuAdam", "width": 1024,
                                      "base_width": 256, "beta": 3e-3, "lr": 3e-3})
    report = compare(cfg, recommendation(cfg), config_name="c")
    assert any(w.startswith("optimizer: MuAdam is read as adam") and "`mup:` table" in w for w in report.warnings)
