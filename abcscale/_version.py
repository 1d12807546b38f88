"""The installed package's version: the one lookup (the API's ``__version__``, ``/healthz``, fit provenance).

No imports from the rest of the package, so any layer may use it.
"""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def version() -> str:
    """abcscale's version from the package metadata, or ``0+unknown`` for a source tree never installed."""
    try:
        return metadata.version("abcscale")
    except metadata.PackageNotFoundError:
        return "0+unknown"
