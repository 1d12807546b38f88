r"""The (a, b) table of each abc-parameterization and the stability conditions at initialisation.

A layer l of width n has a multiplier :math:`n^{-a_l}` applied in the forward pass and an init std
:math:`n^{-b_l}` (docs/theory.md section 1). The four named parameterizations differ only in these
exponents:

==============  ============  ==========  ==========
name            embedding     hidden      readout
==============  ============  ==========  ==========
standard        (0, 0)        (0, 1/2)    (0, 1/2)
ntk             (0, 0)        (1/2, 0)    (1/2, 0)
mup             (-1/2, 1/2)   (0, 1/2)    (1/2, 1/2)
mean_field      (0, 0)        (1/2, 0)    (1, 0)
==============  ============  ==========  ==========

Activations are O(1) at initialisation when

.. math::

    a_1 + b_1 = 0, \qquad a_l + b_l = 1/2 \ \text{(hidden)}, \qquad a_{L+1} + b_{L+1} \ge 1/2,

which :func:`init_stability_warnings` checks for a custom table.
"""

from __future__ import annotations

import math

from abcscale.schemas.enums import Layer, Parameterization
from abcscale.schemas.theory import ABTable, LayerExponents

E, H, R = Layer.embedding, Layer.hidden, Layer.readout


def _ab(emb: tuple[float, float], hid: tuple[float, float], out: tuple[float, float]) -> ABTable:
    return ABTable(
        embedding=LayerExponents(a=emb[0], b=emb[1]),
        hidden=LayerExponents(a=hid[0], b=hid[1]),
        readout=LayerExponents(a=out[0], b=out[1]),
    )


#: docs/theory.md section 1: (a, b) per layer type, as (embedding, hidden, readout).
AB_TABLES: dict[Parameterization, ABTable] = {
    Parameterization.standard: _ab((0, 0), (0, 0.5), (0, 0.5)),
    Parameterization.ntk: _ab((0, 0), (0.5, 0), (0.5, 0)),
    Parameterization.mup: _ab((-0.5, 0.5), (0, 0.5), (0.5, 0.5)),
    Parameterization.mean_field: _ab((0, 0), (0.5, 0), (1, 0)),
}


def ab_table(parameterization: Parameterization | str | ABTable) -> ABTable:
    """The (a, b) table of a named parameterization, or a custom table passed through.

    Raises ValueError for an unknown name, and for a known name without an entry in :data:`AB_TABLES`.
    """
    if isinstance(parameterization, ABTable):
        return parameterization
    p = Parameterization.parse(parameterization)
    try:
        return AB_TABLES[p]
    except KeyError:
        raise ValueError(
            f"no (a, b) table for parameterization {p.value!r}; add one to AB_TABLES in theory/tables.py"
        ) from None


def parameterization_of(parameterization: Parameterization | str | ABTable) -> Parameterization | None:
    """The named parameterization, or None for a custom table."""
    if isinstance(parameterization, ABTable):
        return None
    return Parameterization.parse(parameterization)


def init_stability_warnings(ab: ABTable) -> list[str]:
    """Stability at initialisation: a1+b1 = 0, a+b = 1/2 (hidden), a+b >= 1/2 (readout)."""
    out = []
    if not math.isclose(ab[E].a + ab[E].b, 0.0, abs_tol=1e-12):
        out.append(f"embedding a+b = {ab[E].a + ab[E].b:g}, stability at init needs 0")
    if not math.isclose(ab[H].a + ab[H].b, 0.5, abs_tol=1e-12):
        out.append(f"hidden a+b = {ab[H].a + ab[H].b:g}, stability at init needs 1/2")
    if ab[R].a + ab[R].b < 0.5 - 1e-12:
        out.append(f"readout a+b = {ab[R].a + ab[R].b:g}, stability at init needs >= 1/2")
    return out
