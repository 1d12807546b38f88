"""Sweep folders and spec files written by earlier abcscale versions, rerun and fitted by today's code (session 71
review).

Users keep a sweep folder for months and rerun ``abcscale sweep`` into it after upgrading, to widen a grid or add a
seed. The project's promise: nothing a user gave is lost; a rerun reuses the finished runs whose results would be
identical or says why it trains them again; never a traceback, never runs of two trainings listed as one, never a
silently different number. The fixtures in ``tests/data/old_sweeps_s71/`` were written by the old versions
themselves (see that folder's README.md): they are not today's output.

Which of these fail on the code they were written against, and why, is said at each test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.runner.spec import SweepSpec

pytest.importorskip("jax")

DATA = Path(__file__).resolve().parents[1] / "data" / "old_sweeps_s71"
#: an adamw sweep with weight_decay 0.1 and init_scale (2, 1, 0.5) by 4eef01b: its table has neither's column
WD_DIR, WD_TOML = DATA / "adamw_wd_init_scale_4eef01b", DATA / "adamw_wd_init_scale.toml"
#: an MLP sweep by 85aee91 given --head-dim 8, which the MLP never read (refused today)
HEAD_DIM_DIR = DATA / "mlp_head_dim_85aee91"
HEAD_DIM_FLAGS = ["--model", "mlp", "--depth", "1", "--widths", "16", "--log2-lr=-6,-4", "--seeds", "1",
                  "--steps", "3", "--batch", "2", "--seq-len", "8", "--eval-batches", "1", "--data", "synthetic"]
TRAINED_INIT_SCALE = {"embedding": 2.0, "hidden": 1.0, "readout": 0.5}
RUN = ["width", "log2_lr", "seed"]
#: what a run measured (the rest of a row is what it was given)
MEASURED = ["final_loss", "eval_loss", "loss_at_init", "diverged"]

runner = CliRunner()


@pytest.fixture(autouse=True)
def _as_the_old_folders_were_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/runner/conftest.py forces LLVM opt level 0 for speed, and a forced level keys other runs: the old
    # versions swept these folders at the default level, so here, as for a user, their runs are the same runs
    monkeypatch.delenv("ABCSCALE_XLA_OPT_LEVEL", raising=False)


def _copy(src: Path, tmp: Path) -> Path:
    # a neutral name: the CLI's notes print the folder's path, which must not hold the words a test looks for
    dst = tmp / "old"
    shutil.copytree(src, dst)
    return dst


def _cells(folder: Path) -> dict[str, str]:
    """Each cell file's name -> its content's digest."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "cells").iterdir())}


def _fit(folder: Path) -> dict:
    res = runner.invoke(app, ["fit", str(folder), "--json"])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    return json.loads(res.stdout)


def _said(fit: dict) -> str:
    """Every warning of a fit, its groups' included, as one text."""
    return " | ".join([*fit.get("warnings", []), *(w for g in fit["groups"] for w in g.get("warnings") or [])])


# --- spec files ---------------------------------------------------------------------------------------------------


def test_an_old_spec_file_means_the_spec_its_version_swept():
    """The spec file 4eef01b swept reads today as the spec that version recorded in the folder's spec.json (every
    key, its defaults included): a rerun of the file addresses the folder's own cells. Passes today."""
    assert SweepSpec.from_toml(WD_TOML) == SweepSpec.model_validate_json((WD_DIR / "spec.json").read_text())


@pytest.mark.parametrize(("name", "key"), [("key_beside_sweep.toml", "eval_batches"),
                                           ("constants_beside_sweep.toml", "constants")])
