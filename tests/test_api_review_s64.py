"""Session 64's review of the Python API from a notebook: ``from_mup(...)`` itself given as ``constants`` reads as
its ``--json`` document does (it was "parameterization: required ... beta: required", naming what it held)."""

from __future__ import annotations

import pytest

import abcscale


def test_from_mup_itself_is_the_constants_its_document_is(tmp_path):
    imported = abcscale.from_mup("adam", base_width=256, lr=3e-3, init_std=[1.0, 0.0625, 0.0625])
    path = tmp_path / "imported.json"
    path.write_text(imported.model_dump_json())
    given = abcscale.recommend(width=4096, constants=imported)
    assert given.model_dump() == abcscale.recommend(width=4096, constants=path).model_dump()
    # and the numbers are the import's: every microsoft/mup group's lr is the imported one at the base width
    spelled = abcscale.recommend("mup", "adam", width=4096, constants=imported.constants)
    assert [s.lr for s in given.layers] == [s.lr for s in spelled.layers]
    at_base = abcscale.recommend(width=256, constants=imported, form="mup")
    assert all(s.mup_lr == pytest.approx(3e-3) for s in at_base.groups.roles if s.role.value != "fixed")
    with pytest.raises(ValueError, match="^parameterization: the constants are microsoft/mup's adam setup"):
        abcscale.recommend("sp", "adam", width=4096, constants=imported)


def test_the_summary_lines_up_and_one_octave_is_singular(tmp_path):
    """A docs review: `fit --summary`'s verdicts on global-LR rows sat two columns right of the per-layer rows' (the
    span "-1..-0.5" outgrew the theory column), and a covariate one octave out was "1 octaves outside"."""
    import re
    from pathlib import Path

    from typer.testing import CliRunner

    from abcscale.cli import app
    from abcscale.fitting.joint import _octaves

    table = Path(__file__).resolve().parents[1] / "examples" / "tour-sweep.parquet"
    out = CliRunner().invoke(app, ["fit", str(table), "--summary"])
    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if re.search(r"consistent|INCONSISTENT", line)]
    assert len(rows) == 4 and len({re.search(r"consistent|INCONSISTENT", r).start() for r in rows}) == 1, rows
    assert (_octaves(1.0), _octaves(0.999), _octaves(1.5), _octaves(0.5)) == (
        "1 octave", "1 octave", "1.5 octaves", "0.5 octaves")


def test_an_import_of_an_optimizer_without_epsilon_is_read_without_one_as_its_file_is(tmp_path):
    """A code review: the import itself given as constants (or one read back from its JSON in Python) still warned
    "epsilon: lion has no epsilon; the 1e-08 given changes nothing", which the same document from a file did not."""
    imported = abcscale.from_mup("lion", base_width=256, lr=1e-3)
    copied = type(imported).model_validate_json(imported.model_dump_json())
    path = tmp_path / "imported.json"
    path.write_text(imported.model_dump_json())
    from_file = abcscale.recommend(width=1024, constants=path)
    assert not [w for w in from_file.warnings if "epsilon" in w], from_file.warnings
    for given in (imported, copied):
        rec = abcscale.recommend(width=1024, constants=given)
        assert rec.warnings == from_file.warnings and [s.lr for s in rec.layers] == [s.lr for s in from_file.layers]


