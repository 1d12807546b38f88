"""Session 58: a review of the theory layer against the reference. No number was wrong; what was said about them:
a global LR's note claimed per-layer mode lets every other layer keep a larger LR, and docs claimed the shared c is
the largest per-layer one whenever u <= alpha, both false under SGD (every gradient scale holds the readout's c);
`theory table -o adam -o sgd` kept the last in silence beside the repeatable `-p` (now -o and -a repeat too); the
alignment note quoted omega's range as [1/2, 1]; an (a, b) table given to the API read as names; `convert` said
"not related by the symmetry" and "to keep the symmetry exact" in one answer."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.theory import ABTable, LayerExponents

runner = CliRunner()


def _words(res) -> str:
    return " ".join(res.output.split())


@pytest.mark.parametrize(("optimizer", "alignment"), [("sgd", "0.25,0.5,0.25"), ("sgd", "0.5,0.5,1"),
                                                      ("muon", "0.5,0.5,1"), ("adam", "full"), ("sgd", "none")])
def test_the_global_lr_note_says_which_layers_per_layer_mode_gives_less(optimizer, alignment):
    kw = dict(width=4096, base_width=256, beta=1e-3, alignment=alignment)
    glob = abcscale.recommend("standard", optimizer, lr_mode="global", **kw)
    per = abcscale.recommend("standard", optimizer, lr_mode="per_layer", **kw)
    note = next(w for w in glob.warnings if w.startswith("one global LR"))
    smaller = [s.layer.value for s in per.layers if s.lr < glob[s.layer].lr * (1 - 1e-9)]
    if smaller:  # the note names them, and no longer says every other layer keeps a larger LR
        assert f"per-layer mode gives {' and '.join(smaller)} a smaller LR than this one" in note, note
        assert "keep larger learning rates" not in note
    else:
        larger = [s.layer.value for s in per.layers if s.lr > glob[s.layer].lr * (1 + 1e-9)]
        kept = "larger learning rates" if len(larger) > 1 else "a larger learning rate"
        assert larger and f"per-layer mode lets {' and '.join(larger)} keep {kept}" in note, note
    # SGD's own coupling binds only past none..full (alpha < 1/2); inside it, u > alpha is the reason
    sgd_said = "under SGD every layer's gradient scale depends on the readout's c" in note
    assert sgd_said == (optimizer == "sgd" and bool(smaller) and float(alignment.split(",")[0]) < 0.5)


def test_standard_sgd_at_a_quarter_is_the_example_the_docs_give():
    row = json.loads(runner.invoke(app, ["theory", "table", "-p", "sp", "-o", "sgd", "-a", "0.25,0.5,0.25",
                                         "--json"]).stdout)
    c = {r["layer"]: r["c"] for r in row}
    assert c == {"embedding": -0.5, "hidden": -0.25, "readout": 0.5} and {r["global_c"] for r in row} == {0.25}
    docs = " ".join(open("docs/theory.md").read().split())
    assert "standard + SGD at (1/4, 1/2, 1/4): per-layer (-1/2, -1/4, 1/2), shared 1/4" in docs


def test_inside_none_to_full_sgd_shares_the_largest_c_unless_u_exceeds_alpha():  # what docs/theory.md claims
    from abcscale.theory.solver import solve_exponents

    grid = [x / 10 for x in range(5, 11)]  # steps of 0.1 (docs/theory.md's claim was checked at 0.05 too)
    for p in ("standard", "ntk", "mup", "mean_field"):
        for alpha in grid:
            for u in grid:
                sol = solve_exponents(p, "sgd", f"{alpha},0.5,{u}")
                assert (sol.global_c < max(sol.c.values()) - 1e-9) <= (u > alpha), (p, alpha, u)


def test_theory_tables_filters_all_repeat():
    res = runner.invoke(app, ["theory", "table", "-p", "sp", "-p", "mup", "-o", "adam", "-o", "sgd,lion", "-a", "full",
                              "-a", "none", "-a", "1,0.5,1", "--json", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    seen = {(r["parameterization"], r["optimizer"], r["alignment"]["alpha"]) for r in rows}
    assert seen == {(p, o, a) for p in ("standard", "mup") for o in ("adam", "sgd", "lion") for a in (1.0, 0.5)}
    assert len(rows) == 3 * len(seen)  # "1,0.5,1" is full again: no row twice
    res = runner.invoke(app, ["theory", "table", "-o", "adam", "-o", "adamax"])
    assert res.exit_code == 2 and "--optimizer" in _words(res)


def test_omegas_note_says_its_value_at_both_ends():
    res = runner.invoke(app, ["theory", "table", "-p", "mup", "-o", "adam", "-a", "1,0,1"])
    said = _words(res)
    assert res.exit_code == 0 and "omega 0, where full and no alignment both have 1/2" in said, said
    assert "omega 0 outside [1/2, 1]" not in said
    res = runner.invoke(app, ["theory", "table", "-p", "mup", "-o", "adam", "-a", "2,0.5,0.25"])
    assert "alpha 2, u 0.25 outside [1/2, 1]" in _words(res) and "omega" not in _words(res)


def test_an_ab_table_given_to_the_api_is_said_as_one():
    t = ABTable(embedding=LayerExponents(a=0, b=0.25, c=0), hidden=LayerExponents(a=0, b=0.5, c=0),
                readout=LayerExponents(a=0, b=0.5, c=0))
    with pytest.raises(ValueError, match=r"got an object of type ABTable \(a custom \(a, b\) table is a sweep's"):
        abcscale.theory_table(t, "adam", "full")


def test_convert_does_not_claim_a_symmetry_it_just_denied():
    res = abcscale.convert(optimizer="adam", source="standard", target="mup", width=4096, base_width=256,
                           base_lr=1e-3)
    said = " ".join(res.warnings)
    assert "not related by the symmetry" in said and "to keep the symmetry exact" not in said
    assert "Adam epsilon was rescaled with the layer (eps * t), so that at this width" in said
    same = abcscale.convert(optimizer="adam", source="standard", target="ntk", width=4096, base_width=256,
                            base_lr=1e-3)
    assert not any("not related" in w for w in same.warnings)


@pytest.mark.parametrize(("optimizer", "alignment"), [("adam", "0.5,0.5,1"), ("sgd", "0.5,0.5,1"), ("adam", "full")])
def test_a_global_lr_answer_is_one_point(optimizer, alignment):
    # one shared c: "unique: false" was the per-layer face's, beside warnings global mode had dropped (a review)
    kw = dict(width=4096, base_width=256, beta=1e-3, alignment=alignment)
    per = abcscale.recommend("standard", optimizer, lr_mode="per_layer", **kw)
    glob = abcscale.recommend("standard", optimizer, lr_mode="global", **kw)
    assert glob.unique
    assert per.unique == abcscale.theory_table(["standard"], [optimizer], [alignment])[0].unique
    assert not any("not unique" in w for w in glob.warnings)
