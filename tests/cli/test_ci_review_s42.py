"""CI gates, session 42: `check --strict` (an unreliable fitted prediction passed `check --fit` with a warning),
every failing gate of `fit` said (only the first was), the gates' verdicts in `fit --summary --json`, and `--token`
without `--service` (silently ignored) an error when typed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases import recommend_from_fit
from tests.usecases.test_check_service import GROUP, config, run_check

runner = CliRunner()


@pytest.fixture(scope="module")
def two_widths(tmp_path_factory):
    """A fit from widths 64 and 128: its prediction at 4096 extrapolates from 2 widths (unreliable)."""
    fit = fit_table(synthetic_sweep((64, 128), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2, group=GROUP),
                    n_boot=50)
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    path.write_text(fit.model_dump_json())
    return fit, path


def _passing_config(fit):
    cfg = config()
    cfg["lr"] = {s.layer.value: s.lr for s in recommend_from_fit(fit, 4096, selector=GROUP).layers}
    return cfg


def test_check_strict_fails_an_unreliable_fitted_prediction(tmp_path, two_widths):
    fit, path = two_widths
    cfg = _passing_config(fit)
    code, report = run_check(tmp_path, cfg, "--fit", str(path))
    assert code == 0 and any("2 widths" in w for w in report["warnings"]), report  # a pass, with a warning
    code, report = run_check(tmp_path, cfg, "--fit", str(path), "--strict")
    assert code == 1 and not report["ok"] and report["exit_code"] == 1, report
    assert any(f.startswith("unreliable prediction:") and "2 widths" in f for f in report["failed"]), report
    # the table's verdicts are unchanged: only the gate on the prediction failed
    assert all(c["ok"] for c in report["checks"])


def test_check_strict_passes_a_reliable_prediction(tmp_path):
    fit = fit_table(synthetic_sweep((64, 128, 256, 512), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2,
                                    group=GROUP), n_boot=100)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    code, report = run_check(tmp_path, _passing_config(fit), "--fit", str(path), "--strict")
    assert code == 0 and report["ok"], report


def test_check_strict_without_a_fit_is_exit_2(tmp_path):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(config()))
    res = runner.invoke(app, ["check", str(p), "--strict"])
    assert res.exit_code == 2 and "--strict" in res.stderr and "--fit" in res.stderr, res.output


def test_token_without_service_is_exit_2_when_typed_not_from_the_environment(tmp_path, monkeypatch):
    p = tmp_path / "run.json"
    p.write_text(json.dumps(config()))
    res = runner.invoke(app, ["check", str(p), "--token", "s3cret"])
    assert res.exit_code == 2 and "--token needs --service" in res.stderr, res.output
    # a CI job that exports the token for its service calls runs local checks too: not an error
    assert runner.invoke(app, ["check", str(p)], env={"ABCSCALE_READ_TOKEN": "s3cret"}).exit_code == 0
    table = tmp_path / "t.csv"
    synthetic_sweep((64, 128, 256), seeds=1).to_csv(table, index=False)
    res = runner.invoke(app, ["fit", str(table), "-q", "--n-boot", "20", "--token", "s3cret"])
    assert res.exit_code == 2 and "--token needs --service" in res.stderr, res.output
    res = runner.invoke(app, ["fit", str(table), "-q", "--n-boot", "20"], env={"ABCSCALE_API_TOKEN": "s3cret"})
    assert res.exit_code == 0, res.output


def test_fit_says_every_failing_gate_and_the_summary_json_holds_their_verdicts(tmp_path):
    table = tmp_path / "two.csv"
    synthetic_sweep((64, 128), seeds=2, exponent=-0.5, group=GROUP).to_csv(table, index=False)
    args = ["fit", str(table), "-q", "--n-boot", "50", "--target-width", "4096", "--strict",
            "--expect-exponent", "size=3"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1, res.output
    # both gates failed and both are said (only the first one's was)
    assert "inconsistent with size=3" in res.stderr and "--strict:" in res.stderr and "2 widths" in res.stderr
    # one line each, led by its gate's flag, however long (a CI log is grepped; they wrapped at 80 columns)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("--expect-exponent: inconsistent with size=3: "), lines
    assert lines[1].startswith("--strict: unreliable: ") and lines[1].rstrip().endswith("spanning >= 8x"), lines
    res = runner.invoke(app, [*args, "--summary", "--json"])
    assert res.exit_code == 1
    gates = json.loads(res.stdout)["gates"]
    assert set(gates) == {"--strict", "--expect-exponent"}
    assert not gates["--strict"]["passed"] and any("2 widths" in f for f in gates["--strict"]["failures"])
    assert not gates["--expect-exponent"]["passed"]
    assert gates["--expect-exponent"]["failures"][0].startswith("inconsistent with size=3: ")
    # a gate that passes says so; none asked, none listed
    res = runner.invoke(app, ["fit", str(table), "-q", "--n-boot", "50", "--expect-exponent", "size=-0.5",
                              "--summary", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["gates"] == {"--expect-exponent": {"passed": True, "failures": []}}
    res = runner.invoke(app, ["fit", str(table), "-q", "--n-boot", "50", "--summary", "--json"])
    assert json.loads(res.stdout)["gates"] == {}


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_a_config_with_a_byte_order_mark_reads_as_without(tmp_path, suffix):
    """Windows editors (Notepad, PowerShell's Out-File) start UTF-8 files with a BOM: JSON and TOML refused it."""
    cfg = config()
    if suffix == ".json":
        text = json.dumps(cfg)
    elif suffix == ".yaml":
        import yaml

        text = yaml.safe_dump(cfg)
    else:
        flat = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.items() if not isinstance(v, dict))
        text = flat + "\n[lr]\n" + "\n".join(f"{k} = {v!r}" for k, v in cfg["lr"].items()) + "\n"
    path = tmp_path / f"run{suffix}"
    path.write_text(text, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["check", "-", "--json"], input="\ufeff" + json.dumps(cfg))  # stdin too
    assert res.exit_code == 0, res.output


