"""Session 75: a Ray worker reads the user's model and the data itself, and Ray keeps its workers between tasks (and
between sweeps, in a notebook's cluster). A worker kept from an earlier sweep trained the model's code it had loaded
then, under the key of an edit made since (a notebook: 5.5141 after the edit, as before it; a fresh process 5.5171).
Now a worker reads the code as it is at each task, and trains only what the driver's cell id names: a worker reading
other files than the driver trains nothing, and the sweep (or search) stops with a ``model:`` / ``data:`` error,
not Ray's traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import abcscale.runner.sweep as sw
from abcscale.runner.spec import Cell, SweepSpec

ray = pytest.importorskip("ray")

_MODEL = '''
import jax.numpy as jnp

SCALE = 1.0


def make(width, depth, vocab, seq_len):
    shapes = {"emb": (vocab, width), "w": (width, width), "out": (width, vocab)}
    roles = {"emb": "embedding", "w": "hidden", "out": "readout"}

    def apply(params, tokens, record):
        return jnp.tanh(params["emb"][tokens] * SCALE @ params["w"]) @ params["out"]

    return {"shapes": shapes, "roles": roles, "apply": apply}
'''


def _spec(model: Path, **kw) -> SweepSpec:
    base = dict(model=f"{model}:make", widths=[16], depth=1, log2_lr=[-6], steps=10, batch=4, seq_len=8,
                data="synthetic", eval_batches=2, coord_steps=[])
    return SweepSpec(**(base | kw))


@pytest.fixture(scope="module")
def one_worker():
    """One CPU: one worker process, kept and reused by every task, as a cluster keeps them."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_kept_worker_trains_the_model_as_its_file_is_now(one_worker, tmp_path):
    model = tmp_path / "model.py"
    model.write_text(_MODEL)
    first = sw.run_sweep(_spec(model), tmp_path / "a", progress=False, executor="ray")
    model.write_text(_MODEL.replace("SCALE = 1.0", "SCALE = 3.0"))  # a notebook's edit between two sweeps
    edited = sw.run_sweep(_spec(model), tmp_path / "b", progress=False, executor="ray")
    local = sw.run_sweep(_spec(model), tmp_path / "c", progress=False)  # this process reads the edit (session 74)
    assert not np.array_equal(first["final_loss"], local["final_loss"])
    np.testing.assert_array_equal(edited["final_loss"], local["final_loss"])


@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_worker_reading_other_files_trains_nothing_and_the_sweep_says_why(one_worker, tmp_path, monkeypatch):
    model = tmp_path / "model.py"
    model.write_text(_MODEL)
    real = Cell.base_key
    # the driver's ids, as if it had read other files than the worker (an edit since it started, another machine)
    monkeypatch.setattr(Cell, "base_key", lambda self, *a, **k: real(self, *a, **k)[::-1])
    with pytest.raises(ValueError, match=r"^executor: the Ray worker on .* computes another cell id than the sweep"):
        sw.run_sweep(_spec(model, widths=[16, 32]), tmp_path / "out", progress=False, executor="ray")
    assert not list((tmp_path / "out" / "cells").glob("*.parquet"))


_BUG = _MODEL.replace("import jax.numpy as jnp", "import jax\nimport jax.numpy as jnp\nimport numpy as np").replace(
    "return jnp.tanh(params", "return jax.pure_callback(np.tanh, jax.ShapeDtypeStruct((4, 8, 16), jnp.float32), "
    "params")


@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_value_error_from_the_users_code_keeps_rays_traceback(one_worker, tmp_path):
    """Only the runner's own field errors are said as one line: the user's ValueError (here a callback the training
    cannot differentiate, which the model check's forward does not meet) keeps the worker's traceback, its file and
    line, as a local run's does."""
    model = tmp_path / "bugmodel.py"
    model.write_text(_BUG)
    with pytest.raises(ray.exceptions.RayTaskError) as caught:
        sw.run_sweep(_spec(model), tmp_path / "out", progress=False, executor="ray")
    assert isinstance(caught.value, ValueError) and "bugmodel.py" in str(caught.value)


