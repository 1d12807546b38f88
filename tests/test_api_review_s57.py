"""Session 57: a review of the Python API. recommend_from_fit refused width=4096.0 (as nothing else does) and
crashed on a constants mapping; recommend(constants="c.yaml") refused the hand-written file the CLI takes; a
mistyped beta, base_width or base_lr was named `base: beta` / `base: width`."""

from __future__ import annotations

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
