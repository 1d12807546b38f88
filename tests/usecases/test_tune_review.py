"""What a review of `abcscale tune` and its constants file found (session 33), each against the old behaviour:
a search whose every run diverged wrote a file (its beta ~100x too high); a file tuned in global LR mode was
read back as per-layer by every reader (2x at 4x the width); REST filled in a missing `constants`; the tuned
variant's epsilon (adam_scaled uses one, adam_atan2 none) was said wrongly; `--tune epsilon` searched noise for
a variant without one; hand edits (`"base_width": true`) were coerced; infinite or out-of-range search bounds
were tracebacks; no budget in Python ran forever; `out` was checked only after the search in Python;
`--seconds` alone stopped after 30 trials."""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.tune import VARIANT_EPSILON, TuneSettings
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.usecases.tune import load_constants, save_constants
from tests.usecases.test_tune import _tuned

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

runner = CliRunner()
TINY = ["--base-width", "16", "--steps", "10", "--batch", "4", "--seq-len", "16", "--depth", "1", "--model", "mlp",
        "--top", "2", "--reeval-seeds", "2", "-q"]


def _file(tmp_path, name="tuned.json", **update):
    tuned = _tuned()
    return save_constants(type(tuned).model_validate({**tuned.model_dump(), **update}), tmp_path / name)


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "svc", database_url=None, api_token=None))) as c:
        yield c


def test_a_search_that_only_diverged_writes_nothing(tmp_path):
    out = tmp_path / "div.json"
    res = runner.invoke(app, ["tune", *TINY, "--trials", "3", "--beta-range", "100:1000", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --beta-range: every run of the search diverged") and not out.exists()


def test_a_global_mode_file_recommends_in_global_mode_everywhere(tmp_path, client):
    path = _file(tmp_path, lr_mode="global")
    rec = abcscale.recommend(width=1024, constants=path)
    assert rec.lr_mode.value == "global"
    explicit = abcscale.recommend("mup", "adam", width=1024, base_width=64, beta=load_constants(path).beta,
                                  constants=load_constants(path).constants, lr_mode="global")
    assert rec.layers == explicit.layers
    cli = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024", "--json"])
    assert cli.exit_code == 0 and json.loads(cli.stdout)["lr_mode"] == "global"
    r = client.post("/v1/recommend", json={"tuned": json.loads(path.read_text()), "width": 1024})
    assert r.status_code == 200 and r.json()["layers"] == json.loads(cli.stdout)["layers"]
    # --lr-mode (lr_mode=, REST lr_mode) still chooses the per-layer rule, which differs at 16x the width
    per_layer = abcscale.recommend(width=1024, constants=path, lr_mode="per_layer")
    assert per_layer.lr_mode.value == "per_layer" and per_layer.layers != rec.layers
    r = client.post("/v1/recommend", json={"tuned": json.loads(path.read_text()), "width": 1024,
                                           "lr_mode": "per_layer"})
    assert r.json()["layers"] == json.loads(per_layer.model_dump_json())["layers"]


@pytest.mark.parametrize("key", ["constants", "alignment", "lr_mode"])
def test_rest_refuses_a_file_without_what_every_file_has(tmp_path, client, key):
    body = json.loads(_file(tmp_path).read_text())
    body.pop(key)
    r = client.post("/v1/recommend", json={"tuned": body, "width": 1024})
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "tuned", "tuned", key]]


def test_a_variant_s_epsilon_is_said_as_it_trained(tmp_path, client):
    scaled = _file(tmp_path, "s.json", optimizer="adafactor", optimizer_variant="adam_scaled",
                   constants={**_tuned().constants.model_dump(), "epsilon": 2.5e-8})
    rec = abcscale.recommend(width=1024, constants=scaled)
    assert any("adam_scaled, which uses one epsilon at every width" in w and "2.5e-08" in w for w in rec.warnings)
    assert not any("changes nothing" in w for w in [*rec.warnings, *rec.groups.warnings])
    r = client.post("/v1/recommend", json={"tuned": json.loads(scaled.read_text()), "width": 1024})
    assert r.status_code == 200 and r.json()["warnings"] == rec.warnings
    cli = runner.invoke(app, ["recommend", "--constants", str(scaled), "-n", "1024", "--json"])
    assert json.loads(cli.stdout)["warnings"] == rec.warnings
    atan2 = _file(tmp_path, "a.json", optimizer_variant="adam_atan2")
    said = abcscale.recommend(width=1024, constants=atan2).warnings
    assert any("adam_atan2, which uses no epsilon" in w for w in said)
    plain = _file(tmp_path, "p.json")
    assert not any("which uses" in w for w in abcscale.recommend(width=1024, constants=plain).warnings)


