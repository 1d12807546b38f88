"""`abcscale demo` end to end (quick size): sweep, fit, plots, stored fit, resume, and the served API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from abcscale.schemas.fit import FitResult
from tests.helpers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e  # minutes: left out of make test-fast


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    return {**env, "ABCSCALE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}


#: this test process's first quick demo (``quick_demo``): its folder and the finished run
_FIRST: dict[str, tuple[Path, subprocess.CompletedProcess[str]]] = {}


def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``abcscale demo --quick --quiet --no-serve --json --out BASE/demo`` run from an empty ``BASE/cwd`` with no
    ``ABCSCALE_`` setting but the compile cache the suite's other runs use: ``BASE`` and the finished run. Once a test
    process: this file's test and tests/test_demo_review_s34.py's read the same run (the quick pipeline took 10 CPU-s
    a run, 2026-12-07). Nothing else writes under ``BASE``; this file's second run (the resume) writes under
    ``BASE/demo`` only, as the demo writes nowhere else."""
    if "run" not in _FIRST:
        base = tmp_path_factory.mktemp("quick-demo")
        (base / "cwd").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
        if "ABCSCALE_JAX_CACHE" in os.environ:
            env["ABCSCALE_JAX_CACHE"] = os.environ["ABCSCALE_JAX_CACHE"]
        run = subprocess.run([sys.executable, "-m", "abcscale", "demo", "--quick", "--quiet", "--no-serve", "--json",
                              "--out", str(base / "demo")], cwd=base / "cwd", env={**env, "COLUMNS": "200"},
                             capture_output=True, text=True, timeout=600)
        _FIRST["run"] = (base, run)
    return _FIRST["run"]


def _verdict(group: dict) -> str:
    """The summary's word for a group: the exponent's interval holds theory's exponent, or not."""
    if group["exponent"] is None:
        return "not fitted"
    return {True: "consistent", False: "inconsistent", None: "-"}[group["consistent"]]


