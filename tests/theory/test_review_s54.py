"""A theorist's review of the theory layer against the reference (session 54): 288 exponent tables, 3,648 recommended
values and 3,240 symmetry maps agreed; what did not is here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.enums import Layer
from abcscale.schemas.theory import Constants
from theory.solver import solve_exponents, theory_table

DOC = Path(__file__).resolve().parents[2] / "docs/theory.md"


def test_recommend_takes_a_constants_mapping_beside_weight_decay() -> None:
    """constants={...} (a mapping, as the service takes) with weight_decay= raised AttributeError."""
    kw = {"width": 4096, "base_width": 256, "beta": 3e-3, "weight_decay": 0.1}
    by_dict = abcscale.recommend("mup", "adamw", constants={"gamma": {"embedding": 2.0}}, **kw)
    by_model = abcscale.recommend("mup", "adamw", constants=Constants.model_validate({"gamma": {"embedding": 2.0}}),
                                  **kw)
    assert by_dict.layers == by_model.layers
    assert by_dict.layers[0].weight_decay is not None
    with pytest.raises(ValueError, match="weight_decay: give it as a keyword or in `constants`, not both"):
        abcscale.recommend("mup", "adamw", constants={"weight_decay": 0.2}, **kw)
    with pytest.raises(ValueError, match="constants: gamma"):
        abcscale.recommend("mup", "adamw", constants={"gamma": "x"}, **kw)


@pytest.mark.parametrize(("p", "o", "a", "layer", "alone"), [
    ("standard", "muon", "0.5,0.5,1", "readout", 0.5),  # one point, u > alpha: said "yes" alone before
    ("mup", "sgd", "none", "readout", -0.5),  # u <= alpha, SGD's readout sets the backprop scale
])
def test_a_layer_that_trades_says_so(p: str, o: str, a: str, layer: str, alone: float) -> None:
    sol = solve_exponents(p, o, a)
    assert sol.unique and sol.lower_bounds[Layer(layer)] == alone < sol.c[Layer(layer)]
    assert any("trade" in w and f"{layer} alone could reach c={alone:g}" in w for w in sol.warnings)
    row = next(r for r in theory_table([p], [o], [a]) if r.layer.value == layer)
    assert row.lower_bound == alone
    out = CliRunner().invoke(app, ["theory", "table", "-p", p, "-o", o, "-a", a], terminal_width=200)
    assert out.exit_code == 0
    assert f"yes; trades: alone {'1/2' if alone > 0 else '-1/2'}" in out.output
    rows = json.loads(CliRunner().invoke(app, ["theory", "table", "-p", p, "-o", o, "-a", a, "--json"]).output)
    assert [r["lower_bound"] for r in rows if r["layer"] == layer] == [alone]


def test_no_trade_no_note() -> None:
    """Where every layer is at its own minimum (muP + Adam, full), the table says plain yes and nothing is warned."""
    sol = solve_exponents("mup", "adam", "full")
    assert sol.unique and all(sol.lower_bounds[layer] == sol.c[layer] for layer in sol.c)
    assert not [w for w in sol.warnings if "trade" in w]
    out = CliRunner().invoke(app, ["theory", "table", "-p", "mup", "-o", "adam", "-a", "full"], terminal_width=200)
    assert out.exit_code == 0 and "abc exponents" in out.output, out.output  # the table, printed
    assert "trades" not in out.output


def test_theory_doc_face_ranges_are_the_solvers() -> None:
    """docs/theory.md section 3's standard + Adam at (1/2, 1/2, 1): it said the hidden c ranged over [1/2, 1]."""
    text = " ".join(DOC.read_text().split())
    said = re.search(r"standard \+ Adam at \(1/2, 1/2, 1\) the solver returns \(0, 1, 1\) with `unique: false`: at "
                     r"the smallest total c the readout's exponent ranges over \[1/2, 1\] and the embedding's over "
                     r"\[0, 1/2\], while the hidden c stays 1", text)
    assert said
    sol = solve_exponents("standard", "adam", "0.5,0.5,1")
    assert not sol.unique
    assert sol.c_ranges[Layer.readout] == (0.5, 1.0) and sol.c_ranges[Layer.embedding] == (0.0, 0.5)
    assert sol.c_ranges[Layer.hidden] == (1.0, 1.0)


def test_a_trade_names_who_pays_and_global_mode_does_not_warn_of_it() -> None:
    """"if another layer's LR shrinks instead" named none, and two layers paid; under one global LR every layer takes
    the global c, so the per-layer trade is not that answer's (a code review, session 54)."""
    sol = solve_exponents("mup", "sgd", "none")
    said = next(w for w in sol.warnings if "trade" in w)
    assert "with the embedding's c rising by 0.5 and the hidden's c rising by 0.5" in said
    kw = {"width": 1024, "base_width": 64, "beta": 0.1}
    assert any("trade" in w for w in abcscale.recommend("mup", "sgd", alignment="none", **kw).warnings)
    assert not any("trade" in w for w in abcscale.recommend("mup", "sgd", alignment="none", lr_mode="global",
                                                           **kw).warnings)


def test_a_trade_whose_split_is_not_unique_says_the_total_and_ranges() -> None:
    """standard + SGD at (0, 0, 1/2): the readout alone at 0 costs the others 3/2 in all, split anywhere between
    1/2 and 1 each (it named one split of HiGHS's as if the only one: a code review)."""
    said = next(w for w in solve_exponents("standard", "sgd", "0,0,0.5").warnings if "trade" in w)
    assert "rising by 1.5 in all (the embedding's by 0.5 to 1, the hidden's by 0.5 to 1)" in said


def test_global_lr_leaves_out_every_per_layer_warning_in_recommend_and_the_runner() -> None:
    """A face of per-layer exponents is not a global LR's answer either; the runner said both for a global sweep."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import theory_warnings

    rec = abcscale.recommend("standard", "adam", alignment="0.5,0.5,1", width=1024, base_width=64, beta=0.1,
                             lr_mode="global")
    assert not [w for w in rec.warnings if "not unique" in w or "trade" in w]
    base = {"parameterizations": ["mup"], "optimizers": ["sgd"], "alignments": ["none"], "widths": [32, 64]}
    glob = theory_warnings(SweepSpec.model_validate({**base, "lr_modes": ["global"]}))
    assert not [w for w in glob if "trade" in w]
    per = theory_warnings(SweepSpec.model_validate({**base, "lr_modes": ["global", "per_layer"]}))
    assert [w for w in per if "trade" in w]
