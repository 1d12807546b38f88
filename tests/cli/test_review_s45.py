"""Session 45: what a CI step reads when a command fails.

A command run with ``--json`` that ends in an error prints one JSON object on stdout saying so (a step that parses
stdout read nothing before), and ``--service`` that gets no answer (unreachable, a 5xx, another program at the URL)
is exit 3, apart from bad input's 2 and a gate's 1.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from typer.testing import CliRunner

from abcscale.cli import app
from tests.usecases.test_check_service import config

runner = CliRunner()


class _Answer(BaseHTTPRequestHandler):
    status, body, kind = 503, b"<html>upstream down</html>", "text/html"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", self.kind)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering():
    """A plain HTTP server answering every POST with the status and body a test sets."""
    servers = []

    def start(status: int, body: bytes, kind: str = "text/html") -> str:
        handler = type("H", (_Answer,), {"status": status, "body": body, "kind": kind})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # a 0.05 s poll: shutdown() waits for it, and the default 0.5 s was half a second per test
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


def _cfg(tmp_path) -> str:
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(config()))
    return str(p)


def test_bad_input_with_json_prints_an_error_object(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({**config(), "widht": 3}))
    res = runner.invoke(app, ["check", str(p), "--json"])
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["exit_code"] == 2
    assert any("widht" in e and "width" in e for e in out["errors"])
    assert "error:" in res.stderr  # the lines are still said on stderr


def test_usage_errors_with_json_are_json_too():
    res = runner.invoke(app, ["recommend", "--widht", "4096", "--json"])
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["exit_code"] == 2 and "--widht" in out["errors"][0]


def test_without_json_stdout_stays_empty(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({**config(), "widht": 3}))
    res = runner.invoke(app, ["check", str(p)])
    assert res.exit_code == 2 and res.stdout == ""


def test_a_json_word_after_the_separator_is_not_the_flag(tmp_path):
    res = runner.invoke(app, ["check", "--", "--json"])
    assert res.exit_code == 2 and not res.stdout.strip().startswith("{")


def test_a_gate_failure_prints_its_report_once(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(config(hidden_factor=8.0)))
    res = runner.invoke(app, ["check", str(p), "--json"])
    assert res.exit_code == 1
    report = json.loads(res.stdout)  # one document: the report, no error object after it
    assert report["failed"] == ["lr (hidden) too high"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_service_failing_is_exit_3(tmp_path, answering, status):
    url = answering(status, b"<html>upstream down</html>")
    res = runner.invoke(app, ["check", _cfg(tmp_path), "--service", url, "--json"])
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["exit_code"] == 3 and f"answered {status}" in out["errors"][0]


def test_another_program_at_the_url_is_said(tmp_path, answering):
    url = answering(200, b"<html>welcome</html>")
    res = runner.invoke(app, ["check", _cfg(tmp_path), "--service", url])
    assert res.exit_code == 2 and "without a recommendation" in res.stderr and "abcscale service" in res.stderr
    assert "Traceback" not in res.output
    url = answering(200, b'{"hello": 1}', "application/json")
    res = runner.invoke(app, ["check", _cfg(tmp_path), "--service", url])
    assert res.exit_code == 2 and "without a recommendation" in res.stderr


def test_fit_on_a_failing_or_foreign_service(tmp_path, answering):
    table = tmp_path / "t.csv"
    table.write_text("width,lr,loss\n32,0.01,3.0\n32,0.02,2.9\n32,0.04,3.1\n")
    res = runner.invoke(app, ["fit", str(table), "--service", answering(503, b"busy"), "--json"])
    assert res.exit_code == 3 and json.loads(res.stdout)["exit_code"] == 3
    res = runner.invoke(app, ["fit", str(table), "--service", answering(201, b'{"id": "x"}', "application/json")])
    assert res.exit_code == 2 and "without a stored fit" in res.stderr and "Traceback" not in res.output


@pytest.mark.parametrize("args, flag", [
    (["sweep", "--out", "", "--widths", "32", "--steps", "2"], "'--out'"),
    (["sweep", "--out=", "--widths", "32", "--steps", "2"], "'--out'"),
    (["fit", "examples/axes.csv", "--out", ""], "'--out'"),
    (["fit", ""], "'table'"),
    (["check", "run.yaml", "--map-file", "m.toml", "--map-file", ""], "'--map-file'"),
    (["tune", "--out", ""], "'--out'"),
])
def test_an_empty_path_is_refused_not_the_working_directory(tmp_path, monkeypatch, args, flag):
    # `--out "$OUT"` with OUT unset: Path("") is ".", and a sweep wrote results.parquet and cells/ among the
    # user's files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").mkdir()
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert flag in res.stderr and "an empty path" in res.stderr and "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples"]  # nothing written


def test_tune_progress_counts_finished_trials_after_a_resume(tmp_path, capsys):
    """A resumed search numbered its lines by Optuna's trial number, which also counts the failed trial a Ctrl-C
    left: 'trial 5/4'. The lines now count finished trials from the stored study's."""
    pytest.importorskip("optuna")
    from abcscale.cli.tune import _Progress
    from abcscale.schemas.tune import TuneSettings
    from abcscale.usecases.tune import search
    from tests.usecases.test_tune_resume import bowl, stopped_at_the_third

    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    settings = TuneSettings(trials=4, top=1, reeval_seeds=2)
    stopped_at_the_third(settings, storage)
    progress, told = _Progress(settings), []

    def on_resume(before: int) -> None:
        told.append(before)
        progress.before = before

    capsys.readouterr()
    search(settings.space(), bowl([]), settings, storage=storage, study_name="s", on_trial=progress,
           on_resume=on_resume)
    assert told == [2]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("trial ")]
    assert [ln.split()[1] for ln in lines] == ["3/4", "4/4"]


