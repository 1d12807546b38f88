"""Session 75: XLA reads ``XLA_FLAGS`` once, when JAX starts, but the runner's compilation cache keyed a program by
the variable's value at each compile. A notebook that set a flag after its first sweep compiled without it (XLA never
applied it) and kept the programs under the flag's keys; a process started with the flag then loaded them, and
trained without the flag it was given. The key now holds the options XLA compiles with (``executables.xla_options``),
a later change is said as a warning, and each part's environment records the flags XLA read."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

_FAST = "--xla_cpu_enable_fast_math=true"

_NOTEBOOK = r"""
import json, os, sys, warnings
from pathlib import Path
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import run_sweep
import abcscale.runner.executables as ex
spec = SweepSpec(model="mlp", widths=[16], depth=1, log2_lr=[-6], steps=12, batch=4, seq_len=8, data="synthetic",
                 eval_batches=2, coord_steps=[])
out, cache = Path(sys.argv[1]), Path(os.environ["ABCSCALE_JAX_CACHE"])
said = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run_sweep(spec, out / "first", progress=False)
    said["first"] = [str(w.message) for w in caught]
    files = sorted(p.name for p in cache.glob("*.executable"))
    digest = ex.xla_options()
    os.environ["XLA_FLAGS"] = sys.argv[2]  # a notebook's next cell
    del caught[:]
    run_sweep(spec, out / "second", progress=False)
    said["second"] = [str(w.message) for w in caught]
print(json.dumps({"files": files, "after": sorted(p.name for p in cache.glob("*.executable")), "said": said,
                  "digest": digest, "digest_after": ex.xla_options(), "note": ex.xla_flags_note()}))
"""

_FRESH = r"""
import json, sys
from pathlib import Path
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import run_sweep
from abcscale.runner.store import part_environment
import abcscale.runner.executables as ex
spec = SweepSpec(model="mlp", widths=[16], depth=1, log2_lr=[-6], steps=12, batch=4, seq_len=8, data="synthetic",
                 eval_batches=2, coord_steps=[])
run_sweep(spec, sys.argv[1], progress=False)
part = next(Path(sys.argv[1], "cells").glob("*.rows.parquet"))
print(json.dumps({"digest": ex.xla_options(),
                  "environment": part_environment(Path(sys.argv[1]), part.name.removesuffix(".rows.parquet"))}))
"""


def _run(code: str, *args: str, cache: Path, flags: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"ABCSCALE_JAX_CACHE": str(cache)}
    if flags is not None:
        env["XLA_FLAGS"] = flags
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_flag_set_after_jax_started_is_said_and_not_keyed_and_a_process_started_with_it_compiles_its_own(tmp_path):
    cache = tmp_path / "cache"
    nb = _run(_NOTEBOOK, str(tmp_path / "nb"), _FAST, cache=cache, flags=None)
    assert nb["files"], "the first sweep keeps its programs"
    assert not any("XLA_FLAGS" in m for m in nb["said"]["first"])
    # the second sweep: the same programs as XLA compiles them (nothing new kept under the flag's name) ...
    assert nb["after"] == nb["files"] and nb["digest_after"] == nb["digest"]
    # ... and the user told the flag is not applied, once
    told = [m for m in nb["said"]["second"] if "XLA_FLAGS" in m]
    assert len(told) == 1 and _FAST in told[0] and "new process" in told[0], nb["said"]
    assert nb["note"] == told[0]
    # a process started with the flag compiles with it: other keys, its own programs, not the notebook's
    fresh = _run(_FRESH, str(tmp_path / "fresh"), cache=cache, flags=_FAST)
    assert fresh["digest"] != nb["digest"]
    assert set(p.name for p in cache.glob("*.executable")) > set(nb["files"])
    assert fresh["environment"].endswith(f"; XLA options {fresh['digest'][:12]} (XLA_FLAGS {_FAST!r})"), fresh
    # and one started without it finds the notebook's programs (the same options), recording no flags
    plain = _run(_FRESH, str(tmp_path / "plain"), cache=cache, flags=None)
    assert plain["digest"] == nb["digest"] and "XLA_FLAGS" not in plain["environment"]
    assert plain["environment"].endswith(f"; XLA options {nb['digest'][:12]}")


_STARTED = r"""
import json, os, sys, warnings
import jax.numpy as jnp
from pathlib import Path
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import run_sweep
from abcscale.runner.store import part_environment
import abcscale.runner.executables as ex
jnp.ones(3).block_until_ready()  # a notebook used JAX before its first sweep
os.environ["XLA_FLAGS"] = sys.argv[2]
spec = SweepSpec(model="mlp", widths=[16], depth=1, log2_lr=[-6], steps=12, batch=4, seq_len=8, data="synthetic",
                 eval_batches=2, coord_steps=[])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run_sweep(spec, sys.argv[1], progress=False)
