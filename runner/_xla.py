"""The options XLA compiles with in this process, as a digest (``runner.executables.xla_options``).

XLA parses ``XLA_FLAGS`` once, when JAX starts, and the compile options it builds carry what it parsed: their bytes
say what every program of the process is compiled with. This module imports jaxlib alone, so a fresh process asks it
in 0.15 s (``python -m abcscale.runner._xla`` prints the digest a process started with the current ``XLA_FLAGS``
compiles with).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import re
import sys
from typing import Any

#: debug options that change what XLA writes beside a program (dumps, logs) or how many host devices it makes (the
#: device count is keyed on its own, ``runner.executables``), not the code it compiles: left out, so a run with dumps
#: on shares kept programs and an environment with one without (a review)
_NOT_CODE = ("xla_dump_to", "xla_enable_dumping", "xla_dump_compress_protos", "xla_dump_disable_metadata",
             "xla_dump_fusion_visualization", "xla_dump_hlo_as_dot", "xla_dump_hlo_as_html",
             "xla_dump_hlo_as_long_text", "xla_dump_hlo_as_proto", "xla_dump_hlo_as_text", "xla_dump_hlo_as_url",
             "xla_dump_hlo_module_re", "xla_dump_hlo_pass_re", "xla_dump_hlo_pipeline_re", "xla_dump_hlo_snapshots",
             "xla_dump_max_hlo_modules", "xla_dump_module_metadata", "xla_detailed_logging",
             "xla_gpu_dump_autotune_logs_to", "xla_gpu_dump_autotune_results_to",
             "xla_force_host_platform_device_count")


#: flag names (prefixes) of what :data:`_NOT_CODE` holds and more that the bindings do not expose (jaxlib has a score
#: of ``xla_dump_*`` flags: ``--xla_dump_include_timestamp`` changed the options' bytes, a review): a process's
#: ``XLA_FLAGS`` holding one is keyed as a fresh process without them (the device count is zeroed in the bytes)
_NOT_CODE_FLAGS = ("xla_dump", "xla_gpu_dump", "xla_enable_dumping", "xla_detailed_logging")
#: an ``XLA_FLAGS`` word: a double-quoted value keeps its spaces, as XLA reads it (``--xla_dump_to="/a b"``)
_WORD = re.compile(r'(?:[^\s"]|"[^"]*")+')


def without_dumps(flags: str, *, keep_all: bool = False) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) less the flags that change no compiled code (:data:`_NOT_CODE_FLAGS`;
    ``keep_all``: none left out), its words joined by one space."""
    words = _WORD.findall(flags)
    return " ".join(w for w in words if keep_all or not w.lstrip("-").split("=", 1)[0].startswith(_NOT_CODE_FLAGS))


def compile_options() -> Any:
    """The compile options XLA builds in this process (``XLA_FLAGS`` as it read them: the first call in a process
    makes XLA read the variable, as JAX's start does)."""
    try:
        _jax = importlib.import_module("jaxlib._jax")
    except ImportError:  # jaxlib before 0.6 named it xla_extension
        _jax = importlib.import_module("jaxlib.xla_extension")
    return _jax.CompileOptions()


def digest() -> str:
    """SHA-256 of :func:`compile_options`, less :data:`_NOT_CODE` (each set to its type's zero in every process
    alike)."""
    options = compile_options()
    debug = options.executable_build_options.debug_options
    for name in _NOT_CODE:
        with contextlib.suppress(AttributeError, TypeError):  # a jaxlib without the field, or read-only
            setattr(debug, name, type(getattr(debug, name))())
    return hashlib.sha256(options.SerializeAsString()).hexdigest()


if __name__ == "__main__":
    sys.stdout.write(digest())
