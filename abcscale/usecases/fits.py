"""Fit a sweep table, plot a fit, read a fit back (``abcscale fit``, ``POST /v1/fits``, ``--fit fit.json``).

The fitting package (pandas, statsmodels) is imported when a fit is made, so the CLI and the service start
without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from abcscale.schemas.api import FitOptions
from abcscale.schemas.fit import FitResult
from abcscale.schemas.theory import Alignment

if TYPE_CHECKING:
    import pandas as pd


def fit_sweep(table: pd.DataFrame | str | Path, options: FitOptions | None = None, *,
              blowup: float | None = 1.5) -> FitResult:
    """Fit every group of a sweep table (a DataFrame, or a CSV/parquet path) with ``options``' column roles and
    settings. Raises ``TableError`` listing every problem with the table, ValueError for bad settings.
    ``blowup``: a finite loss above this multiple of its curve's best, at a larger LR, counts as diverged."""
    from abcscale.fitting import fit_table, read_table

    options = options or FitOptions()
    df = read_table(table) if isinstance(table, str | Path) else table
    return fit_table(
        df, options.mapping(), target_width=options.target_width, base_width=options.base_width,
        alignment=None if options.alignment is None else Alignment.parse(options.alignment).name,
        n_boot=options.n_boot, seed=options.seed, confidence_level=options.confidence_level, blowup=blowup,
    )


def plot_fit(fit: FitResult, table: pd.DataFrame | str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the fit's plots (loss_vs_lr, lr_vs_width, loss_vs_width PNGs) over the table it was fitted on; a
    ValueError (``TableError`` included) when the table is not that one."""
    from abcscale.fitting import prepare, read_table, write_plots

    df = read_table(table) if isinstance(table, str | Path) else table
    return write_plots(fit, prepare(df, fit.mapping), Path(out_dir))


def load_fit(path: str | Path) -> FitResult:
    """A FitResult from a JSON file (``abcscale fit --out``); a one-line ValueError when it is not one."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"fit: no such file {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ValueError(f"fit: cannot read {path} ({exc.__class__.__name__})") from None
    try:
        return FitResult.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(f"fit: {path} is not JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "top level"
        more = f" and {exc.error_count() - 1} more" if exc.error_count() > 1 else ""
        raise ValueError(f"fit: {path} is not a FitResult ({where}: {first['msg']}{more})") from None


__all__ = ["fit_sweep", "load_fit", "plot_fit"]