def test_a_key_an_old_version_dropped_is_refused_naming_it_and_the_fix(tmp_path, name, key):
    """85aee91 swept these files and dropped the key beside ``[sweep]`` unread (its spec.json: eval_batches 4,
    epsilon 1e-8). Today's refusal names the key and where it goes, before anything trains. Passes today."""
    res = runner.invoke(app, ["sweep", str(DATA / name), "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.split())
    assert f"{key} outside [sweep]" in said and "put every key under [sweep]" in said, said
    assert not (tmp_path / "o" / "results.parquet").exists()


def test_an_old_folders_spec_json_with_a_key_refused_today_names_it(tmp_path):
    """The README: a sweep's spec.json is a spec (``abcscale sweep OUT/spec.json --out OUT`` resumes it). 85aee91's
    holds head_dim 8 for an MLP, refused today: one line naming the key and what to do, the folder untouched.
    Passes today."""
    out = _copy(HEAD_DIM_DIR, tmp_path)
    before = _cells(out)
    res = runner.invoke(app, ["sweep", str(out / "spec.json"), "--out", str(out), "-q"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    said = " ".join(res.output.replace(str(tmp_path), "TMP").split())  # the words, not a path that holds them
    assert "head_dim" in said and "drop it" in said, said
    assert _cells(out) == before


# --- fitting an old folder as it is -----------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["weight_decay", "init_scale"])
def test_a_fit_of_an_old_folder_carries_or_says_what_its_runs_trained_with(tmp_path, what):
    """``abcscale fit OLDDIR`` on 4eef01b's adamw folder (weight_decay 0.1, init_scale 2, 1, 0.5; its table predates
    the ``base_weight_decay`` and ``init_scale_*`` columns, but holds ``weight_decay_<layer>`` 0.1 and the folder's
    spec.json both). A fit of today's sweep of the same spec carries both into ``recommend --fit``; this one
    carries neither and says nothing, so ``recommend --fit`` answers weight decay 0 at every layer ("none given")
    and the embedding's init std half, the readout's twice what the runs trained with.

    FAILS on the session-71 code (both cases): a silently different number."""
    fit = _fit(_copy(WD_DIR, tmp_path))
    (group,) = fit["groups"]
    said = _said(fit)
    if what == "weight_decay":
        assert group["weight_decay"] == 0.1 or "decay" in said, said
    else:
        assert group["trained_constants"].get("init_scale") == TRAINED_INIT_SCALE or "init_scale" in said, said


# --- extending an old folder ------------------------------------------------------------------------------------


@dataclass
class Extended:
    out: Path
    output: str
    exit_code: int
    cells_before: dict[str, str]


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Extended]:
    """4eef01b's folder extended by today's code with a second seed (4 runs reused, 4 trained)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ABCSCALE_XLA_OPT_LEVEL", raising=False)  # module scope: the autouse fixture has not run yet
        out = _copy(WD_DIR, tmp_path_factory.mktemp("extended"))
        before = _cells(out)
        res = runner.invoke(app, ["sweep", str(WD_TOML), "--seeds", "2", "--out", str(out), "-q"])
        yield Extended(out, res.output, res.exit_code, before)


def test_extending_an_old_folder_reuses_its_runs(extended):
    """The old runs are kept, not trained again (their cell files untouched, their rows as the old table listed
    them), and the table lists each run once. Passes today."""
    assert extended.exit_code == 0 and "Traceback" not in extended.output, extended.output
    after = _cells(extended.out)
    assert {k: after[k] for k in extended.cells_before} == extended.cells_before
    assert len(after) == len(extended.cells_before) + 4  # one new part (rows, coord files) per width
    old = pd.read_parquet(WD_DIR / "results.parquet")
    new = pd.read_parquet(extended.out / "results.parquet")
    assert len(new) == 8 and not new.duplicated(RUN).any()
    kept = new.merge(old[RUN + MEASURED], on=RUN, suffixes=("", "_old"))
    assert len(kept) == len(old)
    for c in MEASURED:
        assert (kept[c] == kept[f"{c}_old"]).all(), c


def test_an_extended_old_folder_lists_what_its_reused_runs_trained_with(extended):
    """The README: a rerun that widens a folder writes the same table as one sweep of the larger spec, and
    "folders written by earlier versions resume as they are". Every run of this folder trained with init_scale
    (2, 1, 0.5) and weight_decay 0.1 (coupled): the cell id holds the constants. The reused rows list
    ``init_scale_*`` and ``base_weight_decay`` empty beside the new rows' values, where one sweep lists the values
    throughout (``runner.sweep._as_written`` fills only ``run_settings`` columns a part lacks).

    FAILS on the session-71 code."""
    new = pd.read_parquet(extended.out / "results.parquet")
    for layer, value in TRAINED_INIT_SCALE.items():
        assert (new[f"init_scale_{layer}"] == value).all(), new[f"init_scale_{layer}"].tolist()
    assert (new["base_weight_decay"] == 0.1).all(), new["base_weight_decay"].tolist()
    assert (new["weight_decay_mode"] == "coupled").all()


def test_a_fit_of_an_extended_old_folder_is_the_fit_of_one_sweep(extended):
    """What the table above does to the fit: the reused rows' empty ``init_scale_*`` make it drop the init scales
    ("4 of 8 rows hold no positive number: not carried"), so ``recommend --fit`` answers the embedding's init std
    half, the readout's twice what a fresh sweep's fit gives; and the reused rows' ``lr_vector`` /
    ``epsilon_vector``, recorded by 4eef01b one ulp off today's (0.015625000000000003 for 0.015625), raise "rows at
    the same width and learning rate differ in lr_vector, epsilon_vector ... averaged as if they were seeds", a
    mixed-configurations alarm over one configuration.

    FAILS on the session-71 code."""
    fit = _fit(extended.out)
    (group,) = fit["groups"]
    said = _said(fit)
    assert group["trained_constants"].get("init_scale") == TRAINED_INIT_SCALE, said
    assert "differ in" not in said and "hold no positive number" not in said, said


# --- a key refused today, dropped as told ------------------------------------------------------------------------


def test_a_rerun_without_a_key_the_old_version_ignored_reuses_or_says_why(tmp_path):
    """85aee91's MLP runs were swept with --head-dim 8, which the MLP never read; today refuses the flag ("drop
    it"). Dropped, the rerun trains every run again (the cell id held head_dim), with results that are the same,
    and says only "results.parquet held 2 runs; it now lists this sweep's 2, without 2 of those (... rerun their
    spec to list them again ...)": no reason, and their spec is the one today refuses. The rule: reuse runs whose
    results would be identical, or say why they train again.

    FAILS on the session-71 code."""
    out = _copy(HEAD_DIM_DIR, tmp_path)
    before = _cells(out)
    res = runner.invoke(app, ["sweep", *HEAD_DIM_FLAGS, "--out", str(out), "-q"])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert len(pd.read_parquet(out / "results.parquet")) == 2
    assert {k: v for k, v in _cells(out).items() if k in before} == before  # kept, whatever else happened
    retrained = len(_cells(out)) > len(before)
    said = " ".join(res.output.replace(str(tmp_path), "TMP").split())  # the words, not a path that holds them
    assert not retrained or "head_dim" in said, said


def test_a_plain_rerun_of_an_old_folder_trains_nothing_says_nothing_and_lists_its_settings(tmp_path):
    """The remedy the fit's note names (a rerun of the folder's own spec) must train nothing and lists the runs with
    the settings they trained with. Its runs' LRs, recomputed, differ from the old table's by an ulp, which the
    dropped-runs note read as other runs: "without 4 of those" for runs that were all reused (session 71)."""
    out = _copy(WD_DIR, tmp_path)
    before = _cells(out)
    res = runner.invoke(app, ["sweep", str(out / "spec.json"), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert _cells(out) == before  # nothing trained, nothing rewritten
    assert "note:" not in res.output, res.output
    table = pd.read_parquet(out / "results.parquet")
    assert table["base_weight_decay"].eq(0.1).all() and table["init_scale_embedding"].eq(2.0).all()