def test_check_with_a_fit_and_a_constants_file_does_not_say_the_files_beta_was_the_configs(tmp_path):
    """An end-to-end review: `check CONFIG --fit FIT --constants FILE` warned "beta and base_width: not used with a
    fit" for a config that named neither (the file's were filled in); a config that names them is still told."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from abcscale.cli import app

    runner = CliRunner()
    table = Path(__file__).resolve().parents[1] / "examples" / "tour-sweep.parquet"
    assert runner.invoke(app, ["fit", str(table), "-q", "--out", str(tmp_path / "fit")]).exit_code == 0
    doc = tmp_path / "constants.json"
    doc.write_text(json.dumps({"width": 32, "beta": 0.01, "gamma": {"embedding": 1.0, "hidden": 1.0, "readout": 1.0}}))
    config = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "width": 1024,
              "lr": {"embedding": 0.004, "hidden": 0.0007, "readout": 0.004}}
    said = "not used with a fit"
    for extra, warned in (({}, False), ({"beta": 0.01}, True)):
        path = tmp_path / "run.json"
        path.write_text(json.dumps({**config, **extra}))
        out = runner.invoke(app, ["check", str(path), "--fit", str(tmp_path / "fit" / "fit.json"),
                                  "--constants", str(doc)])
        assert out.exit_code in (0, 1), out.output
        assert (said in out.output) is warned, (extra, out.output)


def test_check_takes_a_fits_epsilon_mode_for_the_vector_role_where_the_config_states_none(tmp_path):
    """A code review: a config trained as a constant-epsilon sweep (1e-6 on every role) failed `check --fit` on its
    vector role, whose reference was per_layer's; a config that states its mode is checked in that mode."""
    import json

    from typer.testing import CliRunner

    from abcscale.cli import app
    from tests.fitting.test_review_s64 import _per_layer_gamma_table

    fit = abcscale.fit(_per_layer_gamma_table().assign(epsilon=1e-6, epsilon_mode="constant"), n_boot=50)
    (tmp_path / "fit.json").write_text(fit.model_dump_json())
    rec = abcscale.recommend_from_fit(fit, 65536)  # 1024x the base: per_layer's vector epsilon 32x, past --eps-tol.
    config = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "width": 65536,
              "lr": {s.layer.value: s.lr for s in rec.layers},
              "epsilon": {"embedding": 1e-6, "hidden": 1e-6, "readout": 1e-6, "vector": 1e-6}}
    path = tmp_path / "run.json"
    for extra, passes in (({}, True), ({"epsilon_mode": "per_layer"}, False)):
        path.write_text(json.dumps({**config, **extra}))
        out = CliRunner().invoke(app, ["check", str(path), "--fit", str(tmp_path / "fit.json"), "--json"])
        report = json.loads(out.stdout)
        assert (not [f for f in report["failed"] if f.startswith("epsilon")]) is passes, (extra, report["failed"])


def test_the_calculators_mode_selects_give_a_mode_only_when_chosen():
    """The page's epsilon_mode select always sent per_layer: typing a gamma over a constant-mode fit set it, every
    epsilon 16-256x off (a code review); and a mode chosen alone was dropped on a fit's answer, per_layer never
    choosable over a fit's constant (a service review). Its first option, "", gives none; any mode chosen is given."""
    from abcscale.service.pages import DEFAULTS, _constants

    assert DEFAULTS["epsilon_mode"] == DEFAULTS["weight_decay_mode"] == ""
    errors: dict[str, str] = {}
    constants, typed = _constants({"gamma": "1,1,1", "epsilon_mode": "", "weight_decay_mode": ""}, errors)
    assert typed and not errors and constants is not None
    assert "epsilon_mode" not in constants.model_fields_set and "weight_decay_mode" not in constants.model_fields_set
    for mode in ("constant", "per_layer"):
        chosen, typed = _constants({"epsilon_mode": mode}, errors)  # alone: given, so a fit's answer takes it
        assert typed and chosen is not None and chosen.epsilon_mode.value == mode
        assert "epsilon_mode" in chosen.model_fields_set


def test_the_report_page_says_what_the_runs_trained_with(tmp_path):
    """A service review: a fit's report never said the constants its runs trained with, which its recommendations
    carry (each layer's LR is beta x gamma there)."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings
    from tests.fitting.test_review_s64 import _per_layer_gamma_table

    rows = _per_layer_gamma_table().assign(epsilon=1e-6, epsilon_mode="constant")
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        r = client.post("/v1/fits", json={"rows": json.loads(rows.to_json(orient="records", double_precision=15)),
                                          "n_boot": 50})
        assert r.status_code == 201, r.text
        page = client.get(f"/fits/{r.json()['id']}").text
        assert "the runs trained with" in page
        assert "gamma embedding 2, hidden 1, readout 0.5;" in page and "epsilon 1e-06 (constant)" in page
