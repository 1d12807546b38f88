"""A review of the CLI as a CI gate (session 65): what `predict` and `fit` call LR* for a per-layer group (beta, not a
layer's LR), `beta` from a global fit (the target width's LR beside the base width), the verdict in every gate's
JSON (`ok`, `exit_code`, `failed`), one report shape for exit 1, `fit --expect-theory`'s reason for a group theory
has no exponent for, `sweep --json`'s grid-edge flag, and an implausible width said by the analytic transfer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "examples" / "tour-sweep.parquet"
runner = CliRunner()
PER_LAYER = "parameterization=mup,lr_mode=per_layer"
GLOBAL = "parameterization=mup,lr_mode=global"


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _json(*args: str, code: int = 0) -> dict:
    res = _run(*args, "--json")
    assert res.exit_code == code, res.output
    return json.loads(res.stdout)


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> str:
    """The reviewer's fit: the tour's table, predicted at width 1024 (widths 32-128)."""
    out = tmp_path_factory.mktemp("tour")
    res = _run("fit", TOUR, "--out", out, "--target-width", "1024", "--n-boot", "200", "-q")
    assert res.exit_code == 0, res.output
    return str(out / "fit.json")


@pytest.fixture(scope="module")
def no_law(tmp_path_factory) -> dict[str, str]:
    """A fit whose sp group was swept at one width (no law across widths), and a config for that group."""
    from abcscale.fitting.synthetic import synthetic_sweep

    d = tmp_path_factory.mktemp("nolaw")
    setup = {"optimizer": "adam", "lr_mode": "per_layer"}
    table = pd.concat([synthetic_sweep((64, 128, 256), exponent=0.0, seeds=1, group={"parameterization": "mup",
                                                                                      **setup}),
                       synthetic_sweep((64,), exponent=0.0, seeds=1, group={"parameterization": "sp", **setup})])
    (d / "t.csv").write_text(table.to_csv(index=False))
    res = _run("fit", d / "t.csv", "--out", d / "fit", "--n-boot", "50", "-q")
    assert res.exit_code == 0, res.output
    cfg = d / "run.yaml"
    cfg.write_text("parameterization: sp\noptimizer: adam\nlr_mode: per_layer\nwidth: 4096\n"
                   "lr: {embedding: 0.001, hidden: 0.001, readout: 0.001}\n")
    return {"fit": str(d / "fit" / "fit.json"), "config": str(cfg)}


# --- 1. a per-layer group's LR* is beta: said, with the layers' LRs ---------------------------------------------


def test_predict_and_fit_say_a_per_layer_groups_lr_is_beta_and_print_its_layer_lrs(tour, tmp_path):
    doc = _json("predict", tour, "--size", "1024", "--group", PER_LAYER)
    p = doc["prediction"]
    lrs = {s["layer"]: s["lr"] for s in p["layers"]}
    assert lrs["hidden"] < p["lr"] / 10  # the reviewer's: beta 0.0227, hidden 0.000709
    spread = ", ".join(f"{layer} {lrs[layer]:.4g}" for layer in ("embedding", "hidden", "readout"))
    said = _words(_run("predict", tour, "--size", "1024", "--group", PER_LAYER).stdout)
    assert f"LR* at width 1024: beta (base LR) {p['lr']:.4g}" in said, said
    assert "LR* here is beta, the per-layer sweep's base LR" in said and "not a layer's LR" in said
    assert f"the layers' LRs at width 1024: {spread}" in said, said
    # a global group's LR* is every layer's LR: nothing more to say
    plain = _words(_run("predict", tour, "--size", "1024", "--group", GLOBAL).stdout)
    assert "beta" not in plain and "the layers' LRs" not in plain
    # fit's own prediction line, and its --summary
    fitted = _words(_run("fit", TOUR, "--target-width", "1024", "--n-boot", "200", "-q").stdout)
    assert "LR* here is beta, the per-layer sweep's base LR (each layer's LR is beta x its gamma x " \
           f"(width/base)^-c), not a layer's LR; the layers' LRs at width 1024: {spread}" in fitted, fitted
    summary = _words(_run("fit", TOUR, "--target-width", "1024", "--n-boot", "200", "-q", "--summary").stdout)
    assert f"at width 1024: LR* beta (base LR) {p['lr']:.4g}, 95% [" in summary
    assert f"; layer LRs {spread}" in summary, summary


# --- 2. beta from a fit is the base width's LR, whatever the mode ----------------------------------------------------


@pytest.mark.parametrize("group", [GLOBAL, PER_LAYER])
def test_beta_from_a_fit_with_its_base_width_gives_the_fits_own_layer_lrs(tour, group, tmp_path):
    rec = _json("recommend", "--fit", tour, "-n", "1024", "--group", group)
    mode = rec["lr_mode"]
    lrs = [s["lr"] for s in rec["layers"]]
    # the analytic transfer from that beta at that base width: the same layer LRs (a global fit's beta was the
    # target width's LR: 0.00425 beside base width 32 gave 0.000133, 32x off)
    again = _json("recommend", "-p", "mup", "-o", "adam", "--lr-mode", mode, "-n", "1024", "--base-width",
                  rec["base_width"], "--base-lr", repr(rec["beta"]), "--gamma", "1,1,1")
    assert [s["lr"] for s in again["layers"]] == pytest.approx(lrs, rel=1e-9)
    assert rec["band"]["lr"] == rec["band"]["base_lr"]  # the band is the fitted LR at the target, as before
    if mode == "global":
        assert rec["beta"] == pytest.approx(rec["band"]["lr"] * (1024 / rec["base_width"]) ** rec["global_c"])
        assert rec["beta"] > 10 * lrs[0]
        text = _words(_run("recommend", "--fit", tour, "-n", "1024", "--group", group).stdout)
        assert f"fitted global LR at width 1024: {rec['band']['lr']:.4g}" in text
        assert f"beta {rec['beta']:.4g}: that LR at the base width {rec['base_width']}" in text
    else:
        assert rec["beta"] == rec["band"]["lr"]
    # a check config copying the fit's beta and base_width with its LR passes against theory alone
    cfg = tmp_path / "c.yaml"
    lr = lrs[0] if mode == "global" else "{" + ", ".join(f"{s['layer']}: {s['lr']!r}" for s in rec["layers"]) + "}"
    cfg.write_text(f"parameterization: mup\noptimizer: adam\nlr_mode: {mode}\nwidth: 1024\n"
                   f"base_width: {rec['base_width']}\nbeta: {rec['beta']!r}\nlr: {lr}\n")
    report = _json("check", cfg)
    assert report["ok"] and all(c["ratio"] == pytest.approx(1.0) for c in report["checks"] if c["setting"] == "lr")


# --- 3. the verdict in every gate's JSON -------------------------------------------------------------------------


def test_predict_recommend_and_fit_json_carry_the_gates_verdict(tour):
    passing = {"ok": True, "exit_code": 0, "failed": []}
    doc = _json("predict", tour, "--size", "1024", "--group", PER_LAYER)
    assert {k: doc[k] for k in passing} == passing and doc["prediction"] is not None
    assert list(doc)[:3] == ["ok", "exit_code", "failed"]
    # 1e6 is 7812x past the widths: unreliable, which --strict fails
    far = ["--group", PER_LAYER, "--strict"]
    doc = _json("predict", tour, "--size", "1e6", *far, code=1)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["prediction"] is not None
    assert doc["failed"] and all(f.startswith("--strict: unreliable: ") for f in doc["failed"])
    assert any("a zero too many?" in f for f in doc["failed"]), doc["failed"]
    doc = _json("recommend", "--fit", tour, "-n", "1000000", *far, code=1)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["band"]["unreliable"]
    assert doc["failed"] == [f"--strict: unreliable: {why}" for why in doc["band"]["unreliable"]]
    doc = _json("recommend", "--fit", tour, "-n", "1024", "--group", PER_LAYER, "--strict")
    assert {k: doc[k] for k in passing} == passing and doc["source"] == "fit"
    # without --strict recommend is no gate: its JSON stays the REST answer
    assert "ok" not in _json("recommend", "--fit", tour, "-n", "1024", "--group", PER_LAYER)
    # fit: the gate's format always, the whole fit where a gate is asked
    doc = _json("fit", TOUR, "--n-boot", "50", "-q", "--summary")
    assert {k: doc[k] for k in passing} == passing and doc["gates"] == {}
    doc = _json("fit", TOUR, "--n-boot", "50", "-q", "--target-width", "1000000", "--strict", "--summary", code=1)
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert doc["failed"] and all(f.startswith("--strict: unreliable: ") for f in doc["failed"])
    assert len(doc["failed"]) == len(doc["gates"]["--strict"]["failures"])
    whole = _json("fit", TOUR, "--n-boot", "50", "-q", "--target-width", "1000000", "--strict", code=1)
    assert whole["failed"] == doc["failed"] and whole["groups"]
    # and `fit --strict --json > fit.json` is still a fit the other commands read
    saved = Path(tour).with_name("gated.json")
    saved.write_text(json.dumps(whole))
    assert _json("predict", saved, "--size", "1024", "--group", PER_LAYER)["prediction"] is not None
    # and the Python model reads it too (it refused the verdict's keys as extra fields: session 65's note)
    from abcscale.schemas.fit import FitResult

    assert FitResult.model_validate_json(saved.read_text()).groups == FitResult.model_validate(
        {k: v for k, v in whole.items() if k not in ("ok", "exit_code", "failed")}).groups
    assert "ok" not in _json("fit", TOUR, "--n-boot", "50", "-q")  # no gate: exactly the FitResult, as --out writes


# --- 4. one report shape for exit 1 ----------------------------------------------------------------------------


def test_a_strict_gate_without_an_answer_still_says_failed(no_law):
    sp = ["--group", "parameterization=sp", "--strict"]
    doc = _json("check", no_law["config"], "--fit", no_law["fit"], *sp, code=1)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["checks"] == []
    assert len(doc["failed"]) == 1 and doc["failed"][0].startswith("unreliable prediction: no prediction: ")
    assert "only one width (64)" in doc["failed"][0]
    assert any(e.startswith("--strict: unreliable: no prediction: ") for e in doc["errors"])  # as before
    for args in (["predict", no_law["fit"], "--size", "4096"], ["recommend", "--fit", no_law["fit"], "-n", "4096"]):
        doc = _json(*args, *sp, code=1)
        assert doc["ok"] is False and doc["exit_code"] == 1, doc
        assert len(doc["failed"]) == 1 and doc["failed"][0].startswith("--strict: unreliable: "), doc
        assert "only one width (64)" in doc["failed"][0] and doc["errors"] == doc["failed"]
    # bad input (exit 2) keeps its shape
    assert set(_json("predict", no_law["fit"], "--size", "4096", "--group", "parameterization=sp", code=2)) == {
        "ok", "exit_code", "errors"}


# --- 5. --expect-theory says why a group has no theory exponent --------------------------------------------------


def test_expect_theory_names_the_reason_a_group_has_no_theory_exponent(tmp_path):
    df = pd.read_parquet(TOUR)
    df = df[df["parameterization"] == "mup"].copy()
    df["optimizer"] = df["optimizer"].where(df["lr_mode"] == "global", "adamx")
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = _run("fit", path, "--expect-theory", "-q", "--n-boot", "50", "--summary")
    assert res.exit_code == 1, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("--expect-theory: not checked:")]
    assert len(lines) == 1, res.stderr
    assert "optimizer=adamx" in lines[0] and "lr_mode=per_layer" in lines[0]
    assert "no theory exponent for this group: unknown optimizer 'adamx'" in lines[0], lines[0]
    assert "loss law" not in lines[0] and "the widths span" not in lines[0]  # the group's other warnings: unrelated


# --- 6. sweep --json keeps the table's grid-edge flag --------------------------------------------------------------


def test_sweep_json_says_which_best_lr_sits_at_the_grids_edge(tmp_path, monkeypatch):
    import abcscale.runner.sweep as sweep

    def fake_run(spec, out, **_):  # width 8 best at the grid's low end, width 16 inside it
        rows = []
        for width, best in ((8, -6.0), (16, -4.0)):
            for x in spec.log2_lr:
                rows.append({"parameterization": "mup", "optimizer": "adam", "optimizer_variant": "adam",
                             "alignment": "full", "lr_mode": "per_layer", "width": width, "log2_lr": x,
                             "beta": 2.0**x, "seed": 0, "diverged": False, "eval_loss": 3 + (x - best) ** 2,
                             "gamma_embedding": 2.0, "gamma_hidden": 1.0, "gamma_readout": 0.5})
        return pd.DataFrame(rows)

    monkeypatch.setattr(sweep, "run_sweep", fake_run)
    args = ["sweep", "--model", "mlp", "-p", "mup", "--widths", "8,16", "--log2-lr", "-6:-2:2", "--out",
            tmp_path / "o", "-q"]
    doc = _json(*args)
    best = {b["width"]: b for b in doc["best"]}
    assert best[8]["log2_lr"] == -6.0 and best[8]["on_edge"] is True
    assert best[16]["log2_lr"] == -4.0 and best[16]["on_edge"] is False
    assert best[8]["gamma"] == {"embedding": 2.0, "hidden": 1.0, "readout": 0.5}
    assert "best at the grid's edge" in _run(*args).stdout  # the table says the same


# --- 7. an implausible width: the analytic transfer says it, as a fit's prediction does ------------------------------


def test_analytic_recommend_and_check_say_a_width_with_a_zero_too_many(tmp_path, tour):
    rec = _json("recommend", "-p", "mup", "-o", "adam", "-n", "1e12", "--base-width", "256", "--base-lr", "3e-3")
    far = [w for w in rec["warnings"] if "a zero too many?" in w]
    assert far == ["transferring 3.91e+09x past the base width (256), beyond 1024x: check the target (a zero too "
                   "many?)"], rec["warnings"]
    text = _words(_run("recommend", "-p", "mup", "-o", "adam", "-n", "1e12", "--base-width", "256", "--base-lr",
                       "3e-3").stdout)
    assert "warning: transferring 3.91e+09x past the base width (256)" in text
    low = _json("recommend", "-p", "mup", "-o", "adam", "-n", "2", "--base-width", "4096", "--base-lr", "3e-3")
    assert any("2.05e+03x below the base width (4096)" in w and "a zero missing?" in w for w in low["warnings"])
    fine = _json("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3")
    assert not any("zero" in w for w in fine["warnings"])
    cfg = tmp_path / "big.yaml"
    cfg.write_text((ROOT / "examples" / "check-config.yaml").read_text().replace("width: 4096 ", "width: 1e12 "))
    report = _json("check", cfg, code=1)
    assert report["width"] == 10**12 and far[0] in report["warnings"], report["warnings"]
    ok = _json("check", ROOT / "examples" / "check-config.yaml")
    assert not any("zero" in w for w in ok["warnings"])
    # a fit says its own (an unreliable extrapolation), once
    fitted = _json("recommend", "--fit", tour, "-n", "1e12", "--group", PER_LAYER)
    assert sum("a zero too many?" in w for w in fitted["warnings"]) == 1
    assert math.isfinite(fitted["beta"])
    from abcscale.fitting.predict import EXTRAPOLATION_UNRELIABLE
    from abcscale.usecases.recommend import FAR_WIDTH

    assert FAR_WIDTH == EXTRAPOLATION_UNRELIABLE  # the same reach as a fit's
