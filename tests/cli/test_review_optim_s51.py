"""Session 51's optimizer-coverage review, the CLI side: the mup form's caveats in `recommend --json`'s
top-level warnings (a CI step reads those; they sat in groups.warnings only), an epsilon mode given to an
optimizer without epsilon is said, and `sweep --weight-decay` says it is not recommend's --weight-decay."""

from __future__ import annotations

import json

import pytest

from abcscale.cli import main

TINY = ["-q", "--steps", "2", "--batch", "2", "--seq-len", "4", "--head-dim", "4", "--depth", "1", "--data",
        "synthetic", "--widths", "8", "--log2-lr", "-6", "--seeds", "1"]


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def test_the_mup_forms_caveat_is_a_top_level_warning(capsys):
    code = _run(["recommend", "-p", "mup", "-o", "adafactor", "--width", "4096", "--base-width", "64",
                 "--base-lr", "1e-3", "--form", "mup", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert any("agree at one width only" in w for w in out["warnings"]), out["warnings"]
    assert len(out["warnings"]) == len(set(out["warnings"]))


def test_the_api_and_rest_carry_it_too():
    import abcscale

    rec = abcscale.recommend("mup", "adafactor", width=4096, base_width=64, beta=1e-3, form="mup")
    assert any("agree at one width only" in w for w in rec.warnings)


def test_an_epsilon_mode_without_an_epsilon_is_said(capsys):
    code = _run(["recommend", "-p", "mup", "-o", "sgd", "-n", "1024", "--base-width", "64", "--base-lr", "0.1",
                 "--epsilon-mode", "constant"])
    assert code == 0 and "epsilon_mode: sgd has no epsilon; constant changes nothing" in capsys.readouterr().out


def test_sweeps_weight_decay_says_it_is_not_recommends(tmp_path, capsys):
    code = _run(["sweep", *TINY, "--weight-decay", "0.1", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "--weight-decay 0.1 is an independent decay on every parameter" in err


def test_convert_says_an_adafactor_init_below_the_parameter_scale_floor(capsys):
    """A theory review: muP -> standard at 4096 from 64 puts the readout's init std at 2.4e-4, under Adafactor's
    1e-3 floor on rms(W), where its step is 4x what the symmetry says; it was unsaid."""
    code = _run(["theory", "convert", "-o", "adafactor", "--from", "mup", "--to", "sp", "-n", "4096",
                 "--base-width", "64"])
    captured = capsys.readouterr()
    assert code == 0
    said = " ".join((captured.out + captured.err).split())
    assert "the converted setting's readout 0.000244 below Adafactor's 0.001 floor" in said
    _run(["theory", "convert", "-o", "adam", "--from", "mup", "--to", "sp", "-n", "4096", "--base-width", "64"])
    assert "floor" not in capsys.readouterr().out
    # the source's own init std below the floor (a code review: only the converted one was looked at)
    _run(["theory", "convert", "-o", "adafactor", "--from", "mup", "--to", "ntk", "-n", "4096", "--base-width", "64",
          "--init-std", "0.01,0.0001,0.01"])
    captured = capsys.readouterr()
    assert "the source setting's hidden 0.0001 below" in " ".join((captured.out + captured.err).split())


def test_the_summarys_exponent_reads_as_the_full_jsons(tmp_path, capsys):
    """`fit --summary --json` had {estimate, low, high}, `--json` {estimate, ci: {low, high}}: a CI step reading
    `exponent.ci.low` broke on one of them (session 50's review)."""
    from abcscale.fitting.synthetic import synthetic_sweep

    path = tmp_path / "t.csv"
    synthetic_sweep(widths=(64, 128, 256), seeds=2).to_csv(path, index=False)
    outs = []
    for extra in ([], ["--summary"]):
        code = _run(["fit", str(path), "--n-boot", "30", "--json", *extra])
        assert code == 0
        outs.append(json.loads(capsys.readouterr().out)["groups"][0]["exponent"])
    assert outs[0]["ci"] == outs[1]["ci"] and outs[1]["low"] == outs[1]["ci"]["low"]


def test_recommend_takes_a_hand_written_constants_file(tmp_path, capsys):
    """`recommend --constants` took only `abcscale tune`'s file; the service takes a `constants` block by hand
    (sessions 45-50's "noticed and left"). JSON, YAML and TOML, at the top level or under `constants`."""
    base = ["recommend", "-p", "mup", "-o", "adam", "-n", "1024", "--base-width", "64", "--base-lr", "1e-3"]
    files = {"c.json": '{"gamma": {"hidden": 2.0}}', "c.yaml": "gamma: [1, 2, 1]\n",
             "c.toml": "[constants]\ngamma = [1.0, 2.0, 1.0]\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert _run([*base, "--constants", str(tmp_path / name), "--json"]) == 0
        layers = {x["layer"]: x["lr"] for x in json.loads(capsys.readouterr().out)["layers"]}
        assert layers["hidden"] == pytest.approx(1e-3 * 2 / 16) and layers["embedding"] == pytest.approx(2.5e-4)
    # a flag for a constant the file gives: one source, said; a typo'd layer: the file and the field
    assert _run([*base, "--constants", str(tmp_path / "c.json"), "--gamma", "1,3,1"]) == 2
    assert "--gamma: given by the flag and in --constants" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"gamma": {"hiden": 2}}')
    assert _run([*base, "--constants", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: gamma.hiden" in capsys.readouterr().err
    # a flag the file leaves out applies
    assert _run([*base, "--constants", str(tmp_path / "c.json"), "--epsilon-mode", "constant", "--json"]) == 0
    assert {x["epsilon"] for x in json.loads(capsys.readouterr().out)["layers"]} == {1e-8}
