"""Domain names shared by every module, spelled as in Everett et al. (2024)."""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class _AliasedEnum(StrEnum):
    """A string enum that also accepts its aliases and any letter case."""

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {}

    @classmethod
    def _missing_(cls, value: object) -> _AliasedEnum | None:
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            key = cls._aliases().get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        return None

    @classmethod
    def parse(cls, value: str) -> Self:
        """Like ``cls(value)`` but with an error that lists the allowed values."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            extra = cls._aliases()
            if extra:
                allowed += " (aliases: " + ", ".join(f"{k}={v}" for k, v in extra.items()) + ")"
            raise ValueError(f"unknown {cls.label()} {value!r}; allowed: {allowed}{cls._hint(value)}") from None

    @classmethod
    def _hint(cls, value: str) -> str:
        """What to give instead of a refused ``value`` that names something this enum stands for ("; ..."), or ""."""
        return ""

    @classmethod
    def label(cls) -> str:
        return cls.__name__.lower()


class Parameterization(_AliasedEnum):
    """The four abc-parameterizations of docs/theory.md section 1."""

    standard = "standard"
    ntk = "ntk"
    mup = "mup"
    mean_field = "mean_field"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"sp": "standard", "mf": "mean_field", "mfp": "mean_field", "meanfield": "mean_field",
                "mu_p": "mup", "\u00b5p": "mup", "\u03bcp": "mup"}  # µP with the micro sign or the Greek mu


class Optimizer(_AliasedEnum):
    """Optimizer families whose update scale sets the symmetry's k (SGD 2, Adam and AdamW 1, Adafactor 0).

    ``adamw`` is Adam with decoupled weight decay (docs/theory.md section 9): Adam's exponents and epsilon, plus
    a per-layer weight decay. ``lion`` is the sign optimizer (Adam's exponents, no epsilon, coupled weight
    decay); ``muon`` is Muon on hidden matrices with AdamW on the other layers (docs/theory.md section 11).
    """

    sgd = "sgd"
    adam = "adam"
    adafactor = "adafactor"
    adamw = "adamw"
    lion = "lion"
    muon = "muon"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        # microsoft/mup's optimizer classes are the optimizer they wrap (mup/optim.py); any case, as _missing_ reads.
        # The impl= spellings abcscale prints (MuAdam(impl=Lion)) read back as theirs too; MuAdamW is adamw, not muon
        plain = {cls_.lower(): opt for opt, (cls_, impl) in _MUP_WRAPPERS.items() if impl is None and opt != "muon"}
        return plain | {f"{cls_}(impl={impl})".lower(): opt for opt, (cls_, impl) in _MUP_WRAPPERS.items() if impl}

    @classmethod
    def _hint(cls, value: str) -> str:
        # the runner's variants (schemas.tune.VARIANT_FAMILY) train with a family's exponents: name it (a review:
        # `-o adam_scaled` listed the six names, not which one is Adam with parameter scaling's, docs/theory.md s.2)
        from abcscale.schemas.tune import VARIANT_FAMILY

        name = value.strip()
        family = VARIANT_FAMILY.get(name.lower().replace("-", "_"))  # as _missing_ reads a name: Adam-Atan2 too
        return "" if family is None else f"; {name} is the runner's variant of {family.value}: give {family.value}"


#: microsoft/mup's optimizer that runs each of abcscale's, as (class, impl=): MuAdam wraps any per-coordinate
#: optimizer given as impl= (mup/optim.py). mup has no Muon wrapper: muon's non-hidden groups (AdamW) run MuAdamW and
#: its hidden ones plain Muon, which :func:`mup_wrapper` says. The one table every message and alias reads.
_MUP_WRAPPERS: dict[str, tuple[str, str | None]] = {
    "adam": ("MuAdam", None), "adamw": ("MuAdamW", None), "sgd": ("MuSGD", None), "lion": ("MuAdam", "Lion"),
    "adafactor": ("MuAdam", "Adafactor"), "muon": ("MuAdamW", None)}


def mup_wrapper(optimizer: Optimizer | str, *, long: bool = False) -> str:
    """The microsoft/mup optimizer that runs ``optimizer``: ``MuSGD``, ``MuAdam``, ``MuAdamW``,
    ``MuAdam(impl=Lion)``, ``MuAdam(impl=Adafactor)``; for muon (no Muon wrapper) ``MuAdamW/Muon`` in a table's
    header or a sentence, and with ``long`` what runs which groups."""
    opt = Optimizer(optimizer).value
    cls_, impl = _MUP_WRAPPERS[opt]
    name = cls_ if impl is None else f"{cls_}(impl={impl})"
    if opt != "muon":
        return name
    if long:
        return (f"{name} on the non-hidden groups and plain Muon (microsoft/mup has no Muon wrapper) on the hidden "
                "ones")
    return f"{name}/Muon"


def mup_wrapper_call(optimizer: Optimizer | str, *args: str) -> str:
    """The call of :func:`mup_wrapper`'s class with ``args``: ``MuAdam(param_groups, impl=Lion, eps=1e-08)``; for
    muon the call its non-hidden groups take (its hidden ones run plain Muon)."""
    cls_, impl = _MUP_WRAPPERS[Optimizer(optimizer).value]
    first, rest = (args[:1], args[1:]) if args else ((), ())
    return f"{cls_}({', '.join([*first, *([f'impl={impl}'] if impl else []), *rest])})"


class Layer(_AliasedEnum):
    """Layer types: embedding (fixed fan-in), hidden (fan-in and fan-out grow), readout (fan-in grows)."""

    embedding = "embedding"
    hidden = "hidden"
    readout = "readout"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"emb": "embedding", "hid": "hidden", "out": "readout", "output": "readout",
                "unembedding": "readout"}


class LrMode(_AliasedEnum):
    """``per_layer``: eta_l = beta * gamma_l * (n/b)^-c_l; ``global``: one shared LR for all layers."""

    global_ = "global"
    per_layer = "per_layer"

    @classmethod
    def label(cls) -> str:
        return "lr_mode"


class EpsilonMode(_AliasedEnum):
    """Adam epsilon: ``constant`` across width, or ``per_layer`` scaled with each layer's gradient size."""

    constant = "constant"
    per_layer = "per_layer"

    @classmethod
    def label(cls) -> str:
        return "epsilon_mode"


class WeightDecayMode(_AliasedEnum):
    """How the optimizer applies decoupled weight decay (docs/theory.md section 9).

    ``coupled``: the step subtracts lr_l * wd_l * W (PyTorch's and optax's AdamW); ``independent``: it subtracts
    wd * W, whatever the LR.
    """

    coupled = "coupled"
    independent = "independent"

    @classmethod
    def label(cls) -> str:
        return "weight_decay_mode"


LAYERS: tuple[Layer, ...] = (Layer.embedding, Layer.hidden, Layer.readout)
