"""abcscale: hyperparameter transfer across width for abc-parameterizations.

The Python API (the same answers as the CLI and the REST service)::

    import abcscale
    rec = abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3)   # -> Recommendation
    rec["hidden"].lr                                                                 # per-layer settings

- :func:`recommend`, :func:`recommend_from_fit`, :func:`predict`: settings and LRs at a target width;
- :func:`convert`, :func:`theory_table`: the abc algebra (a setting in another parameterization, exponents);
- :func:`fit`, :func:`load_fit`: fit a sweep table (DataFrame or CSV/parquet path), read a fit's JSON;
- :func:`sweep`: run a JAX sweep (the ``runner`` extra);
- :func:`tune`: tune beta and the per-layer constants at the base width (the ``runner`` extra, optuna);
- the contracts: :class:`Recommendation`, :class:`FitResult`, :class:`Prediction`, :class:`BaseConfig`,
  :class:`Constants`, :class:`Alignment`, :class:`PerLayer`, :class:`ConvertResponse`, :class:`SweepSpec`, ...

Names load on first use (PEP 562), so ``import abcscale`` imports neither JAX, pandas, scipy nor fastapi.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from abcscale._api import (
        convert,
        fit,
        from_mup,
        predict,
        recommend,
        recommend_from_fit,
        sweep,
        theory_table,
        tune,
    )
    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.api import ConvertResponse, FitOptions, MupImport
    from abcscale.schemas.enums import EpsilonMode, Layer, LrMode, Optimizer, Parameterization
    from abcscale.schemas.fit import ColumnMapping, FitResult, GroupFit, JointPrediction, Prediction
    from abcscale.schemas.groups import Form, GroupRule, GroupSpec, Role, RoleSetting
    from abcscale.schemas.recommend import LrBand, Recommendation
    from abcscale.schemas.theory import (
        Alignment,
        BaseConfig,
        Constants,
        ExponentRow,
        Interval,
        LayerSetting,
        PerLayer,
        Setting,
        Transfer,
    )
    from abcscale.schemas.tune import TunedConstants
    from abcscale.usecases import load_fit

    __version__: str

#: public name -> the module that defines it.
_HOME = {
    **dict.fromkeys(["recommend", "recommend_from_fit", "predict", "convert", "theory_table", "fit", "sweep",
                     "tune"], "abcscale._api"),
    "TunedConstants": "abcscale.schemas.tune",
    "load_fit": "abcscale.usecases",
    **dict.fromkeys(["Recommendation", "LrBand"], "abcscale.schemas.recommend"),
    **dict.fromkeys(["FitResult", "GroupFit", "Prediction", "JointPrediction", "ColumnMapping"],
                    "abcscale.schemas.fit"),
    **dict.fromkeys(["Alignment", "BaseConfig", "Constants", "ExponentRow", "Interval", "LayerSetting", "PerLayer",
                     "Setting", "Transfer"], "abcscale.schemas.theory"),
    **dict.fromkeys(["EpsilonMode", "Layer", "LrMode", "Optimizer", "Parameterization"], "abcscale.schemas.enums"),
    **dict.fromkeys(["ConvertResponse", "FitOptions"], "abcscale.schemas.api"),
    "SweepSpec": "abcscale.runner.spec",  # pydantic only: no JAX until a sweep runs
    **dict.fromkeys(["Form", "GroupRule", "GroupSpec", "Role", "RoleSetting"], "abcscale.schemas.groups"),
    "from_mup": "abcscale._api",
    "MupImport": "abcscale.schemas.api",
}


if not TYPE_CHECKING:
    # hidden from type checkers: a module __getattr__ makes every name resolve for them, so a typo
    # (abcscale.recomend) passed mypy; they see the imports above instead
    def __getattr__(name: str) -> Any:
        if name == "__version__":
            from abcscale._version import version

            return version()
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module 'abcscale' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    # the public names and the module's own dunders, not the helpers this file imports (importlib, Any, ...)
    return sorted({*__all__, "__version__", *(n for n in globals() if n.startswith("__") and n.endswith("__"))})


__all__ = [
    "recommend", "recommend_from_fit", "predict", "convert", "theory_table", "fit", "load_fit", "sweep",
    "Recommendation", "LrBand", "FitResult", "GroupFit", "Prediction", "JointPrediction", "ColumnMapping", "FitOptions",
    "Alignment", "BaseConfig", "Constants", "ExponentRow", "Interval", "LayerSetting", "PerLayer", "Setting",
    "Transfer", "ConvertResponse", "EpsilonMode", "Layer", "LrMode", "Optimizer", "Parameterization", "SweepSpec",
    "GroupSpec", "GroupRule", "RoleSetting", "Role", "Form",
    "from_mup", "MupImport", "tune", "TunedConstants",
]
