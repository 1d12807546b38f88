"""Fitting: optimal LRs per width, their scaling exponent across widths, constants, with intervals.

``fit_table`` turns a sweep table into a frozen
:class:`~abcscale.schemas.fit.FitResult`; every interval in it carries its confidence level.
``predict_group`` and ``group_transfer`` answer from a fit alone (JSON in, answer out); ``write_plots``
draws a fit over its prepared table (matplotlib is imported only then).
"""

from abcscale.fitting.joint import fit_joint, predict_joint
from abcscale.fitting.pipeline import fit_file, fit_table, theory_for_group
from abcscale.fitting.plots import write_plots
from abcscale.fitting.predict import expected_penalty, group_transfer, predict_group
from abcscale.fitting.reading import read_table
from abcscale.fitting.table import GroupData, Prepared, TableError, WidthRows, prepare

__all__ = [
    "fit_table",
    "fit_file",
    "prepare",
    "read_table",
    "TableError",
    "Prepared",
    "GroupData",
    "WidthRows",
    "predict_group",
    "group_transfer",
    "expected_penalty",
    "theory_for_group",
    "write_plots",
    "fit_joint",
    "predict_joint",
]