def test_the_worker_task_checks_the_data_and_the_code_it_reads_against_the_drivers_id(tmp_path, monkeypatch):
    """``_run_cell_task`` in this process, as a worker runs it."""
    data = tmp_path / "corpus.txt"
    data.write_bytes(bytes(range(256)) * 40)
    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data=str(data),
                     eval_batches=1, coord_steps=[])
    cell = spec.cells()[0]
    cid = cell.base_key(spec, spec.corpus().sha256)
    args = (spec.model_dump_json(), cell.model_dump_json(), [(-6.0, 0)])
    ran = sw._run_cell_task(*args, cid, sw.worker_identity(spec, cell))
    np.testing.assert_array_equal(ran.rows["final_loss"], sw.run_cell(spec, cell).rows["final_loss"])
    expect = sw.worker_identity(spec, cell)
    # a knob that keys runs, set for the driver (its id and identity), not the worker
    monkeypatch.setenv("ABCSCALE_XLA_OPT_LEVEL", "1")
    knob_id, knob_expect = cell.base_key(spec, spec.corpus().sha256), sw.worker_identity(spec, cell)
    monkeypatch.delenv("ABCSCALE_XLA_OPT_LEVEL")
    with pytest.raises(ValueError, match=r"^executor: the Ray worker .* has other ABCSCALE_XLA_\* settings"):
        sw._run_cell_task(*args, knob_id, knob_expect)
    data.write_bytes(bytes(range(255, -1, -1)) * 40)  # the data edited after the driver read it
    with pytest.raises(ValueError, match="^data: the Ray worker .* reads other data than the sweep started with"):
        sw._run_cell_task(*args, cid, expect)
    model = tmp_path / "model.py"
    model.write_text(_MODEL)
    user = _spec(model)
    ucell = user.cells()[0]
    uid, uexpect = ucell.base_key(user, user.corpus().sha256), sw.worker_identity(user, ucell)
    shutil.copy(model, tmp_path / "kept.py")
    model.write_text(_MODEL.replace("SCALE = 1.0", "SCALE = 2.0"))
    with pytest.raises(ValueError, match="^model: the Ray worker .* reads other code for the model"):
        sw._run_cell_task(user.model_dump_json(), ucell.model_dump_json(), [(-6.0, 0)], uid, uexpect)
    model.write_text((tmp_path / "kept.py").read_text())  # undone: the driver's code again, trained
    assert len(sw._run_cell_task(user.model_dump_json(), ucell.model_dump_json(), [(-6.0, 0)], uid, uexpect).rows) == 1
    # a worker that cannot find the model says so, as a local run does (not "edited since")
    relative = _spec(Path("model.py"))
    rcell = relative.cells()[0]
    monkeypatch.chdir(tmp_path)
    rid, rexpect = rcell.base_key(relative, relative.corpus().sha256), sw.worker_identity(relative, rcell)
    monkeypatch.chdir(tmp_path.parent)  # a worker started in another working directory
    with pytest.raises(ValueError, match=rf"^model: the Ray worker on .*, working directory {tmp_path.parent}: no "
                                         r"such file: model.py \(a worker reads a relative path from its own"):
        sw._run_cell_task(relative.model_dump_json(), rcell.model_dump_json(), [(-6.0, 0)], rid, rexpect)
    # the same code at another place (another machine's checkout): trained, as the driver's id names its code
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(model, elsewhere / "model.py")
    monkeypatch.chdir(elsewhere)
    assert len(sw._run_cell_task(relative.model_dump_json(), rcell.model_dump_json(), [(-6.0, 0)], rid, rexpect).rows)
    (elsewhere / "model.py").write_text(_MODEL.replace("SCALE = 1.0", "SCALE = 5.0"))  # other code there: refused
    with pytest.raises(ValueError, match="^model: the Ray worker .* reads other code for the model"):
        sw._run_cell_task(relative.model_dump_json(), rcell.model_dump_json(), [(-6.0, 0)], rid, rexpect)


@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_search_worker_reading_other_files_refuses_and_the_search_says_why(one_worker, tmp_path, monkeypatch):
    from abcscale.runner.tune import RayEvaluator
    from abcscale.schemas.theory import Constants

    model = tmp_path / "model.py"
    model.write_text(_MODEL)
    real = sw.worker_identity
    monkeypatch.setattr(sw, "worker_identity", lambda spec, cell=None: real(spec, cell) | {"model code": "another"})
    pool = RayEvaluator(_spec(model), 1)
    with pytest.raises(ValueError, match="^model: the Ray worker on .* reads other code for the model than the search"):
        pool.map([(Constants(), 2.0 ** -6, 0)])


