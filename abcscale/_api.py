"""The documented Python API: keyword forms over the use cases (what ``abcscale/__init__.py`` re-exports).

Each function builds the same typed request the CLI and the REST service build and hands it to
:mod:`abcscale.usecases`, so a number from here equals the CLI's and the service's. Bad input raises a
ValueError (pydantic's ``ValidationError`` is one) that names the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abcscale import usecases
from abcscale.schemas.api import AnalyticRecommend, ConvertRequest, ConvertResponse, FitOptions
from abcscale.schemas.enums import LrMode, Optimizer, Parameterization
from abcscale.schemas.fit import ColumnMapping, FitResult, Prediction
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, ExponentRow, PerLayer

if TYPE_CHECKING:
    import pandas as pd

    from abcscale.runner.spec import SweepSpec

#: what a per-layer argument may be: a PerLayer, one number for every layer, "e,h,r", or a dict by layer.
PerLayerLike = PerLayer | float | str | dict[str, float]
#: a fit, or the path of its JSON (``abcscale fit --out``).
FitLike = FitResult | str | Path


def recommend(
    parameterization: Parameterization | str | None = None,
    optimizer: Optimizer | str | None = None,
    *,
    width: int,
    base_width: int | None = None,
    beta: float | None = None,
    alignment: Alignment | str | None = None,
    lr_mode: LrMode | str = LrMode.per_layer,
    constants: Constants | None = None,
    fit: FitLike | None = None,
    group: str | dict[str, Any] | None = None,
) -> Recommendation:
    """Per-layer multiplier, init std, LR and epsilon at ``width`` (``abcscale recommend``).

    Analytic: ``recommend("mup", "adam", width=4096, base_width=256, beta=3e-3)`` transfers what was tuned at
    ``base_width`` (alignment ``full`` unless given). From a fit: ``recommend(fit="fit.json", width=4096)``
    uses the fitted LR; ``parameterization``, ``optimizer``, ``lr_mode``, ``alignment`` and ``group`` pick the
    fit's group (:func:`abcscale.usecases.selector_from`). ``constants`` are the base-width constants.
    """
    if fit is not None:
        selector = usecases.selector_from(group, parameterization=parameterization, optimizer=optimizer,
                                          lr_mode=lr_mode, alignment=alignment)
        return usecases.recommend_from_fit(_fit(fit), width, selector=selector, constants=constants)
    missing = [k for k, v in (("parameterization", parameterization), ("optimizer", optimizer),
                              ("base_width", base_width), ("beta", beta)) if v is None]
    if missing or group is not None:
        raise ValueError("recommend: the analytic form needs " + ", ".join(missing or ["no group"])
                         + "; or pass fit= for a fit-based recommendation")
    base = BaseConfig.model_validate({**dict(constants or Constants()), "width": base_width, "beta": beta})
    req = AnalyticRecommend.model_validate({
        "parameterization": parameterization, "optimizer": optimizer, "width": width, "base": base,
        "alignment": Alignment.parse(alignment), "lr_mode": lr_mode})
    return usecases.recommend_analytic(req)


def recommend_from_fit(
    fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None, constants: Constants | None = None
) -> Recommendation:
    """Per-layer settings at ``width`` from the fitted LR of the group ``group`` picks (``abcscale recommend
    --fit``); the answer's ``band`` holds the fitted LR's uncertainty."""
    return usecases.recommend_from_fit(_fit(fit), width, selector=usecases.selector_from(group),
                                       constants=constants)


def predict(fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None) -> Prediction:
    """The fitted optimal LR at ``width`` with its bands, safe-side LR and expected loss penalty."""
    from abcscale.fitting import predict_group

    g, _ = usecases.select_group(_fit(fit), usecases.selector_from(group))
    return predict_group(g, width)


def convert(
    optimizer: Optimizer | str,
    source: Parameterization | str,
    target: Parameterization | str,
    *,
    width: int,
    base_width: int | None = None,
    base_lr: float = 1e-3,
    alignment: Alignment | str = "full",
    lr: PerLayerLike | None = None,
    multiplier: PerLayerLike | None = None,
    init_std: PerLayerLike | None = None,
    epsilon: float | None = None,
) -> ConvertResponse:
    """The equivalent setting under ``target`` (``abcscale theory convert``): the analytic setting at ``width``
    from ``base_lr`` at ``base_width``, with ``lr``/``multiplier``/``init_std`` replaced where given."""
    per_layer = {k: PerLayer.parse(v) for k, v in (("lr", lr), ("multiplier", multiplier), ("init_std", init_std))
                 if v is not None}
    req = ConvertRequest.model_validate({
        "optimizer": optimizer, "from": source, "to": target, "width": width, "base_width": base_width,
        "base_lr": base_lr, "alignment": Alignment.parse(alignment), "epsilon": epsilon, **per_layer})
    return usecases.convert_setting(req)


def theory_table(
    parameterization: Parameterization | str | Iterable[Parameterization | str] | None = None,
    optimizer: Optimizer | str | Iterable[Optimizer | str] | None = None,
    alignment: Alignment | str | Iterable[Alignment | str] | None = None,
) -> list[ExponentRow]:
    """The exponent table (``abcscale theory table``): one row per parameterization, optimizer, alignment and
    layer. Each filter is one value or several; none means all (full and no alignment)."""
    ps = [Parameterization.parse(str(p)) for p in _many(parameterization)] or None
    os_ = [Optimizer.parse(str(o)) for o in _many(optimizer)] or None
    als = [Alignment.parse(a) for a in _many(alignment, Alignment)] or None
    return usecases.theory_table(ps, os_, als)


def fit(
    table: pd.DataFrame | str | Path,
    *,
    target_width: int | None = None,
    base_width: int | None = None,
    alignment: Alignment | str | None = None,
    mapping: ColumnMapping | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
) -> FitResult:
    """Fit a sweep table (a DataFrame, or a CSV/parquet path) as ``abcscale fit`` does; ``mapping`` names the
    columns when they are not the sweep-table contract's. Raises ``TableError`` listing every problem."""
    settings: dict[str, Any] = {"target_width": target_width, "base_width": base_width, "n_boot": n_boot,
                                "seed": seed, "confidence_level": confidence_level,
                                "alignment": None if alignment is None else Alignment.parse(alignment)}
    columns = {} if mapping is None else mapping.model_dump()
    return usecases.fit_sweep(table, FitOptions.model_validate({**columns, **settings}))


