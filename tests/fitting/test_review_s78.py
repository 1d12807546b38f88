"""Session 78's review of the statistics on tables with a known truth: the one message found wanting. Without a seed
column, a table's several runs of one setting count as runs of other seeds would, so its fit is the seeded table's;
the note said they "narrow the intervals", read as a change a seed column would undo."""

from __future__ import annotations

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep


def test_seedless_reruns_fit_as_seeds_and_the_note_says_when_that_narrows():
    seeded = synthetic_sweep(seeds=2, seed=3)
    with_seeds = abcscale.fit(seeded, target_width=2048, n_boot=50)
    without = abcscale.fit(seeded.drop(columns="seed"), target_width=2048, n_boot=50)
    assert without.groups[0].exponent.ci == with_seeds.groups[0].exponent.ci  # the same fit, as the note now says
    (note,) = [w for w in without.warnings if w.startswith("repeated runs")]
    said = " ".join(note.split())
    assert "each counts as a separate run, as another seed's would: if they are reruns of one seed, that narrows " \
           "the intervals (keep one run per seed); if they are runs with other seeds, the table needs its seed " \
           "column" in said, said
    assert not [w for w in with_seeds.warnings if w.startswith("repeated runs")]


def test_a_mis_logged_learning_rate_is_refused_as_a_mis_logged_loss_is():
    """A loss of 1e308 was refused, a learning rate of 1e300 fitted in silence: it moved the exponent, set the
    largest stable LR to 1e300 and flattened the group's loss-vs-LR plot. Either tail, naming the rows."""
    import pytest

    from abcscale.fitting.table import TableError

    table = synthetic_sweep(seed=3)
    for value in (1e300, 1e-300):
        bad = table.copy()
        bad.loc[7, "beta"] = value
        with pytest.raises(TableError, match=r"beta: row\(s\) 7 hold a learning rate more than 1e\+30x from the "
                                             r"runs' median .* a mis-logged value"):
            abcscale.fit(bad, n_boot=20)
    wide = table.assign(beta=table["beta"] * 1e-12)  # a table of tiny LRs is no outlier of itself
    assert abcscale.fit(wide, n_boot=20).groups[0].exponent is not None


def test_a_panel_with_nothing_to_draw_says_so(tmp_path, monkeypatch):
    """A sweep with no identified optimum at any width (one LR a width) drew lr_vs_width.png as empty panels on
    made-up axes, saying nothing."""
    import abcscale.fitting.plots as plots
    from abcscale.fitting import fit_table
    from abcscale.fitting.table import prepare

    table = synthetic_sweep(seed=3)
    one_lr = table.drop_duplicates(["width"]).reset_index(drop=True)  # one LR at each width: no optimum anywhere
    figures = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.setdefault(path.stem, fig))
    for name, rows in (("one", one_lr), ("full", table)):
        figures.clear()
        fit = fit_table(rows, n_boot=20)
        plots.write_plots(fit, prepare(rows, fit.mapping), tmp_path / name)
        said = {stem: [t.get_text() for ax in fig.axes for t in ax.texts] for stem, fig in figures.items()}
        empty = [stem for stem, texts in said.items() if any("nothing to draw" in t for t in texts)]
        assert empty == ([] if name == "full" else ["lr_vs_width"]), said  # each width's best loss is drawn
    assert said == {"loss_vs_lr": [], "lr_vs_width": [], "loss_vs_width": []}