@pytest.mark.filterwarnings("ignore:os.fork")
def test_a_cell_whose_parts_trained_in_two_environments_is_said_after_a_ray_sweep(one_worker, tmp_path,
                                                                                   monkeypatch):
    """Where a Ray worker trains is known once its results are back: a folder begun in one environment (here a
    label this process claims) and widened by Ray's worker (its own) mixes two in one cell, and the sweep says so."""
    import warnings

    import abcscale.runner.train as train
    from abcscale.runner.store import SweepWarning

    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data="synthetic",
                     eval_batches=1, coord_steps=[])
    with monkeypatch.context() as m:
        m.setattr(train, "environment", lambda: "jax 0.0 (jaxlib 0.0) on a laptop (cpu)")
        sw.run_sweep(spec, tmp_path, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw.run_sweep(spec.with_overrides(log2_lr=[-6, -5]), tmp_path, progress=False, executor="ray")
    said = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert any("runs trained under more than one environment" in m and "on a laptop" in m
               and train.environment() in m for m in said), said
    with monkeypatch.context() as m:  # across cells too: one width trained there, another by Ray's worker
        m.setattr(train, "environment", lambda: "jax 0.0 (jaxlib 0.0) on a laptop (cpu)")
        sw.run_sweep(spec, tmp_path / "widths", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw.run_sweep(spec.with_overrides(widths=[8, 16]), tmp_path / "widths", progress=False, executor="ray")
    assert any("more than one environment" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:  # one environment: nothing said
        warnings.simplefilter("always")
        sw.run_sweep(spec.with_overrides(log2_lr=[-4]), tmp_path / "one", progress=False, executor="ray")
        sw.run_sweep(spec.with_overrides(log2_lr=[-4, -3]), tmp_path / "one", progress=False, executor="ray")
    assert not [w for w in caught if "environment" in str(w.message)]



def test_a_worker_that_cannot_read_the_data_says_so_in_one_line(tmp_path, monkeypatch):
    """A relative data path read from a worker's own working directory: a ``data:`` error naming the worker and
    where it looked, for a sweep's task and a search's actor alike (a review: Ray's traceback of a
    FileNotFoundError, and ``tune --ray`` exit 1 with 94 lines)."""
    from abcscale.runner.tune import _Actor
    from abcscale.schemas.theory import Constants

    (tmp_path / "corpus.txt").write_bytes(bytes(range(256)) * 40)
    monkeypatch.chdir(tmp_path)
    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data="corpus.txt",
                     eval_batches=1, coord_steps=[])
    cell = spec.cells()[0]
    cid, expect = cell.base_key(spec, spec.corpus().sha256), sw.worker_identity(spec, cell)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the worker's working directory
    said = rf"^data: the Ray worker on .*, working directory {tmp_path / 'elsewhere'}: no such file or directory: "
    with pytest.raises(ValueError, match=said + "corpus.txt"):
        sw._run_cell_task(spec.model_dump_json(), cell.model_dump_json(), [(-6.0, 0)], cid, expect)
    assert "(a worker reads a relative path from its own working directory: give it an absolute path)" in str(
        pytest.raises(ValueError, sw.worker_reads, spec).value)
    absolute = spec.with_overrides(data=str(tmp_path / "gone.txt"))
    assert str(pytest.raises(ValueError, sw.worker_reads, absolute).value).endswith("(this machine has no such file)")
    actor = _Actor(spec, expect)  # Ray builds it in the worker: its refusal is said at its first run
    with pytest.raises(ValueError, match=said):
        actor.run(Constants(), 2.0 ** -6, 0)
    # and the driver says it as one ValueError, whatever exception type carried it
    assert str(sw.ray_value_error(FileNotFoundError("data: no such file or directory: x"))) == \
        "data: no such file or directory: x"
    assert sw.ray_value_error(FileNotFoundError("x: no such file")) is None


@pytest.mark.filterwarnings("ignore:os.fork")
def test_xla_flags_set_after_the_cluster_started_are_said_after_a_ray_sweep(one_worker, tmp_path, monkeypatch):
    """A Ray cluster keeps the environment it started with: a notebook's XLA_FLAGS set after its first Ray sweep is
    not the workers' (a review: trained without it, in silence)."""
    import warnings

    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data="synthetic",
                     eval_batches=1, coord_steps=[])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw.run_sweep(spec, tmp_path / "a", progress=False, executor="ray")
    assert not [w for w in caught if "XLA options" in str(w.message)]  # the cluster's options are this process's
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sw.run_sweep(spec, tmp_path / "b", progress=False, executor="ray")
    said = [str(w.message) for w in caught if "the Ray workers compiled with other XLA options" in str(w.message)]
    assert len(said) == 1 and "ray.shutdown()" in said[0], [str(w.message) for w in caught]


def test_without_ray_installed_a_ray_sweep_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    """``--executor ray`` without ray: a traceback after the checks, the folder begun (session 75); now exit 2 with
    one line before anything, and the Python API's ValueError names the field."""
    import sys

    import abcscale
    from abcscale.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the ray extra imports
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--model", "mlp", "--widths", "8", "--steps", "2", "--batch", "2", "--seq-len", "8", "--out",
              str(out), "--executor", "ray"])
    assert exc.value.code == 2
    said = capsys.readouterr().err.strip()
    assert said == "error: --executor ray: ray is not installed (pip install 'abcscale[ray]')"
    assert not out.exists()
    spec = SweepSpec(model="mlp", widths=[8], steps=2, batch=2, seq_len=8, data="synthetic", eval_batches=1)
    with pytest.raises(ValueError, match=r"^executor: ray is not installed"):
        abcscale.sweep(spec, out, progress=False, executor="ray")
    with pytest.raises(ValueError, match=r"^address: a Ray cluster's address goes with executor='ray'"):
        abcscale.sweep(spec, out, progress=False, address="127.0.0.1:6379")
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:os.fork")
def test_the_python_api_runs_a_ray_sweep(one_worker, tmp_path):
    import abcscale

    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data="synthetic",
                     eval_batches=1, coord_steps=[])
    ray_rows = abcscale.sweep(spec, tmp_path / "ray", progress=False, executor="ray")
    local = abcscale.sweep(spec, tmp_path / "local", progress=False)
    np.testing.assert_array_equal(ray_rows["final_loss"], local["final_loss"])