def test_demo_quick_runs_resumes_and_serves(tmp_path, tmp_path_factory):
    base, first = quick_demo(tmp_path_factory)  # the first run: --no-serve --json
    out = base / "demo"
    cmd = [sys.executable, "-m", "abcscale", "demo", "--quick", "--quiet", "--out", str(out)]
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)  # --json: the summary and nothing else on stdout
    fit = FitResult.model_validate_json((out / "fit.json").read_text())
    assert summary["fit"] == str(out / "fit.json") and summary["runs"] == 2 * 2 * 2 * len(summary["log2_lr"]) * 2
    assert summary["fitted"] and summary["loss_col"] == "eval_loss"  # widened until something was fitted
    groups = {(g.group["parameterization"], g.group["lr_mode"]) for g in fit.groups}
    assert groups == {("standard", "global"), ("standard", "per_layer"), ("mup", "global"), ("mup", "per_layer")}
    assert [g["group"] for g in summary["groups"]] == [g.group for g in fit.groups]
    for g in summary["groups"]:  # the verdict is what the interval says (reaching a global LR's span, if any)
        if g["exponent"] is not None and g["theory"] is not None:
            lo, hi = g["theory_span"] or (g["theory"], g["theory"])
            assert g["consistent"] == (g["ci"][0] <= hi and g["ci"][1] >= lo), g
        assert (g["theory_span"] is not None) == (g["group"]["lr_mode"] == "global"), g
    for name in ("loss_vs_lr", "lr_vs_width", "loss_vs_width"):
        assert Path(summary["plots"][name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.png").stat().st_size > 1000
    fit_id = summary["fit_id"]
    tuned = _check_tuned(summary, out)
    cells = sorted((out / "sweep" / "cells").glob("*.rows.parquet"))
    tuned_stamp = Path(tuned["file"]).stat().st_mtime_ns
    stamps = [p.stat().st_mtime_ns for p in cells]

    # second run: resumes the finished sweep, reuses the stored fit, and serves it
    port = free_port()
    proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=300)
        assert [p.stat().st_mtime_ns for p in sorted((out / "sweep" / "cells").glob("*.rows.parquet"))] == stamps
        # the printed curl commands answer, as the demo's own summary said they would
        theory = httpx.post(f"http://127.0.0.1:{port}/v1/recommend", timeout=30, json={
            "parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 256, "beta": 0.003}})
        assert theory.status_code == 200 and theory.json()["source"] == "theory"
        # the printed web pages answer: the calculator, and this fit's report
        for page in (f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/fits/{fit_id}"):
            html = httpx.get(page, timeout=30)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"], page
        from_fit = httpx.post(f"http://127.0.0.1:{port}/v1/recommend", timeout=30, json={
            "parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "width": 8192, "fit_id": fit_id,
            "group": {"lr_mode": "per_layer"}})
        demo_rec = next(r for r in summary["recommendations"]
                        if r["group"]["parameterization"] == "mup" and r["group"]["lr_mode"] == "per_layer"
                        and r["width"] == 8192)
        if "error" in demo_rec:  # the quick sweep may leave the muP group unidentified: a clear 4xx, never a 5xx
            assert from_fit.status_code == 422, from_fit.text
        else:
            assert from_fit.status_code == 200, from_fit.text
            assert from_fit.json()["source"] == "fit" and from_fit.json()["band"]["lr"] == pytest.approx(
                demo_rec["lr"])
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=30)
    assert f"fit stored with id {fit_id}" in stdout  # the same fit, not a duplicate
    assert f"reused {tuned['file']}" in stdout and Path(tuned["file"]).stat().st_mtime_ns == tuned_stamp
    assert "curl -s -X POST" in stdout and json.dumps(fit_id) in stdout
    assert re.search(rf"web page: http://\S+/ \(calculator\), http://\S+/fits/{fit_id} ", stdout), stdout[-2000:]
    for g in summary["groups"]:  # the text summary shows each group's verdict (\b: "consistent" is not "inconsistent")
        label = " ".join(str(g["group"][k]) for k in ("parameterization", "optimizer", "lr_mode"))
        assert re.search(rf"{re.escape(label)}\s.*\b{_verdict(g)}\b", stdout), (label, _verdict(g))


def _check_tuned(summary: dict, out: Path) -> dict:
    """Step 4: muP's constants tuned at the base width (a constants file), swept at every width, and each width's
    best loss beside the main sweep's muP and standard (per-layer LR)."""
    import pandas as pd

    from abcscale.usecases.tune import load_constants

    tuned = summary["tuned"]
    assert not tuned["reused"] and tuned["trials_run"] == tuned["settings"]["trials"]
    file = load_constants(tuned["file"])
    assert (file.parameterization, file.optimizer_variant, file.lr_mode.value) == ("mup", "adam", "per_layer")
    assert file.base_width == 16 and file.beta == tuned["beta"] and file.constants.gamma.model_dump() == tuned["gamma"]
    main = pd.read_parquet(out / "sweep" / "results.parquet")
    ours = pd.read_parquet(out / "tuned-sweep" / "results.parquet")
    assert sorted(ours["log2_lr"].unique()) == pytest.approx(tuned["log2_lr"])
    assert set(ours["gamma_readout"]) == {file.constants.gamma.readout}

    def by_lr(rows: pd.DataFrame, width: int) -> pd.Series:
        ok = rows[(rows["width"] == width) & (rows["lr_mode"] == "per_layer") & ~rows["diverged"]]
        return ok.groupby("log2_lr")["eval_loss"].mean()

    def best(rows: pd.DataFrame, width: int) -> float:
        return float(by_lr(rows, width).min())
    assert [r["width"] for r in tuned["best_loss"]] == [16, 32]
    for r in tuned["best_loss"]:
        w = r["width"]
        assert r["mup_tuned"] == pytest.approx(best(ours, w))
        assert r["tuned_at_edge"] == (by_lr(ours, w).idxmin() in (min(tuned["log2_lr"]), max(tuned["log2_lr"])))
        assert r["mup_default"] == pytest.approx(best(main[main["parameterization"] == "mup"], w))
        assert r["standard"] == pytest.approx(best(main[main["parameterization"] == "standard"], w))
    return tuned
