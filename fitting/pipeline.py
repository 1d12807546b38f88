"""Fit a sweep table: optimum per width, the across-width law, theory verdict, constants, loss law.

``fit_table`` is what the CLI (``abcscale fit``) and the service call; it is deterministic for a seed
and returns a :class:`schemas.fit.FitResult` with no NaN or inf anywhere (None instead). It is
``prepare`` (validate, then split into typed groups) followed by one fit per group; the plots
(:func:`fitting.plots.write_plots`) draw from the same :class:`Prepared` table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abcscale._version import version
from abcscale.fitting.group import NO_THEORY, fit_group, theory_for_group
from abcscale.fitting.parts import Settings
from abcscale.fitting.reading import read_table
from abcscale.fitting.table import BLOWUP_FACTOR, Prepared, TableError, prepare
from abcscale.schemas.fit import ColumnMapping, FitResult, GroupFit, Provenance
from abcscale.schemas.theory import Alignment

__all__ = ["read_table", "prepare", "fit_table", "fit_file", "TableError", "theory_for_group"]

#: half-width of the local fit's window around the grid argmin, in octaves.
WINDOW_OCTAVES = 1.0


def _settings(target_width: int | None, alignment: str | None, base_width: int | None, n_boot: int,
              confidence_level: float) -> Settings:
    """The checked settings; a ValueError names the first bad one."""
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level: must be in (0, 1), got {confidence_level}")
    if n_boot < 20:
        raise ValueError(f"n_boot: must be >= 20, got {n_boot}")
    for name, v in (("target_width", target_width), ("base_width", base_width)):
        if v is not None and (not isinstance(v, int | np.integer) or v <= 0):
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if alignment is not None:
        Alignment.parse(alignment)
    return Settings(n_boot=n_boot, confidence_level=confidence_level, window=WINDOW_OCTAVES,
                    target_width=None if target_width is None else int(target_width), alignment=alignment,
                    base_width=None if base_width is None else int(base_width))


def _fit(prep: Prepared, s: Settings, seed: int, blowup: float | None) -> FitResult:
    # each group draws from its own stream, so adding a group never changes another's intervals
    groups = [fit_group(data, s, np.random.default_rng([seed, i])) for i, data in enumerate(prep.groups)]
    prov = Provenance(
        input_hash=prep.input_hash, n_rows=prep.n_rows, n_rows_used=prep.n_rows - prep.n_diverged,
        n_diverged=prep.n_diverged, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        abcscale_version=version(),
        settings={"target_width": s.target_width, "alignment": s.alignment, "base_width": s.base_width,
                  "n_boot": s.n_boot, "seed": seed, "confidence_level": s.confidence_level,
                  "window_octaves": WINDOW_OCTAVES, "group_cols": list(prep.group_cols),
                  "constant_cols": list(prep.constant_cols), "loss_col": prep.mapping.loss_col,
                  "blowup_factor": blowup},
    )
    groups, table_notes = _said_once(groups)
    return FitResult(groups=groups, provenance=prov, mapping=prep.mapping,
                     warnings=[*prep.warnings, *table_notes])


def _said_once(groups: list[GroupFit]) -> tuple[list[GroupFit], list[str]]:
    """The theory warning every group gives alike (the table has no theory columns) is the table's: said once
    in the result's warnings, not once per group (64 groups would repeat it 64 times)."""
    if len(groups) < 2:
        return groups, []
    common = [w for w in groups[0].warnings if w.startswith(NO_THEORY) and all(w in g.warnings for g in groups)]
    if not common:
        return groups, []
    return [g.model_copy(update={"warnings": [w for w in g.warnings if w not in common]}) for g in groups], common


def fit_table(
    df: pd.DataFrame,
    mapping: ColumnMapping | None = None,
    *,
    target_width: int | None = None,
    alignment: str | None = None,
    base_width: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
    blowup: float | None = BLOWUP_FACTOR,
) -> FitResult:
    """Fit every group of a sweep table; raises TableError listing every problem with the input.

    Every interval in the result is at ``confidence_level`` and says so (``Interval.confidence_level``),
    as does the theory verdict ``consistent``; the prediction's ``ci68``/``ci95`` bands are fixed. The loss
    is the held-out ``eval_loss`` where the table has it unless ``mapping`` names one (``result.mapping``
    says which); ``blowup`` is :func:`prepare`'s.
    """
    s = _settings(target_width, alignment, base_width, n_boot, confidence_level)
    return _fit(prepare(df, mapping, blowup=blowup), s, seed, blowup)


def fit_file(path: str | Path, mapping: ColumnMapping | None = None, **kwargs: Any) -> FitResult:
    """``read_table`` then ``fit_table``."""
    return fit_table(read_table(path), mapping, **kwargs)
