"""`drop_cut_short` (`fit --drop-cut-short`, REST `drop_cut_short`): runs that stopped at a lower step count than
the rest of their curve were only named in a warning; on request they are left out, said in a note."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from abcscale import fit as fit_api
from abcscale.cli import app
from abcscale.fitting import fit_table, prepare
from tests.fitting.test_review_s35 import _sweep

runner = CliRunner()


def _with_short_runs():
    """Two runs next to width 256's best stopped at step 600 of 2000, their losses higher for it."""
    df = _sweep(seeds=1)
    df["_step"] = 2000
    ok = df[(df["width"] == 256) & df["final_loss"].notna()]
    best = ok["final_loss"].idxmin()
    near = [i for i in ok.index if abs(i - best) == 1][:2]
    df.loc[near, "_step"] = 600
    df.loc[near, "final_loss"] *= 1.3
    return df, near


def test_cut_short_runs_are_left_out_on_request_and_said():
    df, near = _with_short_runs()
    kept = prepare(df)
    assert any("stopped at a lower _step" in w and "`drop_cut_short` leaves them out" in w for w in kept.warnings)
    dropped = prepare(df, drop_cut_short=True)
    assert not any("stopped at a lower" in w for w in dropped.warnings)
    (note,) = [w for w in dropped.warnings if "cut short" in w]
    assert note.startswith("2 run(s) cut short") and f"row(s) {near[0]}, {near[1]}" in note
    # the fit is the one without those rows, bar the note and the table's hash
    a = fit_table(df, n_boot=50, drop_cut_short=True)
    b = fit_table(df.drop(index=near).reset_index(drop=True), n_boot=50)
    assert [o.lr_opt for g in a.groups for o in g.per_width] == [o.lr_opt for g in b.groups for o in g.per_width]
    assert a.provenance.n_rows == len(df) and a.provenance.settings["drop_cut_short"] is True
    # and it moves the width whose optimum the short runs moved
    c = fit_table(df, n_boot=50)
    opt = {o.width: o.lr_opt for o in c.groups[0].per_width}
    assert opt[256] != {o.width: o.lr_opt for o in a.groups[0].per_width}[256]
    # the Python API takes it too
    assert fit_api(df, n_boot=50, drop_cut_short=True).groups[0].per_width == a.groups[0].per_width


def test_the_cli_flag_and_its_words(tmp_path):
    df, _ = _with_short_runs()
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "50", "--json"])
    said = " ".join(json.loads(res.stdout)["warnings"])
    assert "--drop-cut-short leaves them out" in said, said
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "50", "--json", "--drop-cut-short"])
    out = json.loads(res.stdout)
    assert res.exit_code == 0 and any("as --drop-cut-short asks" in w for w in out["warnings"]), out["warnings"]


def test_rest_and_the_upload_form_take_it(tmp_path):
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    df, _ = _with_short_runs()
    rows = json.loads(df.to_json(orient="records"))
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as client:
        r = client.post("/v1/fits", json={"rows": rows, "n_boot": 50, "drop_cut_short": True})
        assert r.status_code == 201, r.text
        result = r.json()["result"]
        assert result["provenance"]["settings"]["drop_cut_short"] is True
        assert any("as drop_cut_short asks" in w for w in result["warnings"]), result["warnings"]
        r = client.post("/v1/fits", json={"rows": rows, "n_boot": 50, "drop_cut_short": "sometimes"})
        assert r.status_code == 422 and "drop_cut_short" in r.text
        # the page's form: the field is there, and an upload with it stores the fit without those runs
        assert 'name="drop_cut_short"' in client.get("/fits").text
        path = tmp_path / "t.csv"
        df.to_csv(path, index=False)
        r = client.post("/fits", files={"file": ("t.csv", path.read_bytes(), "text/csv")},
                        data={"n_boot": "50", "drop_cut_short": "true"}, follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
        stored = client.get(r.headers["location"].replace("/fits/", "/v1/fits/")).json()
        assert stored["result"]["provenance"]["settings"]["drop_cut_short"] is True