def test_an_interrupted_sweep_counts_its_own_runs(tmp_path, monkeypatch):
    """Ctrl-C said how many runs the folder's cell files held, another spec's among them; now this sweep's runs
    kept, of how many."""
    pytest.importorskip("jax")
    import abcscale.runner.sweep as sweep_mod

    base = ["sweep", "--model", "mlp", "--steps", "3", "--batch", "4", "--seq-len", "8", "--log2-lr=-6,-5",
            "--seeds", "1", "--out", str(tmp_path), "-q"]
    assert runner.invoke(app, [*base, "-p", "standard", "--widths", "32"]).exit_code == 0  # 2 runs of another spec
    real, calls = sweep_mod.run_cell, []

    def second_cell_stops(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_mod, "run_cell", second_cell_stops)
    res = runner.invoke(app, [*base, "-p", "mup", "--widths", "32,64", "--log2-lr=-6,-5,-4"])
    assert res.exit_code == 130, res.output
    said = " ".join(res.stderr.split())
    assert "interrupted: 3 of this sweep's 6 runs are kept in" in said and "resumes" in said
    # the same command resumes: only width 64's 3 runs train
    monkeypatch.setattr(sweep_mod, "run_cell", real)
    res = runner.invoke(app, [*base, "-p", "mup", "--widths", "32,64", "--log2-lr=-6,-5,-4", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["runs"] == 6


def test_the_memory_estimate_covers_what_xla_allocates_for_a_run(monkeypatch):
    """The estimate that refuses a sweep too big for the machine took 2.58 GiB a run where a run held 5.08 (width
    256, batch 32 x 512: XLA keeps three attention maps a layer and more activations than it counted), so an
    attention-heavy sweep it let through could still be killed. What XLA allocates for one run's program (its
    arguments, outputs and temporary buffers, from the compiled program's own memory analysis) against the
    estimate: the estimate must hold it, and not by much more.

    Until session 78 this measured two processes' peak resident memory (two runs at once less one), which read 0.0
    of the estimate whenever the two runs did not overlap in time: it failed that way twice in a row beside the
    other worker (2026-12-07), and took 14.6 s. XLA's analysis is deterministic. The same day it gave 0.79 of the
    estimate here (531 MiB against 670), 0.78 at width 256, batch 32 x 512, depth 2 (4.05 GiB against 5.08) and
    0.69 at 256, 64 x 256 (2.45 against 3.58), where peak resident memory, which adds the runtime's own, read
    1.0 / 0.99 of it (the estimate's calibration, ``runner.sweep.memory_need``); without the attention maps' term
    the estimate is 286 MiB here, 1.86 of it too little."""
    pytest.importorskip("jax")
    from abcscale.runner import sweep as sweep_mod
    from abcscale.runner import train
    from abcscale.runner.spec import SweepSpec

    monkeypatch.setenv("ABCSCALE_JAX_CACHE", "")  # compiled here, not loaded: the analysis of this compile
    spec = SweepSpec(widths=[128], depth=1, batch=16, seq_len=512, steps=1, log2_lr=[-6], seeds=1, eval_batches=2)
    (cell,) = spec.cells()
    corpus = spec.corpus()
    prog = sweep_mod._program(spec, cell, sweep_mod.record_steps(spec), spec.curves)
    compiled, _ = train._compile(prog, train._args_spec(prog, 1, corpus.train, corpus.eval))
    stats = compiled.memory_analysis()
    held = (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes)
    estimate = sweep_mod.memory_need(spec, 128, 1)
    assert 0.6 < held / estimate <= 1.0, (held / 2**20, estimate / 2**20)


def test_hydra_references_are_read_where_they_point(tmp_path):
    """A Hydra config's `width: ${model.d_model}` was 'unable to parse string as an integer', its value unsaid."""
    cfg = tmp_path / "train.yaml"
    cfg.write_text("model:\n  d_model: 4096\n  width: ${model.d_model}\noptim:\n  lr: ${optim.base}\n  base: 0.001\n"
                   "  eps: ${oc.env:EPS}\n  wd: lr_${optim.base}\nparameterization: mup\noptimizer: adam\n"
                   "base_width: 256\nbeta: 0.003\n")
    res = runner.invoke(app, ["check", str(cfg), "--map", "width=model.width,lr=optim.lr", "--json"])
    assert res.exit_code == 1, res.output  # read: 0.001 at width 4096 is off theory's LR (a verdict, not exit 2)
    report = json.loads(res.stdout)
    assert report["width"] == 4096 and {c["yours"] for c in report["checks"] if c["setting"] == "lr"} == {0.001}
    for path, says in (("optim.eps", "'${oc.env:EPS}' is a Hydra/OmegaConf interpolation check cannot resolve"),
                       ("optim.wd", "'lr_${optim.base}' is a Hydra/OmegaConf interpolation"),
                       ("model.nope", "which is not in the config")):
        res = runner.invoke(app, ["check", str(cfg), "--map", f"width=model.width,lr=optim.lr,epsilon={path}"])
        assert res.exit_code == 2 and f"epsilon: mapped to '{path}', " in res.stderr and says in res.stderr, res.output
    # a flat config (no map) too, and a reference to itself ends
    flat = tmp_path / "flat.yaml"
    flat.write_text("width: ${width}\nparameterization: mup\noptimizer: adam\nbase_width: 256\nbeta: 0.003\n"
                    "lr: {embedding: 0.001, hidden: '${nope}', readout: 0.001}\n")
    res = runner.invoke(app, ["check", str(flat)])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "width: its value refers to itself" in said
    assert "lr.hidden: its value '${nope}' refers to a key that is not in the config" in said


def test_an_lr_table_of_nulls_names_them(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({**config(), "lr": {"hidden": None}}))
    res = runner.invoke(app, ["check", str(p)])
    assert res.exit_code == 2 and "lr.hidden null" in res.stderr, res.output


def test_a_null_lr_is_said_with_the_other_problems(tmp_path):
    """README: every problem at once. A null LR was said only once an unknown key beside it was fixed."""
    cfg = {k: v for k, v in config().items() if k != "width"} | {"widht": 4096}
    cfg["lr"] = {**cfg["lr"], "hidden": None}
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(p)])
    assert res.exit_code == 2
    assert "lr.hidden: empty (null)" in res.stderr and "widht: unknown key" in res.stderr, res.output