def test_a_fit_file_and_a_sweep_spec_with_a_byte_order_mark_read(tmp_path, two_widths):
    fit, _ = two_widths
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json(), encoding="utf-8-sig")
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(_passing_config(fit)))
    res = runner.invoke(app, ["check", str(cfg), "--fit", str(path)])
    assert res.exit_code == 0, res.output
    from pathlib import Path

    from abcscale.runner.spec import toml_data

    spec = tmp_path / "sweep.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + (Path(__file__).parents[2] / "examples" / "sweep.toml").read_bytes())
    assert "widths" in toml_data(spec)


def test_a_misspelt_setup_column_is_named():
    """`parametrization` or `lr-mode` read under their own names: theory's exponent silently had nothing to
    read (`--expect-theory`: "no group holds parameterization")."""
    table = synthetic_sweep((64, 128, 256), seeds=1, group={"parameterization": "mup", "optimizer": "adam",
                                                            "lr_mode": "global"})
    fit = fit_table(table.rename(columns={"parameterization": "parametrization", "lr_mode": "LR-Mode"}), n_boot=20)
    notes = [w for w in fit.warnings if "looks like the" in w]
    assert any(w.startswith("parametrization: looks like the parameterization column") for w in notes), notes
    assert any(w.startswith("LR-Mode: looks like the lr_mode column") for w in notes), notes
    assert not any("optimizer" in w for w in notes)  # the table has that one
    assert not [w for w in fit_table(table, n_boot=20).warnings if "looks like the" in w]
    # one letter off but no setup (a review's false alarms): an LR column, numbers, a column of other words
    other = table.assign(**{"optimizer.lr": table["beta"], "optimizer_b1": 0.9, "optimized": "yes", "lr_model": "a"})
    other = other.drop(columns=["optimizer", "lr_mode"])
    fit = fit_table(other, ColumnMapping(lr_col="optimizer.lr"), n_boot=20)
    assert not [w for w in fit.warnings if "looks like the" in w], fit.warnings
    # the closest of two is named
    both = other.assign(optimiser="adam").drop(columns=["optimized"]).assign(optimizd="adam")
    (note,) = [w for w in fit_table(both, n_boot=20).warnings if "looks like the optimizer" in w]
    assert note.startswith("optimiser:")