def sweep(spec: SweepSpec | str | Path, out_dir: str | Path, *, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) a JAX sweep (``abcscale sweep``): ``spec`` is a SweepSpec or the path of its TOML.

    Needs the ``runner`` extra (``pip install 'abcscale[runner]'``); returns the rows of ``results.parquet``.
    """
    try:
        # runner.train imports JAX at the top: a missing runner extra shows here, before any work is done
        from abcscale.runner import train  # noqa: F401
        from abcscale.runner.spec import SweepSpec
        from abcscale.runner.sweep import run_sweep
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("jax", "jaxlib", "optax"):
            raise ImportError(f"abcscale.sweep needs the runner extra (JAX, optax): pip install "
                              f"'abcscale[runner]' ({exc.name} is missing)") from exc
        raise
    if not isinstance(spec, SweepSpec):
        spec = SweepSpec.from_toml(spec)
    return run_sweep(spec, out_dir, progress=progress)


def _fit(fit: FitLike) -> FitResult:
    return fit if isinstance(fit, FitResult) else usecases.load_fit(fit)


def _many(value: Any, scalar: type | None = None) -> list[Any]:
    """``value`` as a list: None -> [], one value (a string, or an instance of ``scalar``) -> [value]."""
    if value is None:
        return []
    if isinstance(value, str) or (scalar is not None and isinstance(value, scalar)):
        return [value]
    return list(value)
