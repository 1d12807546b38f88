"""A sweep's start-up: the first program starts compiling before the table libraries load (issue 18).

pandas and pyarrow take about 0.3 s to import with the GIL held; loaded before the first trace they delayed the
first compile by as much. They now load on first use, and a sweep imports them while its first program compiles
outside the GIL."""

import os
import subprocess
import sys


def _run(code: str) -> str:
    env = os.environ | {"ABCSCALE_JAX_CACHE": ""}  # compile in the process, whatever earlier tests kept
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_the_sweep_modules_and_its_command_import_no_table_library():
    code = ("import sys, abcscale.runner.sweep, abcscale.runner.store, abcscale.cli.runner\n"
            "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    assert _run(code) == "[]"


def test_a_sweep_compiles_its_first_program_before_pandas_loads(tmp_path):
    code = f"""
import sys
from abcscale.runner import sweep, train
from abcscale.runner.spec import SweepSpec
seen = []
compile_ = train._compile
def spy(*args, **kwargs):
    seen.append(sorted(m for m in ("pandas", "pyarrow") if m in sys.modules))
    return compile_(*args, **kwargs)
train._compile = spy
spec = SweepSpec(model="mlp", widths=[8, 16], depth=1, log2_lr="-6:-4:2", steps=4, batch=4, seq_len=8,
                 data="synthetic", eval_batches=1)
rows = sweep.run_sweep(spec, {str(tmp_path)!r}, progress=False)
print(seen[0], len(seen), len(rows), "pandas" in sys.modules)
"""
    assert _run(code) == "[] 2 4 True"  # two programs (widths), four runs, the tables written with pandas
