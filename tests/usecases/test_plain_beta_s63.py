"""An SP team's LR given as muP's beta in the multiplier_free form (session 63, a review): at the base width the
roles' LRs already differed from it (Adam at 256: embedding 16x, readout 1/16), unsaid, where the mup form said it.
The note says the factors and the `mup import` that carries the team's own model, whose LRs at the base width are
then all the tuned one."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

NOTE = "multiplier_free form: at the base width"


@pytest.mark.parametrize(("optimizer", "embedding"), [("adamw", 16.0), ("adam", 16.0), ("sgd", 256.0)])
def test_the_plain_form_says_what_beta_gives_at_the_base_width(optimizer, embedding):
    rec = abcscale.recommend("mup", optimizer, width=2048, base_width=256, beta=3e-3, form="plain")
    (note,) = [w for w in rec.warnings if w.startswith(NOTE)]
    assert f"{embedding:g}x" in note and "abcscale mup import -o " + optimizer in note
    at_base = abcscale.recommend("mup", optimizer, width=256, base_width=256, beta=3e-3, form="plain")
    assert at_base.groups["embedding"].lr == pytest.approx(embedding * 3e-3)  # what the note says, measured


def test_nothing_is_said_where_the_constants_were_chosen_or_nothing_differs(tmp_path):
    said = [w for kw in ({"form": "abc"}, {"form": "mup"}) for w in
            abcscale.recommend("mup", "adam", width=2048, base_width=256, beta=3e-3, **kw).warnings]
    assert not any(w.startswith(NOTE) for w in said)  # abc: the multipliers carry it; mup: its own note
    chosen = abcscale.recommend("mup", "adam", width=2048, base_width=256, beta=3e-3, form="plain",
                                constants={"gamma": [16, 1, 0.0625]})
    assert not any(w.startswith(NOTE) for w in chosen.warnings)
    sp = abcscale.recommend("standard", "adam", width=2048, base_width=256, beta=3e-3, form="plain")
    assert not any(w.startswith(NOTE) for w in sp.warnings)
    # the path the note gives: its LRs at the base width are the tuned one on every matrix, and it says nothing
    r = CliRunner().invoke(app, ["mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--init-std",
                                 "0.02,0.02,0.02", "--json"])
    assert r.exit_code == 0, r.output
    (tmp_path / "sp.json").write_text(r.stdout)
    carried = abcscale.recommend(width=256, constants=str(tmp_path / "sp.json"), form="plain")
    assert not any(w.startswith(NOTE) for w in carried.warnings)
    assert [carried.groups[k].lr for k in ("embedding", "hidden", "readout")] == pytest.approx([3e-3] * 3)
    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "--width", "2048", "--base-width", "256",
                                   "--base-lr", "3e-3", "--form", "plain", "--json"])
    assert any(w.startswith(NOTE) for w in json.loads(cli.stdout)["warnings"])


def test_other_parameterizations_get_the_gammas_that_make_beta_every_roles_lr():
    # a theory review: NTK + SGD's plain hidden and readout LRs were beta/256 at the base width, unsaid
    rec = abcscale.recommend("ntk", "sgd", width=1024, base_width=256, beta=0.1, form="plain")
    (note,) = [w for w in rec.warnings if w.startswith(NOTE)]
    gammas = note.split("--gamma ")[1].split(" ")[0]
    fixed = abcscale.recommend("ntk", "sgd", width=256, base_width=256, beta=0.1, form="plain",
                               constants={"gamma": [float(g) for g in gammas.split(",")]})
    assert [fixed.groups[k].lr for k in ("embedding", "hidden", "readout")] == pytest.approx([0.1] * 3)


def test_the_global_footnote_says_the_rows_differ_outside_the_abc_form():
    # "the one global LR, as every row" beside rows of 0.016, 0.001 and 6.25e-05 (a theory review)
    def footnote(form: str) -> str:
        r = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "256", "--base-width", "256",
                                     "--base-lr", "1e-3", "--lr-mode", "global", "--form", form])
        assert r.exit_code == 0, r.output
        return " ".join(r.output.split())

    assert "the one global LR, as every row" in footnote("abc")
    plain = footnote("plain")
    assert "as every row" not in plain and "so the rows differ" in plain
