"""The use cases the CLI and the REST service share, so that both give the same answer by construction.

Each takes and returns the typed contracts of :mod:`abcscale.schemas`; the CLI builds them from its flags,
the service from request bodies.

- :mod:`~abcscale.usecases.recommend`: settings at a target width, from theory or a fit; the request from
  loose inputs; the group selector.
- :mod:`~abcscale.usecases.convert`: a setting expressed in another parameterization.
- :mod:`~abcscale.usecases.fits`: fit a sweep table, plot a fit; read a fit back from its JSON.
- :mod:`~abcscale.usecases.check`: gate a planned run's config on the transfer rule (``abcscale check``).
- :mod:`~abcscale.usecases.config_map`: read a config file, or a team's nested config through a map.
- :func:`theory_table` (the exponent table, :func:`abcscale.theory.theory_table`) and :func:`version`.
"""

from abcscale._version import version
from abcscale.theory import theory_table
from abcscale.usecases import check
from abcscale.usecases.convert import convert_setting
from abcscale.usecases.fits import fit_sweep, load_fit, plot_fit
from abcscale.usecases.recommend import (
    LOCAL_FIT,
    recommend,
    recommend_analytic,
    recommend_from_fit,
    recommend_request,
    select_group,
    selector_from,
)

__all__ = [
    "recommend", "recommend_request", "recommend_analytic", "recommend_from_fit", "selector_from", "select_group",
    "LOCAL_FIT", "convert_setting", "fit_sweep", "load_fit", "plot_fit", "theory_table", "version", "check",
]
