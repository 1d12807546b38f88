"""The CLI's sweep and coord-check tests train tiny programs, as tests/runner does: the same compile setting
(kept out of a top-level conftest so that ``make bench`` measures at XLA's normal optimisation level)."""

from __future__ import annotations

import os

os.environ.setdefault("ABCSCALE_XLA_OPT_LEVEL", "0")