part = next(Path(sys.argv[1], "cells").glob("*.rows.parquet"))
print(json.dumps({"said": [str(w.message) for w in caught], "digest": ex.xla_options(),
                  "environment": part_environment(Path(sys.argv[1]), part.name.removesuffix(".rows.parquet"))}))
"""


def test_a_flag_set_after_the_notebook_used_jax_is_said_though_the_runner_came_later(tmp_path):
    """JAX started before the runner first looked: what XLA read is asked of a fresh process (0.15 s, only then),
    and the part does not claim a flag XLA never applied."""
    out = _run(_STARTED, str(tmp_path / "o"), _FAST, cache=tmp_path / "c", flags=None)
    told = [m for m in out["said"] if "XLA_FLAGS" in m]
    assert len(told) == 1 and "before this process's first sweep" in told[0], out["said"]
    assert "XLA_FLAGS" not in out["environment"] and out["digest"][:12] in out["environment"]
    # the same, the flag unchanged since the start (spelled otherwise): nothing to say, and the flag recorded
    spelled = f" {_FAST}"
    out = _run(_STARTED, str(tmp_path / "p"), spelled, cache=tmp_path / "c", flags=_FAST)
    assert not [m for m in out["said"] if "XLA_FLAGS" in m], out["said"]
    assert out["environment"].endswith(f"(XLA_FLAGS {spelled!r})")


def test_environments_compare_by_the_options_where_both_say_them():
    from abcscale.runner.store import same_environment

    old = "jax 0.10.2 (jaxlib 0.10.2) on cpu (cpu)"  # a part written before session 75
    plain, fast = f"{old}; XLA options 686cd1a9f1dc", f"{old}; XLA options b8206de85509 (XLA_FLAGS {_FAST!r})"
    assert same_environment(old, plain) and same_environment(old, fast) and same_environment(fast, fast)
    assert not same_environment(plain, fast)
    assert same_environment(fast, f"{old}; XLA options b8206de85509 (XLA_FLAGS ' {_FAST}')")  # read the same
    assert not same_environment(old, "jax 0.10.3 (jaxlib 0.10.3) on cpu (cpu)")
    assert not same_environment(plain, "jax 0.10.2 (jaxlib 0.10.2) on gpu (H100); XLA options 686cd1a9f1dc")


@functools.cache
def _options(flags: str | None) -> str:
    """``xla_options()`` of a fresh process started with ``XLA_FLAGS=flags`` (None: unset), as a CLI sweep keys its
    programs by it: a sweep computes it first, before anything starts JAX (runner.sweep), as this process does.
    Cached: the tests below ask the same flags (each process is ~0.7 CPU-s)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | ({"XLA_FLAGS": flags} if flags else {})
    code = "import abcscale.runner.executables as ex; print(ex.xla_options())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()


def test_flags_that_xla_reads_the_same_way_share_programs(tmp_path, monkeypatch):
    """Keyed by what XLA parsed, not the text: the same flag spelled twice over is one set of options (the key of
    every kept program, ``executables.path``; asked without a sweep, which computes it the same way first)."""
    assert _options(_FAST) == _options(f"  {_FAST}  {_FAST} ")
    # and a kept program's file is keyed by those options, whatever XLA_FLAGS says (a review of session 79's trim)
    import numpy as np

    import abcscale.runner.executables as ex
    import abcscale.runner.train as tr
    from abcscale.runner.nn import ModelConfig

    monkeypatch.setattr(ex, "_folder", tmp_path)
    prog = tr.Program(ModelConfig("mlp", 16, 1, 8), "adam", 3, 2)
    args = tr._args_spec(prog, 1, np.zeros(64, np.uint8), np.zeros(64, np.uint8))
    files = {}
    for digest, flags in (("a", _FAST), ("a", f"  {_FAST}  {_FAST} "), ("b", _FAST)):
        monkeypatch.setattr(ex, "xla_options", lambda d=digest: d)
        monkeypatch.setenv("XLA_FLAGS", flags)
        files.setdefault(digest, set()).add(ex.path(prog, args, {}))
    assert len(files["a"]) == 1 and files["a"] != files["b"]