def test_the_variant_table_is_the_runner_s():
    from abcscale.runner.optim import OPTIMIZER_VARIANTS
    from abcscale.theory import layer_rules

    for name, v in OPTIMIZER_VARIANTS.items():
        family_has = layer_rules(v.family).has_epsilon
        expected = None if v.uses_epsilon == family_has else ("flat" if v.uses_epsilon else "none")
        assert VARIANT_EPSILON.get(name) == expected, name


def test_tune_epsilon_for_a_variant_without_one_is_refused(tmp_path):
    res = runner.invoke(app, ["tune", *TINY, "--trials", "2", "-o", "adam_atan2", "--tune", "gamma,epsilon",
                              "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "--tune: adam_atan2 uses no epsilon" in res.stderr


@pytest.mark.parametrize(("key", "value", "message"), [
    ("base_width", True, "base_width"), ("beta", "0.01", "beta"), ("alignment", "sideways", "alignment")])
def test_a_hand_edit_is_refused_not_coerced(tmp_path, key, value, message):
    path = _file(tmp_path)
    body = json.loads(path.read_text())
    body[key] = value
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError, match=rf"not a constants file from `abcscale tune` \(.*{message}"):
        load_constants(path)
    res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --constants: ")


@pytest.mark.parametrize(("flag", "value"), [("--beta-range", "1e-3:inf"), ("--beta-range", "1e-3:1e400"),
                                              ("--gamma-range", "1e-300:1e300")])
def test_search_bounds_are_checked_up_front(tmp_path, flag, value):
    res = runner.invoke(app, ["tune", *TINY, "--trials", "2", flag, value, "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: {flag}: ") and "Traceback" not in res.output


def test_the_python_form_needs_a_budget_and_checks_out_first(tmp_path):
    with pytest.raises(ValueError, match="trials: give trials or seconds"):
        TuneSettings(trials=None, seconds=None)
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    for out, why in ((tmp_path / "no" / "x.json", "is not a folder"), (keep, "is not a constants file")):
        with pytest.raises(ValueError, match=f"^out: .*{why}"):
            abcscale.tune("mup", "adam", base_width=16, trials=2, out=out, model="mlp", steps=5)
    assert keep.read_text() == "precious"


def test_seconds_alone_is_a_time_budget(tmp_path):
    out = tmp_path / "sec.json"
    # half a second: the search runs trials until the budget is spent (2 s of them were a quarter of this file's
    # CPU-s, 2026-12-07), and its first trial always runs
    res = runner.invoke(app, ["tune", *TINY, "--seconds", "0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    tuned = load_constants(out)
    assert tuned.settings.trials is None and tuned.settings.seconds == 0.5


def test_with_constants_setup_flags_are_refused_and_out_is_honoured(tmp_path):
    file = tmp_path / "t.json"
    assert runner.invoke(app, ["tune", *TINY, "--trials", "2", "--out", str(file)]).exit_code == 0
    before = file.read_text()
    check = ["tune", "--constants", str(file), "--verify-widths", "32", "--verify-lrs", "2", "--verify-seeds", "2",
             "-q"]
    res = runner.invoke(app, [*check, "-p", "ntk", "--trials", "5"])
    assert res.exit_code == 2 and res.stderr.startswith("error: --parameterization: with --constants only the "
                                                        "transfer check runs")
    assert "--trials" in res.stderr and file.read_text() == before
    other = tmp_path / "checked.json"
    res = runner.invoke(app, [*check, "--out", str(other)])
    assert res.exit_code == 0, res.output
    assert file.read_text() == before and load_constants(other).transfer[0].width == 32


def test_an_interrupted_search_says_what_it_kept(tmp_path, monkeypatch):
    import abcscale.usecases.tune as use

    def interrupted(spec, settings, *, on_trial=None, **kw):
        for t in _tuned().history[:2]:
            on_trial(t)
        raise KeyboardInterrupt

    monkeypatch.setattr(use, "tune", interrupted)
    out = tmp_path / "x.json"
    res = runner.invoke(app, ["tune", *TINY, "--trials", "5", "--out", str(out)])
    assert res.exit_code == 130 and not out.exists()
    said = " ".join(res.stderr.split())  # the console wraps at the terminal's width
    assert "interrupted after 2 trial(s)" in said and "rerun with --resume" in said
    res = runner.invoke(app, ["tune", *TINY, "--trials", "5", "--out", str(out), "--resume"])
    assert res.exit_code == 130 and "rerun the same command to continue" in " ".join(res.stderr.split())


def test_out_holding_another_alignment_is_kept(tmp_path):
    out = tmp_path / "al.json"
    assert runner.invoke(app, ["tune", *TINY, "--trials", "2", "--out", str(out)]).exit_code == 0
    before = out.read_text()
    res = runner.invoke(app, ["tune", *TINY, "--trials", "2", "-a", "none", "--out", str(out)])
    assert res.exit_code == 2 and "alignment full" in res.stderr and out.read_text() == before


def test_a_bad_value_in_the_file_is_said_as_the_file_s(tmp_path):
    path = _file(tmp_path)
    body = json.loads(path.read_text())
    body["constants"]["weight_decay"] = 0.1  # adam has none
    path.write_text(json.dumps(body))
    res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024"])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: --constants: {path}: constants.weight_decay: adam ")
    typed = runner.invoke(app, ["recommend", "--constants", str(_file(tmp_path, "ok.json")), "-n", "1024",
                                "--weight-decay", "0.1"])
    assert typed.exit_code == 2 and typed.stderr.startswith("error: --weight-decay: adam ")
    body["constants"].pop("weight_decay")
    body["beta"] = 1e31
    path.write_text(json.dumps(body))
    res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024"])
    assert res.exit_code == 2 and "--base-lr" not in res.stderr and "beta: Input should be less than" in res.stderr


def test_rest_names_the_file_s_decay(tmp_path, client):
    body = json.loads(_file(tmp_path).read_text())
    body["constants"]["weight_decay"] = 0.1
    r = client.post("/v1/recommend", json={"tuned": body, "width": 1024})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "tuned", "tuned", "constants", "weight_decay"]


@pytest.mark.parametrize(("edit", "said"), [({"version": 99}, "written by a newer abcscale"),
                                            ({"optimizer_variant": "lion"}, "'lion' is not a variant of adam")])
def test_a_file_from_elsewhere_is_refused(tmp_path, edit, said):
    path = _file(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(ValueError, match=said):
        load_constants(path)


def test_with_constants_out_keeps_a_user_s_other_file(tmp_path):
    file = tmp_path / "t.json"
    assert runner.invoke(app, ["tune", *TINY, "--trials", "2", "--out", str(file)]).exit_code == 0
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    res = runner.invoke(app, ["tune", "--constants", str(file), "--verify-widths", "32", "--verify-lrs", "2",
                              "--verify-seeds", "2", "-q", "--out", str(keep)])
    assert res.exit_code == 2 and "is not a constants file" in res.stderr and keep.read_text() == "precious"


def test_check_takes_the_file_s_lr_mode(tmp_path):
    path = _file(tmp_path, lr_mode="global")
    rec = abcscale.recommend(width=1024, constants=path)  # global, from the file
    lrs = {s.layer.value: s.lr for s in rec.layers}
    config = tmp_path / "run.yaml"
    config.write_text(f"width: 1024\nlr: {{embedding: {lrs['embedding']:g}, hidden: {lrs['hidden']:g}, "
                      f"readout: {lrs['readout']:g}}}\n")
    res = runner.invoke(app, ["check", str(config), "--constants", str(path), "--json"])
    report = json.loads(res.stdout)
    assert res.exit_code == 0 and report["lr_mode"] == "global", res.output
    ratios = [c["ratio"] for c in report["checks"] if c["setting"] == "lr"]
    assert len(ratios) == 3 and all(abs(r - 1) < 1e-6 for r in ratios), report["checks"]


@pytest.mark.parametrize(("edit", "said"), [({"version": 99}, "written by a newer abcscale"),
                                            ({"optimizer_variant": "lion"}, "'lion' is not a variant of adam")])
def test_rest_refuses_what_the_cli_refuses(tmp_path, client, edit, said):
    body = {**json.loads(_file(tmp_path).read_text()), **edit}
    r = client.post("/v1/recommend", json={"tuned": body, "width": 1024})
    assert r.status_code == 422 and said in r.text


def test_a_file_tuned_at_another_base_width_than_the_fit_s_is_refused(tmp_path):
    from abcscale.fitting.synthetic import synthetic_sweep

    group = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    fit = abcscale.fit(synthetic_sweep(widths=(32, 64, 128, 256), seeds=2, step=0.5, half_range=2.0, group=group,
                                       base_width=32), n_boot=20)
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(fit.model_dump_json())
    path = _file(tmp_path)  # tuned at 64; the fit's base width is 32
    with pytest.raises(ValueError, match="^constants: the file was tuned at width 64, the fit's base width is 32"):
        abcscale.recommend(fit=fit, width=1024, constants=path)
    res = runner.invoke(app, ["recommend", "--fit", str(fit_path), "-n", "1024", "--constants", str(path)])
    assert res.exit_code == 2 and "was tuned at width 64, the fit's base width is 32" in res.stderr
    at_32 = _file(tmp_path, "t32.json", base_width=32)
    assert abcscale.recommend(fit=fit, width=1024, constants=at_32).base_width == 32
    # check --fit --constants, the sibling path, refuses it the same way
    config = tmp_path / "run.yaml"
    config.write_text("width: 1024\nlr_mode: global\nlr: {embedding: 1e-2, hidden: 1e-3, readout: 1e-3}\n")
    res = runner.invoke(app, ["check", str(config), "--fit", str(fit_path), "--constants", str(path)])
    assert res.exit_code == 2 and "was tuned at width 64, the fit's base width is 32" in res.stderr


@pytest.mark.parametrize(("key", "value"), [("base_width", 128), ("parameterization", "ntk"), ("alignment", "none"),
                                            ("optimizer", "sgd")])
def test_python_refuses_what_the_file_was_not_tuned_for(tmp_path, key, value):
    path = _file(tmp_path)
    with pytest.raises(ValueError, match=f"^{key}: the constants file was tuned for "):
        abcscale.recommend(width=1024, constants=path, **{key: value})
    same = {"base_width": 64, "parameterization": "mup", "alignment": "full", "optimizer": "adam"}[key]
    assert abcscale.recommend(width=1024, constants=path, **{key: same}) == abcscale.recommend(width=1024,
                                                                                          constants=path)


def test_the_python_tune_takes_a_time_budget_and_a_beta_range(monkeypatch):
    import abcscale.usecases.tune as use

    seen = {}

    def capture(spec, settings, **kw):
        seen["settings"] = settings
        raise KeyboardInterrupt

    monkeypatch.setattr(use, "tune", capture)
    with pytest.raises(KeyboardInterrupt):
        abcscale.tune("mup", "adam", base_width=16, seconds=600, beta_range=(1e-4, 1e-2), model="mlp")
    assert seen["settings"].trials is None and seen["settings"].seconds == 600
    assert seen["settings"].beta_range == (1e-4, 1e-2)
    with pytest.raises(KeyboardInterrupt):
        abcscale.tune("mup", "adam", base_width=16, model="mlp")
    assert seen["settings"].trials == 30


def test_the_exports_spec_of_a_variant_s_file_says_its_epsilon(tmp_path):
    from abcscale.usecases.tune import group_spec

    scaled = _file(tmp_path, "s.json", optimizer="adafactor", optimizer_variant="adam_scaled",
                   constants={**_tuned().constants.model_dump(), "epsilon": 2.5e-8})
    spec = group_spec(scaled, width=1024)
    assert any("adam_scaled, which uses one epsilon" in w for w in spec.warnings)
    assert not any("changes nothing" in w for w in spec.warnings)


def test_a_resumed_search_that_only_diverged_writes_nothing(tmp_path):
    """A rerun on the stored study adds trials that diverge too: the earlier trials diverged as well (the study
    remembers no run that learnt), so the winner is still arbitrary and nothing is written."""
    out, db = tmp_path / "div.json", f"sqlite:///{tmp_path / 'tune.db'}"
    flags = ["tune", *TINY, "--beta-range", "100:1000", "--storage", db, "--out", str(out)]
    first = runner.invoke(app, [*flags, "--trials", "2"])
    assert first.exit_code == 2 and "every run of the search diverged" in first.stderr, first.output
    for trials in ("3", "3"):  # more trials, then the same command again (nothing left to run)
        again = runner.invoke(app, [*flags, "--trials", trials])
        assert again.exit_code == 2 and "every run of the search diverged" in again.stderr, again.output
    assert not out.exists()


def test_a_study_remembers_that_a_run_learnt(tmp_path):
    """search() keeps a yes from ``learnt`` in the study: a resumed search whose own runs all diverged is judged
    on the earlier process's too; one that ran nothing new is not judged at all."""
    from abcscale.usecases.tune import search

    settings = TuneSettings(trials=2, seeds=1, reeval_seeds=1, top=1)
    space, db = {"beta": (1e-3, 1e-1)}, f"sqlite:///{tmp_path / 's.db'}"
    first = search(space, lambda p, s: p["beta"], settings, storage=db, learnt=lambda: True)
    assert first.learnt
    more = settings.model_copy(update={"trials": 3})
    assert search(space, lambda p, s: p["beta"], more, storage=db, learnt=lambda: False).learnt
    other = f"sqlite:///{tmp_path / 'o.db'}"
    assert not search(space, lambda p, s: p["beta"], settings, storage=other, learnt=lambda: False).learnt
    assert not search(space, lambda p, s: p["beta"], settings, storage=other, learnt=lambda: None).learnt  # rerun
    older = f"sqlite:///{tmp_path / 'f.db'}"  # a study an older abcscale wrote keeps no answer: its runs may have
    search(space, lambda p, s: p["beta"], settings, storage=older)
    assert search(space, lambda p, s: p["beta"], more, storage=older, learnt=lambda: False).learnt
    # an interrupted search keeps what its finished trials said
    cut = f"sqlite:///{tmp_path / 'c.db'}"

    def stop(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(space, lambda p, s: p["beta"], settings, storage=cut, learnt=lambda: True, on_trial=stop)
    assert search(space, lambda p, s: p["beta"], more, storage=cut, learnt=lambda: False).learnt


def test_a_file_tuned_on_a_custom_table_says_so_wherever_it_is_read(tmp_path):
    """A search over a sweep's custom (a, b) table writes its name as the parameterization: recommend, check and
    Python said "--parameterization: Input should be ..." (a flag nobody typed); they name the file and why."""
    from tests.usecases.test_tune import _tuned

    training = {**_tuned().training, "custom_tables": {"mine": {"a": [0, 0, 0], "b": [0, 0.5, 0.5]}}}
    path = _file(tmp_path, parameterization="mine", training=training)
    said = f"{path}: parameterization 'mine' is a custom (a, b) table"
    cli = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024"])
    assert cli.exit_code == 2 and said in " ".join(cli.stderr.split()), cli.output
    with pytest.raises(ValueError, match=r"constants: .*parameterization 'mine' is a custom"):
        abcscale.recommend(width=1024, constants=path)
    with pytest.raises(ValueError, match="parameterization 'mine' is a custom"):
        abcscale.recommend(width=1024, constants=load_constants(path))
    config = tmp_path / "run.yaml"
    config.write_text("width: 1024\nlr: 0.001\n")
    check = runner.invoke(app, ["check", str(config), "--constants", str(path)])
    assert check.exit_code == 2 and said in " ".join(check.stderr.split()), check.output
    typo = _file(tmp_path, "typo.json", parameterization="mpu")
    cli = runner.invoke(app, ["recommend", "--constants", str(typo), "-n", "1024"])
    assert cli.exit_code == 2 and f"{typo}: parameterization 'mpu': expected standard" in " ".join(
        cli.stderr.split()), cli.output


def test_a_variant_s_epsilon_note_holds_with_a_fit_too(tmp_path):
    """With a fit the file gives its constants, its epsilon included: the note on what adam_scaled does with it
    was dropped (session 33's list); a fit's group of another optimizer gets no such note."""
    from abcscale.fitting.synthetic import synthetic_sweep

    def fit_of(optimizer):
        group = {"parameterization": "mup", "optimizer": optimizer, "lr_mode": "per_layer"}
        fit = abcscale.fit(synthetic_sweep(widths=(64, 128, 256), seeds=2, step=0.5, half_range=2.0, group=group,
                                           base_width=64), n_boot=20)
        path = tmp_path / f"fit-{optimizer}.json"
        path.write_text(fit.model_dump_json())
        return fit, path

    scaled = _file(tmp_path, "s.json", optimizer="adafactor", optimizer_variant="adam_scaled",
                   constants={**_tuned().constants.model_dump(), "epsilon": 2.5e-8})
    fit, path = fit_of("adafactor")
    note = "adam_scaled, which uses one epsilon at every width"
    assert any(note in w for w in abcscale.recommend(fit=fit, width=1024, constants=scaled).warnings)
    res = runner.invoke(app, ["recommend", "--fit", str(path), "-n", "1024", "--constants", str(scaled), "--json"])
    assert res.exit_code == 0 and any(note in w for w in json.loads(res.stdout)["warnings"]), res.output


def test_a_file_tuned_on_a_custom_table_is_refused_by_the_exports_and_a_built_in_name_is_no_table(tmp_path):
    from abcscale.runner.spec import SweepSpec
    from abcscale.usecases.tune import group_spec
    from tests.usecases.test_tune import _tuned

    training = {**_tuned().training, "custom_tables": {"mine": {l: {"a": 0, "b": 0.5} for l in
                                                                ("embedding", "hidden", "readout")}}}
    path = _file(tmp_path, parameterization="mine", training=training)
    with pytest.raises(ValueError, match=f"{path}: parameterization 'mine' is a custom"):
        group_spec(path, width=1024)
    # a table named like a built-in one was read as that one by recommend: refused where it is named
    table = {l: {"a": 0, "b": 0.5} for l in ("embedding", "hidden", "readout")}
    with pytest.raises(ValueError, match="'mup' is a built-in parameterization's name"):
        SweepSpec(custom_tables={"mup": table})
    older = _file(tmp_path, "older.json", training={**_tuned().training, "custom_tables": {"mup": table}})
    with pytest.raises(ValueError, match="parameterization 'mup' is a custom"):
        abcscale.recommend(width=1024, constants=older)


@pytest.mark.parametrize(("groups", "said"), [
    ("", "error: --tune: empty; name the groups searched with beta"),
    ("gamma,,epsilon", "error: --tune[1]: empty"),
])
def test_an_empty_tune_list_is_a_typo_and_none_is_beta_alone(tmp_path, groups, said):
    """`--tune ''` searched beta alone and `gamma,,epsilon` dropped the empty item, both silently."""
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["tune", *TINY, "--trials", "2", "--tune", groups, "--out", str(out)])
    assert res.exit_code == 2 and " ".join(res.stderr.split()).startswith(said) and not out.exists(), res.output


def test_tune_none_searches_beta_alone(tmp_path):
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["tune", *TINY, "--trials", "2", "--tune", "none", "--out", str(out)])
    assert res.exit_code == 0, res.output
    tuned = load_constants(out)
    assert tuned.settings.tune == [] and set(tuned.history[0].params) == {"beta"}
