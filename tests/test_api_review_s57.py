"""Session 57: a review of the Python API. recommend_from_fit refused width=4096.0 (as nothing else does) and
crashed on a constants mapping; recommend(constants="c.yaml") refused the hand-written file the CLI takes; a
mistyped beta, base_width or base_lr was named `base: beta` / `base: width`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.recommend import Recommendation

GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "alignment": "full"}


@pytest.fixture(scope="module")
def fit():
    return fit_table(synthetic_sweep((64, 128, 256, 512), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2,
                                     group=GROUP), n_boot=50)


def test_recommend_from_fit_takes_a_whole_float_width_and_a_constants_mapping(fit):
    by_int = abcscale.recommend_from_fit(fit, 4096)
    assert abcscale.recommend_from_fit(fit, 4096.0) == by_int
    with pytest.raises(ValueError, match=r"^width: "):
        abcscale.recommend_from_fit(fit, 4096.5)
    doubled = abcscale.recommend_from_fit(fit, 4096, constants={"gamma": 2})
    assert doubled == abcscale.recommend(fit=fit, width=4096, constants={"gamma": 2})
    assert [s.lr for s in doubled.layers] == pytest.approx([2 * s.lr for s in by_int.layers])
    with pytest.raises(ValueError, match=r"^constants"):
        abcscale.recommend_from_fit(fit, 4096, constants={"gamma": -1})


@pytest.mark.parametrize(("name", "text"), [("c.yaml", "gamma: {embedding: 1.34, readout: 38.1}\n"),
                                            ("c.json", '{"gamma": {"embedding": 1.34, "readout": 38.1}}')])
def test_a_hand_written_constants_file_gives_the_clis_answer(tmp_path, monkeypatch, name, text):
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    rec = abcscale.recommend("mup", "adam", width=8192, base_width=32, beta=0.0172, constants=name)
    res = CliRunner().invoke(app, ["recommend", "--constants", name, "-p", "mup", "-o", "adam", "--base-width", "32",
                                   "--base-lr", "0.0172", "-n", "8192", "--json"])
    assert res.exit_code == 0, res.output
    assert rec == Recommendation.model_validate_json(res.stdout)
    assert {s.layer.value: round(s.lr, 7) for s in rec.layers} == {"embedding": 0.0014405, "hidden": 6.72e-05,
                                                                   "readout": 0.0409575}
    (tmp_path / "bad.yaml").write_text("gamma: {embedding: -1}\n")
    with pytest.raises(ValueError, match=r"^constants: bad.yaml: gamma"):
        abcscale.recommend("mup", "adam", width=8192, base_width=32, beta=0.0172, constants="bad.yaml")


@pytest.mark.parametrize(("kw", "said"), [({"beta": "3e-3"}, "beta: "), ({"base_width": "256"}, "base_width: "),
                                          ({"base_lr": "x", "beta": None}, "base_lr: ")])
def test_a_mistyped_base_is_named_by_its_keyword(kw, said):
    args = {"width": 4096, "base_width": 256, "beta": 3e-3, **kw}
    with pytest.raises(ValueError) as err:
        abcscale.recommend("mup", "adam", **args)
    assert str(err.value).startswith(said) and "base: " not in str(err.value), str(err.value)


def test_a_converted_setting_converts_back_with_its_per_layer_epsilon():
    there = abcscale.convert("adam", "standard", "ntk", width=4096, base_width=64)
    got = {k: [getattr(s, k) for s in there.converted.layers] for k in ("lr", "multiplier", "init_std", "epsilon")}
    assert len(set(got["epsilon"])) == 2  # 1e-8 at the embedding, 1.5625e-10 at the hidden and readout layers
    back = abcscale.convert("adam", "ntk", "standard", width=4096, lr=got["lr"], multiplier=got["multiplier"],
                            init_std=got["init_std"], epsilon=got["epsilon"])
    for a, b in zip(back.converted.layers, there.source.layers, strict=True):
        assert (a.lr, a.multiplier, a.init_std, a.epsilon) == pytest.approx((b.lr, b.multiplier, b.init_std, b.epsilon))
    # the CLI takes them as 'e,h,r'; one number stays every layer's
    res = CliRunner().invoke(app, ["theory", "convert", "-o", "adam", "--from", "ntk", "--to", "standard", "-n", "4096",
                                   "--epsilon", ",".join(f"{e:g}" for e in got["epsilon"]), "--json"])
    assert res.exit_code == 0, res.output
    assert [s["epsilon"] for s in json.loads(res.stdout)["source"]["layers"]] == pytest.approx(
        got["epsilon"])
    bad = CliRunner().invoke(app, ["theory", "convert", "-o", "adam", "--from", "ntk", "--to", "standard", "-n", "64",
                                   "--epsilon", "1e-8,x"])
    assert bad.exit_code == 2 and "--epsilon:" in bad.output


def test_an_alignment_past_none_and_full_is_said_by_convert_and_table():
    conv = abcscale.convert("adam", "mup", "standard", width=1024, alignment="2,0.5,1")
    assert any(w.startswith("alignment: alpha 2 outside [1/2, 1]") for w in conv.warnings), conv.warnings
    assert not any(w.startswith("alignment:") for w in abcscale.convert("adam", "mup", "standard", width=1024).warnings)
    res = CliRunner().invoke(app, ["theory", "table", "-p", "mup", "-o", "adam", "-a", "2,0.5,1", "--json"])
    assert res.exit_code == 0 and "alpha 2 outside [1/2, 1]" in " ".join(res.stderr.split())
    assert json.loads(res.stdout)  # the rows, as before


def test_a_numpy_alignment_is_one_alignment_everywhere():
    np = pytest.importorskip("numpy")
    a = np.array([1.0, 0.5, 1.0])
    assert abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=1e-3, alignment=a) == abcscale.recommend(
        "mup", "adam", width=4096, base_width=256, beta=1e-3, alignment="full")
    assert abcscale.convert("adam", "mup", "mf", width=4096, alignment=a) == abcscale.convert(
        "adam", "mup", "mf", width=4096)


def test_a_layer_pinned_on_a_face_is_not_shown_as_free():
    from abcscale.cli.theory import _unique

    rows = {r.layer.value: r for r in abcscale.theory_table("standard", "adam", "0.5,0.5,1")}
    assert not rows["hidden"].unique and rows["hidden"].c_range == (1.0, 1.0)
    assert _unique(rows["hidden"]) == "this layer yes; another's c is free"
    assert _unique(rows["readout"]).startswith("[red]no[/] [1/2, 1]")


def test_second_review_api_edges(fit, tmp_path):
    """A code review of the first fixes: base_lr's range errors, numpy widths, a constants file to
    recommend_from_fit, convert's per-layer epsilon with a None layer or the same number everywhere."""
    np = pytest.importorskip("numpy")
    with pytest.raises(ValueError, match=r"^base_lr: Input should be positive"):
        abcscale.recommend("mup", "adam", width=4096, base_width=256, base_lr=-1)
    assert abcscale.recommend_from_fit(fit, np.int64(4096)) == abcscale.recommend_from_fit(fit, 4096)
    (tmp_path / "constants.yaml").write_text("gamma: {hidden: 2}\n")
    assert abcscale.recommend_from_fit(fit, 4096, constants=tmp_path / "constants.yaml") == \
        abcscale.recommend_from_fit(fit, 4096, constants={"gamma": {"hidden": 2}})
    (tmp_path / "constants.yaml").write_text("gamma: {hidden: -2}\n")
    with pytest.raises(ValueError, match=r"^constants: .*constants.yaml: gamma"):
        abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=1e-3, constants=tmp_path / "constants.yaml")
    muon = abcscale.convert("muon", "standard", "ntk", width=4096, base_width=64)
    eps = [s.epsilon for s in muon.converted.layers]
    assert eps[1] is None  # Muon's hidden matrices have no epsilon
    back = abcscale.convert("muon", "ntk", "standard", width=4096, epsilon=eps)
    assert [s.epsilon for s in back.source.layers] == [eps[0], None, eps[2]]
    assert [s.epsilon for s in back.converted.layers] == [s.epsilon for s in muon.source.layers]  # round trip
    zero = abcscale.convert("adam", "standard", "ntk", width=4096, epsilon=0)
    again = abcscale.convert("adam", "ntk", "standard", width=4096, epsilon=[s.epsilon for s in zero.converted.layers])
    assert [s.epsilon for s in again.source.layers] == [0.0, 0.0, 0.0]
    assert abcscale.convert("adam", "ntk", "standard", width=64, epsilon=np.float32(1e-8)) is not None


