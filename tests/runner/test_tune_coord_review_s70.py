"""Session 70's user review of ``abcscale tune`` and ``abcscale coord-check``: what it found, pinned.

- coord-check's plot titled an unclear layer FAIL, and gave the worst step's slope where the table shows the step
  that decided the verdict;
- a model whose activations are not finite at step 0 (before any update) read as "lower --log2-base-lr";
- ``tune --seconds inf`` (no --trials) never ended; ``--gamma-range`` with no gamma searched was ignored;
- ``tune --resume`` after a change of setup (another --steps) started a fresh study beside the old one silently, and
  a resumed search's summary counted the stored trials in this run's seconds.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from abcscale.cli import main

TINY = ["--model", "mlp", "--base-width", "16", "--steps", "5", "--batch", "4", "--seq-len", "16", "--depth", "1",
        "--data", "synthetic", "--reeval-seeds", "2", "--top", "1"]


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def _runs(layer: str, steps: list[tuple[float, list[float]]], widths: list[int]) -> pd.DataFrame:
    """Per-seed rows (width, step, layer, layer_type, act_rms): per step, a slope and the seeds' log offsets, each
    seed at width**slope * exp(offset) (the same offsets at every width: a known slope, a known spread)."""
    return pd.DataFrame([{"width": w, "step": step, "layer": layer, "layer_type": "hidden",
                          "act_rms": w ** slope * math.exp(offset)}
                         for step, (slope, offsets) in enumerate(steps) for w in widths for offset in offsets])


def test_the_plot_titles_each_panel_with_the_verdict_and_deciding_step_the_table_shows(tmp_path, monkeypatch):
    import matplotlib.axes

    from abcscale.runner.coord import CoordCheck, judge, plot
    from abcscale.runner.spec import SweepSpec

    # unclear: slope 0.4 at two widths whose seeds scatter by e^+-0.7; FAIL decided at step 1 (0.8, seeds that
    # agree to 1%: its interval lies above the bound) while its worst slope is step 2's 1.0, whose seeds scatter by
    # e^+-1.5 (an interval reaching below the bound)
    unclear = [(0.0, [0.0, 0.7, -0.7, 0.0]), (0.4, [0.0, 0.7, -0.7, 0.0])]
    grows = [(0.0, [0.0, 0.01, -0.01, 0.0]), (0.8, [0.0, 0.01, -0.01, 0.0]), (1.0, [0.0, 1.5, -1.5, 0.0])]
    (u,) = judge(_runs("noisy", unclear, [16, 32]), max_slope=0.25)
    (f,) = judge(_runs("grow", grows, [32, 64, 128]), max_slope=0.25)
    assert u.verdict == "unclear" and f.verdict == "fail" and (f.decisive_step, f.worst_step) == (1, 2)
    table = pd.concat([_runs("noisy", unclear, [16, 32]), _runs("grow", grows, [32, 64, 128])])
    result = CoordCheck(SweepSpec(model="mlp", widths=[16, 32]), 0.25, table, [u, f])
    titles: list[str] = []
    real = matplotlib.axes.Axes.set_title

    def spy(self, label, *args, **kwargs):  # the real title, recorded
        titles.append(str(label))
        return real(self, label, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", spy)
    plot(result, str(tmp_path / "coord.png"))
    assert (tmp_path / "coord.png").stat().st_size > 0
    assert titles[0].startswith("noisy unclear") and "FAIL" not in titles[0]
    k = f.decisive_step
    assert titles[1].startswith("grow FAIL") and f"{f.slopes[k]:+.2f}" in titles[1] and f"t={k}" in titles[1]


def test_activations_not_finite_at_initialisation_are_said_to_be_the_models(tmp_path):
    from abcscale.runner.coord import coord_check
    from abcscale.runner.spec import SweepSpec

    (tmp_path / "nan_model.py").write_text(
        "import jax.numpy as jnp\n\n\n"
        "def factory(width, depth, *, vocab, seq_len):\n"
        "    def apply(params, tokens, record):\n"
        "        x = record('embed', params['tok_embed'][tokens])\n"
        "        h = record('hidden', jnp.tanh(x @ params['fc1']))\n"
        "        return (h @ params['lm_head']) * jnp.nan\n"
        "    return {'shapes': {'tok_embed': (vocab, width), 'fc1': (width, width), 'lm_head': (width, vocab)},\n"
        "            'roles': {'tok_embed': 'embedding', 'fc1': 'hidden', 'lm_head': 'readout'}, 'apply': apply}\n")
    spec = SweepSpec(model=f"{tmp_path / 'nan_model.py'}:factory", widths=[8, 16], depth=1, batch=2, seq_len=4,
                     data="synthetic", eval_batches=1)
    result = coord_check(spec, log2_lr=-6, steps=1, seeds=2)
    logits = next(v for v in result.layers if v.layer == "logits")
    assert logits.verdict == "fail" and 0 in logits.diverged_steps
    said = [n for n in result.notes if "step 0" in n]
    assert len(said) == 1 and "logits" in said[0] and "not the learning rate" in said[0]
    # a finite model that diverges only after its updates gets no such note
    finite = coord_check(SweepSpec(model="mlp", optimizers=["sgd"], widths=[8, 16], depth=1, batch=2, seq_len=4,
                                   data="synthetic", eval_batches=1), log2_lr=20, steps=2, seeds=2)
    assert any(v.diverged_steps for v in finite.layers)
    assert not any(0 in v.diverged_steps for v in finite.layers)
    assert not any("step 0" in n for n in finite.notes)


def test_an_infinite_time_budget_without_trials_is_refused_at_once(tmp_path):
    # a subprocess with a timeout: before the fix the search never ended
    done = subprocess.run([sys.executable, "-m", "abcscale", "tune", *TINY, "--seconds", "inf", "--out",
                           str(tmp_path / "t.json")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --seconds: inf never ends the search") and done.stderr.count("\n") == 1
    assert not (tmp_path / "t.json").exists()


def test_a_gamma_range_with_no_gamma_searched_is_refused(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert _exit(["tune", *TINY, "--trials", "1", "--tune", "none", "--gamma-range", "1:2", "--out", str(out),
                  "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --gamma-range: no gamma is searched (--tune none)") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.e2e
def test_resume_says_when_the_database_holds_another_search_and_counts_the_resumed_trials(tmp_path, capsys):
    from abcscale.usecases.tune import load_constants

    out = tmp_path / "tuned.json"
    base = [*TINY, "--out", str(out), "--resume"]
    assert _exit(["tune", *base, "--trials", "1"]) == 0
    first = load_constants(out)
    capsys.readouterr()
    # the same search with a larger budget resumes: no note, and the summary says one trial was the stored study's
    assert _exit(["tune", *base, "--trials", "2"]) == 0
    got = capsys.readouterr()
    assert "resumed: 1 of 2" in got.err and "other search" not in got.err
    assert "2 trials (1 resumed) in" in got.out
    # another --steps is another study: it starts fresh, and says so (it was silent)
    other = [*base[:base.index("--steps") + 1], "6", *base[base.index("--steps") + 2:]]
    assert _exit(["tune", *other, "--trials", "1", "--quiet"]) == 0
    got = capsys.readouterr()
    assert "holds 1 other search(es)" in got.err and "starts fresh" in got.err and "resumed" not in got.out
    fresh = load_constants(out)
    assert fresh.trials_run == 1 and fresh.training["steps"] == 6
    assert fresh.history[0].loss != first.history[0].loss  # its own trial, trained at 6 steps: not mixed in


def test_a_study_is_named_by_a_user_models_code_not_its_spelling(tmp_path, monkeypatch):
    """`tune --model model.py:factory --resume` after an edit of model.py resumed the study of the code before it
    (the name held the path as written): its trials mixed with the new model's. The name now holds the model's file
    and code (as a sweep's cell key), so another spelling of the same file is the same study, an edit another."""
    from pathlib import Path

    from abcscale.runner.spec import SweepSpec
    from abcscale.usecases.tune import TuneSettings, study_name

    source = (Path(__file__).resolve().parents[2] / "examples" / "user_model.py").read_text()
    (tmp_path / "model.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    settings = TuneSettings(trials=4)

    def name(model: str) -> str:
        return study_name(SweepSpec(model=model, widths=[32]), settings, "data-hash")

    first = name("model.py:factory")
    assert name(f"{tmp_path / 'model.py'}:factory") == name("./model.py:factory") == first  # one file, one study
    (tmp_path / "model.py").write_text(source + "\n# an edit\nSCALE = 2\n")
    assert name("model.py:factory") != first  # another model: another study


def test_the_cli_verdict_blames_the_model_at_step_0_and_plots_refuse_a_file_before_training(tmp_path, capsys):
    """The verdict line said "lower --log2-base-lr" for activations not finite before any update; `--plots FILE` was
    "cannot write into FILE (File exists)", and a folder at DIR/coord.png was found only after the training."""
    (tmp_path / "nan_model.py").write_text(
        "import jax.numpy as jnp\n\n\n"
        "def factory(width, depth, *, vocab, seq_len):\n"
        "    def apply(params, tokens, record):\n"
        "        x = record('embed', params['tok_embed'][tokens])\n"
        "        return (x @ params['lm_head']) * jnp.nan\n"
        "    return {'shapes': {'tok_embed': (vocab, width), 'lm_head': (width, vocab)},\n"
        "            'roles': {'tok_embed': 'embedding', 'lm_head': 'readout'}, 'apply': apply}\n")
    argv = ["coord-check", "-p", "mup", "-o", "adam", "--model", f"{tmp_path / 'nan_model.py'}:factory",
            "--widths", "8,16", "--depth", "1", "--batch", "2", "--seq-len", "4", "--data", "synthetic", "--steps", "1",
            "-q"]
    (tmp_path / "afile").write_text("x")
    assert _exit([*argv, "--plots", str(tmp_path / "afile")]) == 2  # before any training
    assert "--plots: " in (err := " ".join(capsys.readouterr().err.split())) and "is a file" in err, err
    (tmp_path / "plots" / "coord.png").mkdir(parents=True)
    assert _exit([*argv, "--plots", str(tmp_path / "plots")]) == 2
    assert "coord.png is a folder" in " ".join(capsys.readouterr().err.split())
    assert _exit(argv) == 1
    verdict = " ".join(capsys.readouterr().out.split()).split("FAIL: training diverged", 1)[1]  # its own line
    assert "before any update" in verdict and "lower --log2-base-lr" not in verdict, verdict


def test_a_search_whose_every_trial_is_nan_says_so_not_raise_the_budget(tmp_path, capsys):
    """A model whose loss is NaN from its init fails every Optuna trial; tune said "no search trial completed; raise
    --trials or --seconds", which cannot help (a review)."""
    (tmp_path / "nan_model.py").write_text(
        "import jax.numpy as jnp\n\n\n"
        "def factory(width, depth, *, vocab, seq_len):\n"
        "    def apply(params, tokens, record):\n"
        "        return (params['tok_embed'][tokens] @ params['lm_head']) * jnp.nan\n"
        "    return {'shapes': {'tok_embed': (vocab, width), 'lm_head': (width, vocab)},\n"
        "            'roles': {'tok_embed': 'embedding', 'lm_head': 'readout'}, 'apply': apply}\n")
    code = _exit(["tune", "-p", "mup", "-o", "adam", "--model", f"{tmp_path / 'nan_model.py'}:factory",
                  "--base-width", "16", "--steps", "3", "--batch", "2", "--seq-len", "4", "--depth", "1", "--data",
                  "synthetic", "--trials", "2", "--out", str(tmp_path / "c.json"), "-q"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "every one of the 2 search trials ended with a loss that is not finite" in err, err
    assert "raise --trials" not in err
