"""Session 61 (session 60's review A1/A2): the numbers `abcscale mup export` prints, written as a `mup:` table with
the beta they were exported from, fail the check, since a mup table's beta is microsoft/mup's one lr; the note now
says how to gate them (the run described as `form: mup` with that beta and its constants), and that config passes."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
BETA, BASE, WIDTH = 3e-3, 256, 4096


def _export() -> dict:
    res = runner.invoke(app, ["mup", "export", "-o", "adam", "--width", str(WIDTH), "--base-width", str(BASE),
                              "--base-lr", str(BETA), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _check(tmp_path, cfg: dict) -> tuple[int, dict]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def test_exported_numbers_as_a_mup_table_point_to_the_mup_form_which_passes(tmp_path):
    export = _export()
    setup = export["setup"]
    table = {"optimizer": "adam", "width": WIDTH, "beta": BETA,
             "mup": {"base_width": BASE, "lr": setup["lr"], "init_std": setup["init_std"],
                     "output_mult": setup["output_mult"]}}
    code, report = _check(tmp_path, table)
    assert code == 1 and "lr (embedding) too high" in report["failed"], report
    note = next(w for w in report["warnings"] if w.startswith("beta with a mup table"))
    assert "describe the run as `form: mup` (its lr per role, init_std and multiplier)" in note
    # what the note says to do: the run as it applies the numbers, in the mup form, with beta and the constants
    roles = {r["role"]: r for r in export["roles"]}
    form = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
            "form": "mup", "lr": {k: roles[k]["lr"] for k in ("embedding", "hidden", "readout", "vector", "fixed")},
            "init_std": {k: roles[k]["init_std"] for k in ("embedding", "hidden", "readout")},
            "multiplier": {k: roles[k]["multiplier"] for k in ("embedding", "hidden", "readout")}}
    code, report = _check(tmp_path, form)
    assert code == 0 and not report["failed"], report
    assert len([c for c in report["checks"] if c["setting"] == "lr"]) == 5
