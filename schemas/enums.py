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
            raise ValueError(f"unknown {cls.label()} {value!r}; allowed: {allowed}") from None

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
        # microsoft/mup's optimizer classes are the optimizer they wrap (mup/optim.py); any case, as _missing_ reads
        return {"muadam": "adam", "muadamw": "adamw", "musgd": "sgd"}


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
