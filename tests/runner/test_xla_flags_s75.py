"""Session 75: XLA reads ``XLA_FLAGS`` once, when JAX starts, but the runner's compilation cache keyed a program by
the variable's value at each compile. A notebook that set a flag after its first sweep compiled without it (XLA never
applied it) and kept the programs under the flag's keys; a process started with the flag then loaded them, and
trained without the flag it was given. The key now holds the options XLA compiles with (``executables.xla_options``),
a later change is said as a warning, and each part's environment records the flags XLA read."""

from __future__ import annotations

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
    assert fresh["environment"].endswith(f"with XLA_FLAGS {_FAST!r}"), fresh["environment"]
    # and one started without it finds the notebook's programs (the same options), recording no flags
    plain = _run(_FRESH, str(tmp_path / "plain"), cache=cache, flags=None)
    assert plain["digest"] == nb["digest"] and "XLA_FLAGS" not in plain["environment"]


def test_flags_that_xla_reads_the_same_way_share_programs(tmp_path):
    """Keyed by what XLA parsed, not the text: the same flag spelled twice over is one set of options."""
    a = _run(_FRESH, str(tmp_path / "a"), cache=tmp_path / "c", flags=_FAST)
    b = _run(_FRESH, str(tmp_path / "b"), cache=tmp_path / "c", flags=f"  {_FAST}  {_FAST} ")
    assert a["digest"] == b["digest"]