@pytest.mark.parametrize("body", [b'{"detail": ["upstream timed out"]}', b'{"detail": [{"loc": 5, "msg": "x"}]}',
                                  b'{"error": "busy"}', b'[1, 2]'])
def test_a_5xx_in_any_json_shape_is_exit_3(tmp_path, answering, body):
    url = answering(502, body, "application/json")
    res = runner.invoke(app, ["check", _cfg(tmp_path), "--service", url])
    assert res.exit_code == 3 and "answered 502" in res.stderr and "Traceback" not in res.output, res.output


@pytest.mark.e2e
def test_a_resumed_tune_says_what_it_kept_and_counts_on(tmp_path):
    """The whole path: the CLI's on_resume reaches the search through usecases.tune.tune."""
    pytest.importorskip("optuna")
    pytest.importorskip("jax")
    from tests.cli.test_tune import TINY
    from tests.cli.test_tune_resume import _with

    base = [*_with(TINY, "--trials", "2"), "--model", "mlp", "--out", str(tmp_path / "t.json"), "--resume"]
    assert runner.invoke(app, ["tune", *base]).exit_code == 0
    res = runner.invoke(app, ["tune", *_with(base, "--trials", "3")])
    assert res.exit_code == 0, res.output
    assert "resumed: 2 of 3 trials already finished in sqlite:///" in res.stderr
    assert [ln.split()[1] for ln in res.stderr.splitlines() if ln.startswith("trial ")] == ["3/3"]


def test_a_storage_password_is_not_printed(monkeypatch):
    from abcscale.cli.tune import _shown

    assert _shown("postgresql://ci:s3cret@db.internal/optuna") == "postgresql://ci:***@db.internal/optuna"
    assert _shown("sqlite:////tmp/t.db") == "sqlite:////tmp/t.db"


def test_a_null_lr_is_said_beside_an_unresolvable_reference(tmp_path):
    cfg = config()
    cfg["lr"] = {**cfg["lr"], "hidden": None}
    cfg["epsilon"] = "${oc.env:EPS}"
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(p)])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "lr.hidden: empty (null)" in said and "epsilon: its value" in said, res.output


def test_omegaconf_list_indexes_and_unknown_keys_with_references(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("model:\n  layers: [{d: 4096}]\nwidth_ref: ${model.layers[0].d}\noptim: {lr: 0.0002}\n"
                   "hydra: {run: {dir: 'outputs/${now:%Y}'}}\nparameterization: mup\noptimizer: adam\n"
                   "base_width: 256\nbeta: 0.003\n")
    res = runner.invoke(app, ["check", str(cfg), "--map", "width=width_ref,lr=optim.lr", "--json"])
    assert res.exit_code in (0, 1) and json.loads(res.stdout)["width"] == 4096, res.output
    flat = tmp_path / "flat.yaml"
    flat.write_text("hydra: {run: {dir: 'outputs/${now:%Y}'}}\nwidth: 4096\nparameterization: mup\n"
                    "optimizer: adam\nbase_width: 256\nbeta: 0.003\nlr: 0.0002\n")
    res = runner.invoke(app, ["check", str(flat)])
    assert res.exit_code == 2 and "hydra: unknown key" in res.stderr and "cannot resolve" not in res.stderr