def test_a_folder_written_before_the_options_were_recorded_is_not_said_to_have_trained_elsewhere(tmp_path,
                                                                                                 monkeypatch):
    import warnings

    import abcscale.runner.train as train
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    spec = SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8, data="synthetic",
                     eval_batches=1, coord_steps=[])
    here = train.environment()
    with monkeypatch.context() as m:  # the label as session 74 wrote it
        m.setattr(train, "environment", lambda: here.partition("; XLA options ")[0])
        run_sweep(spec, tmp_path, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_sweep(spec.with_overrides(log2_lr=[-6, -5]), tmp_path, progress=False)
    assert not [w for w in caught if "elsewhere" in str(w.message)]
    with monkeypatch.context() as m, warnings.catch_warnings(record=True) as caught:  # other options: said
        warnings.simplefilter("always")
        m.setattr(train, "environment", lambda: here.partition("; XLA options ")[0] + "; XLA options 0123456789ab")
        run_sweep(spec.with_overrides(log2_lr=[-6, -5, -4]), tmp_path, progress=False)
    assert [w for w in caught if "elsewhere" in str(w.message)]


def test_flags_that_change_no_compiled_code_leave_the_options_alone(tmp_path):
    """Dumps and logs change what XLA writes beside a program, not the program: a debugging run with them on shares
    kept programs and an environment with one without (a review); fast math does not."""

    def fresh(flags: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"XLA_FLAGS": flags}
        done = subprocess.run([sys.executable, "-m", "abcscale.runner._xla"], env=env, capture_output=True,
                              text=True, timeout=120, check=True)
        return done.stdout.strip()

    plain = fresh("")
    assert len(plain) == 64
    assert fresh(f"--xla_dump_to={tmp_path} --xla_dump_hlo_as_text --xla_dump_max_hlo_modules=3") == plain
    assert fresh(_FAST) != plain


def test_a_process_dumping_programs_compiles_under_the_options_of_one_that_does_not(tmp_path):
    """Dump flags the compile options' bindings do not expose (``--xla_dump_include_timestamp``, a review) are left
    out too: the process's options are those of its flags without them."""
    plain = _options(None)
    dumps = f"--xla_dump_to={tmp_path} --xla_dump_include_timestamp --xla_dump_large_constants"
    assert _options(dumps) == plain
    assert _options(f"{_FAST} {dumps}") == _options(_FAST) != plain


def test_dump_flags_in_a_notebook_that_used_jax_first_and_quoted_paths(tmp_path):
    """A notebook started with dump flags whose JAX started before its first sweep is keyed as a CLI process with
    the same flags and told nothing (a review: "start a new process", and another digest); a dump folder with a space,
    quoted as XLA takes it, is left out whole."""
    from abcscale.runner._xla import without_dumps

    spaced = f'--xla_dump_to="{tmp_path / "a b"}" --xla_dump_include_timestamp {_FAST}'
    assert without_dumps(spaced) == _FAST and without_dumps(spaced, keep_all=True) == spaced
    code = ("import json, jax.numpy as jnp; jnp.ones(2).block_until_ready()\n"
            "import abcscale.runner.executables as ex\n"
            "print(json.dumps({'digest': ex.xla_options(), 'note': ex.xla_flags_note()}))")

    def run(flags: str | None) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | ({"XLA_FLAGS": flags} if flags else {})
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    plain, fast = _options(None), _options(_FAST)  # CLI processes with the flags less the dumps
    for flags, want in ((f"--xla_dump_to={tmp_path} --xla_dump_include_timestamp", plain), (spaced, fast)):
        got = run(flags)
        assert got == {"digest": want, "note": None}, (flags, got)