def test_convert_epsilons_openapi_bounds_are_json_schema():
    from abcscale.schemas.api import ConvertRequest

    number = ConvertRequest.model_json_schema()["properties"]["epsilon"]["anyOf"][0]
    assert number == {"type": "number", "minimum": 0, "maximum": 1e30}


def test_third_review_api_edges(tmp_path):
    """A review of the second fixes: a tune file given to recommend_from_fit by its path is checked as
    recommend(fit=...) checks it; a per-layer epsilon's layer names are checked before three equal values become one
    number; all None is refused; an integer past the float range is a ValueError."""
    from tests.usecases.test_tune_review import _file

    f = abcscale.fit(synthetic_sweep(widths=(32, 64, 128, 256), seeds=2, step=0.5, half_range=2.0,
                                     group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"},
                                     base_width=32), n_boot=20)
    with pytest.raises(ValueError, match=r"^constants: the file was tuned at width 64, the fit's base width is 32"):
        abcscale.recommend_from_fit(f, 1024, constants=_file(tmp_path))
    at_32 = _file(tmp_path, "t32.json", base_width=32)
    assert abcscale.recommend_from_fit(f, 1024, constants=at_32) == abcscale.recommend(fit=f, width=1024,
                                                                                        constants=at_32)
    for bad, said in (({"embedding": 1e-6, "hidden": 1e-6, "readuot": 1e-6}, "unknown layer 'readuot'"),
                      ([None, None, None], "epsilon"), (10**400, "out of the float range"),
                      ([10**400] * 3, "out of the float range")):
        with pytest.raises(ValueError, match=said):
            abcscale.convert("adam", "ntk", "standard", width=64, epsilon=bad)
    assert abcscale.convert("adam", "ntk", "standard", width=64, epsilon={"emb": 0, "hid": 0, "out": 0}) == \
        abcscale.convert("adam", "ntk", "standard", width=64, epsilon=0)


def test_a_mup_import_says_how_far_the_vector_and_fixed_lrs_move():
    """A review: after `mup import`, recommend trained biases and gains 16x hotter than the team's mup setup; the
    import said so in words only. The warning now gives both numbers and the ratio."""
    res = CliRunner().invoke(app, ["mup", "import", "-o", "adam", "--base-width", "256", "--lr",
                                   "0.048,0.003,0.0001875,0.003,0.003", "--init-std", "1,0.0625,0.00390625", "--json"])
    assert res.exit_code == 0, res.output
    said = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("lr:")]
    assert any("vector-like" in w and "gives them 0.048 at the base width where yours use 0.003 (16x)" in w
               for w in said), said
    assert any("fixed group" in w and "gives it 0.048 where yours uses 0.003 (16x)" in w for w in said), said
