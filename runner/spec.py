"""The sweep spec: what to train and at which learning rates. Pydantic only, no JAX.

Defaults live here and nowhere else. A TOML file holds the same keys, at top level or under ``[sweep]``::

    model = "transformer"
    parameterizations = ["standard", "mup"]
    optimizers = ["adam"]
    lr_modes = ["global"]
    widths = [32, 64, 128]
    log2_lr = "-12:-4:0.5"      # or an explicit list of log2 learning rates
    epsilon = 1e-8              # a base-width constant: flat, or under [sweep.constants]

The base-width constants are the one :class:`~abcscale.schemas.theory.Constants` model (``spec.constants``);
their keys (``init_scale``, ``multiplier``, ``epsilon``, ``epsilon_mode``, ``gamma``) may also be written at
the top level, as the CLI flags are (not both ways in one spec). ``gammas`` sweeps several LR constants; it defaults to
``[constants.gamma]``.

Weight decay comes two ways (docs/theory.md section 9). A sweep's top-level ``weight_decay`` is its own key: the
plain independent form (each step subtracts wd * W from every parameter, whatever the LR, the same at every
width), applied to every variant. ``constants.weight_decay`` (with ``constants.weight_decay_mode``, written under
``[sweep.constants]``) is the decay tuned at the base width (AdamW's, Lion's, Muon's; SGD's L2 term): the theory
engine's per-layer transfer rule gives each layer its own decay at each width (coupled: wd_l = wd * (n/b)^c_l, so
lr_l * wd_l stays put), applied to
the matrices by the ``adamw``, ``lion`` and ``muon`` variants, and by ``sgd`` as its L2 term. A spec with a nonzero
one refuses optimizers without such a decay rather than ignoring it for them.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib.util
import itertools
import json
import math
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from abcscale.schemas.enums import LrMode, Optimizer, Parameterization
from abcscale.schemas.numbers import as_said, as_typed, read_whole
from abcscale.schemas.theory import MAX_WIDTH, SCALE_MAX, ABTable, Alignment, Constants, PerLayer, nest_constants
from abcscale.schemas.tune import VARIANT_EPSILON, VARIANT_FAMILY
from abcscale.theory.rules import layer_rules

if TYPE_CHECKING:
    from abcscale.runner.data import Corpus

#: optimizer variants the runner trains -> the optimizer family whose exponents the theory engine uses.
OPTIMIZER_FAMILY: dict[str, Optimizer] = VARIANT_FAMILY
#: the variants whose chain applies the per-layer decay (runner.optim's ``decays``; a test keeps the two alike):
#: AdamW's, Lion's and Muon's decoupled decay, and SGD's L2 term (its theory carries it where one is given)
DECAYING_VARIANTS = frozenset({"adamw", "lion", "muon", "sgd"})
_OPT_ALIASES = {"atan2": "adam_atan2", "adam-atan2": "adam_atan2", "adam_param_scaling": "adam_scaled",
                "adam-scaled": "adam_scaled"}


def _uses_epsilon(name: str) -> bool:
    """Whether the runner's variant ``name`` reads an epsilon (runner.optim's ``uses_epsilon``, without JAX)."""
    how = VARIANT_EPSILON.get(name)
    return how == "flat" or (how is None and layer_rules(OPTIMIZER_FAMILY[name]).has_epsilon)


def parse_optimizer(value: str) -> str:
    key = _OPT_ALIASES.get(value.strip().lower(), value.strip().lower())
    if key not in OPTIMIZER_FAMILY:
        raise ValueError(f"unknown optimizer {value!r}; allowed: {', '.join(OPTIMIZER_FAMILY)}")
    return key


#: The most learning rates a grid may hold (a STEP of 1e-5 over two octaves would be 200,000 runs a cell).
MAX_GRID = 1000


def parse_lr_grid(value: Any) -> list[float]:
    """``"START:STOP:STEP"`` (STOP included), one number, or a list of log2 learning rates; every one finite
    (log2 LRs within +-1000: a float LR ends at 2^1024) and at most :data:`MAX_GRID` of them."""
    if isinstance(value, int | float):
        grid = [float(value)]
    elif isinstance(value, str):
        parts = value.split(":")
        if len(parts) == 1:
            items = value.split(",") if value.strip() else []
            if empty := [i for i, p in enumerate(items) if not p.strip()]:  # '-6,,-4': a typo, not nothing
                raise ValueError(f"item [{empty[0]}] of {value!r} is empty")
            grid = [float(p) for p in items]
        elif len(parts) != 3:
            raise ValueError(f"expected START:STOP:STEP, got {value!r}")
        else:
            start, stop, step = (float(p) for p in parts)
            if not all(map(math.isfinite, (start, stop, step))):
                raise ValueError(f"START, STOP and STEP must be finite numbers, got {value!r}")
            if step <= 0 or stop < start:
                raise ValueError(f"expected START <= STOP and STEP > 0, got {value!r}")
            if (far := next((g for g in (start, stop) if abs(g) > 1000), None)) is not None:
                raise ValueError(f"log2 learning rates must be finite numbers within +-1000, got {far:g}")
            # the count as a float first: a STEP of 4e-324 made it inf, and math.floor(inf) an OverflowError
            # traceback (session 80's review)
            count = (stop - start) / step
            if not count < 1e9 or (n := math.floor(count + 1e-9) + 1) > MAX_GRID:
                said = f"{math.floor(count + 1e-9) + 1} learning rates" if count < 1e9 else \
                    f"about {count:.3g} learning rates" if math.isfinite(count) else "more learning rates than a " \
                    "float counts"
                raise ValueError(f"{value!r} is {said}; a grid holds at most {MAX_GRID}")
            grid = [round(start + i * step, 10) for i in range(n)]
    else:
        try:
            grid = [float(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected log2 learning rates (numbers), got {value!r}") from None
    if bad := [g for g in grid if not (math.isfinite(g) and abs(g) <= 1000)]:
        raise ValueError(f"log2 learning rates must be finite numbers within +-1000, got {bad[0]}")
    if len(grid) > MAX_GRID:
        raise ValueError(f"{len(grid)} learning rates; a grid holds at most {MAX_GRID}")
    return grid


ModelKind = Literal["transformer", "mlp"]
#: one run of a cell: (log2 LR, seed)
Run = tuple[float, int]
#: the built-in models; anything else in ``model`` is a factory reference (runner.user)
BUILTIN_MODELS = ("transformer", "mlp")
#: the data sets the runner ships or makes; anything else in ``data`` is a path
BUILTIN_DATA = ("default", "synthetic")
AttnScale = Literal["sqrt", "linear"]
Schedule = Literal["cosine", "constant"]
Batching = Literal["auto", "vmap", "single"]


#: keys a sweep does not have, and where what they mean is written
_MISPLACED = {
    **{k: f"the key is {k}s (a list: the sweep trains each)" for k in
       ("parameterization", "optimizer", "alignment", "lr_mode", "width")},
    "weight_decay_mode": "it goes with constants.weight_decay, under [sweep.constants] (the top-level weight_decay "
                         "is independent: its own mode)",
}

#: Constants fields that are not flat keys of a sweep (its top-level ``weight_decay`` is the independent one)
_NOT_CONSTANTS = frozenset({"weight_decay", "weight_decay_mode"})
#: the flat keys that go into ``constants``
_FLAT_CONSTANTS = {k: k for k in Constants.model_fields if k not in _NOT_CONSTANTS}


def _split(value: Any) -> Any:
    """A comma list's items, an empty one kept (the item's own check refuses it, naming it: ``widths[1]``)."""
    if not isinstance(value, str):
        return value
    return [p.strip() for p in value.split(",")] if value.strip() else []


#: the spec's fields that are true/false (any other field given a TOML boolean is refused)
_BOOL_FIELDS = frozenset({"curves"})
#: most updates a run takes, and most tokens a step draws (batch x seq_len): a sweep of small widths needs far
#: fewer, and a typo past them (`--steps 100000000000`) allocated hundreds of GiB and died on a traceback
MAX_STEPS = 10_000_000
MAX_STEP_TOKENS = 2**22
#: most data windows a run draws (steps x batch): their start offsets are drawn up front, 8 bytes each
MAX_WINDOWS = 2**27
#: elements a parameter's init draws from one 32-bit counter (runner.draws)
MAX_PARAM_ELEMENTS = 2**32 - 1


def _bool_inside(value: Any, where: str = "") -> str | None:
    """Where a bool sits in a value (``""`` itself, ``"[0]"`` in a list, ``".gamma"`` in a table), or None."""
    if isinstance(value, bool):
        return where
    if isinstance(value, list | tuple):
        return next((w for i, x in enumerate(value) if (w := _bool_inside(x, f"{where}[{i}]")) is not None), None)
    if isinstance(value, dict):
        return next((w for k, x in value.items() if (w := _bool_inside(x, f"{where}.{k}")) is not None), None)
    return None


def largest_matrix(model: str, width: int, seq_len: int, vocab: int = 256) -> int:
    """Elements of a built-in model's largest parameter at ``width`` (0 for a user's model, unknown here)."""
    if model == "transformer":
        return max(vocab * width, seq_len * width, 4 * width * width)
    if model == "mlp":
        return max(vocab * width, width * width)
    return 0


def built_in_params(model: str, width: int, depth: int, seq_len: int, vocab: int = 256) -> int:
    """Parameters of a built-in model at ``width`` (runner.transformer / runner.mlp param_specs, counted without
    building them); 0 for a user's model."""
    if model == "transformer":
        return 2 * vocab * width + seq_len * width + width + depth * (12 * width * width + 2 * width)
    if model == "mlp":
        return 2 * vocab * width + depth * width * width
    return 0


def _item(value: Any) -> Any:
    """One item of a comma list: an empty one (``32,,64``) is a typo, not nothing."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("empty")
    return value


def _whole(value: Any) -> Any:
    """A width written as a whole number in a float's form (``1.6e1``, ``16.0``) as that number: ``--width``,
    ``--base-width`` and tune's ``--verify-widths`` took ``1.6e1`` where ``--widths`` refused it as "unable to
    parse string as an integer" (session 80); a fraction is refused in --width's words. Anything else is left for
    the field's own check to name."""
    value = _item(value)
    if isinstance(value, float) and math.isfinite(value):  # a TOML spec's 1.6e1 and 16.5 alike (a review)
        value = repr(value)
    if isinstance(value, str):
        reading = read_whole(value, MAX_WIDTH)
        if reading.too_large:
            raise ValueError(f"widths must be positive, got {as_typed(value)}" if reading.negative else
                             f"widths must be at most {MAX_WIDTH} (2**40), got {as_typed(value)}")
        if reading.fraction:  # as --width says it (pydantic: "unable to parse string")
            raise ValueError(f"expected an integer width, got {as_said(value)}")
        if reading.value is not None:
            return reading.value
    return value


def _width(w: int) -> int:
    if w <= 0:
        raise ValueError(f"widths must be positive, got {w}")
    if w > MAX_WIDTH:
        raise ValueError(f"widths must be at most {MAX_WIDTH} (2**40), got {w}")
    return w


def _log2_lr(g: float) -> float:
    if not (math.isfinite(g) and abs(g) <= 1000):
        raise ValueError(f"log2 learning rates must be finite numbers within +-1000, got {g}")
    # -0.0 is 0.0 (one run, found by either), but a run trained as "-0" kept its sign in log2_lr: a grid widened
    # to "-1:1:0.5" differed from one sweep of it in that bit
    return g + 0.0


#: the items of the grid's lists, each checked on its own so an error names it (``--widths[1]: ...``)
_Name = Annotated[str, BeforeValidator(_item)]
_Alignment = Annotated[str, BeforeValidator(lambda x: Alignment.parse(_item(x)).name)]
_LrMode = Annotated[LrMode, BeforeValidator(lambda x: LrMode.parse(x) if isinstance(_item(x), str) else x)]
_Width = Annotated[int, BeforeValidator(_whole), AfterValidator(_width)]
_Step = Annotated[int, BeforeValidator(_item)]
_Log2Lr = Annotated[float, BeforeValidator(_item), AfterValidator(_log2_lr)]


class SweepSpec(BaseModel):
    """Everything that defines a sweep; each key is also a CLI flag of ``abcscale sweep``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("transformer", description="transformer (NanoDO-style decoder) | mlp | your JAX model, "
                       "'pkg.module:factory' or 'path/file.py:factory'")
    custom_tables: dict[str, ABTable] = Field(default_factory=dict, description="name -> (a, b) per layer")
    parameterizations: list[_Name] = Field(default_factory=lambda: ["mup"],
                                           description="standard|ntk|mup|mean_field or a key of custom_tables")
    optimizers: list[_Name] = Field(default_factory=lambda: ["adam"],
                                    description=", ".join(OPTIMIZER_FAMILY))
    alignments: list[_Alignment] = Field(default_factory=lambda: ["full"],
                                         description="full | none | ALPHA,OMEGA,U")
    lr_modes: list[_LrMode] = Field(default_factory=lambda: [LrMode.per_layer],
                                    description="global | per_layer")
    widths: list[_Width] = Field(default_factory=lambda: [32, 64, 128], min_length=1, description="model dims D")
    base_width: int | None = Field(None, gt=0, le=MAX_WIDTH,
                                   description="width the constants refer to (default: min(widths))")
    log2_lr: list[_Log2Lr] = Field(default_factory=lambda: parse_lr_grid("-12:-4:1"), min_length=1,
                                   description="log2 of the swept base LR beta ('START:STOP:STEP' or a list)")
    constants: Constants = Field(default_factory=Constants, description="base-width constants (gamma, init_scale, "
                                 "multiplier, epsilon, epsilon_mode); also accepted as top-level keys")
    gammas: list[PerLayer] = Field(default_factory=list,
                                   description="per-layer LR constants swept, each 'e,h,r'; default [constants.gamma]")
    seeds: int = Field(1, gt=0, le=MAX_GRID, description="seeds 0..N-1 per learning rate")
    steps: int = Field(200, gt=0, description="updates per run")
    batch: int = Field(16, gt=0, description="sequences per step")
    seq_len: int = Field(64, gt=1, description="tokens per sequence")
    depth: int = Field(2, gt=0, description="transformer blocks or MLP hidden layers")
    head_dim: int = Field(16, gt=0, description="fixed head dim; heads = width / head_dim")
    attn_scale: AttnScale = Field("sqrt", description="logits / sqrt(head_dim) or / head_dim")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD momentum")
    schedule: Schedule = Field("cosine", description="after warmup: cosine decay to 0 or constant")
    warmup: float = Field(0.1, ge=0, lt=1, description="warmup fraction of the steps")
    weight_decay: float = Field(0.0, ge=0, le=SCALE_MAX, allow_inf_nan=False,
                                description="independent weight decay: each step subtracts wd * W from every "
                                "parameter, not scaled by the LR nor with width (docs/theory.md section 9; rows: "
                                "independent_weight_decay). recommend's --weight-decay, the per-layer decay the "
                                "theory transfers, is constants.weight_decay (the TOML table sweep.constants)")
    data: str = Field("default", description="default | synthetic | PATH (text file, directory or .npy)")
    max_bytes: int = Field(4_000_000, gt=0, description="corpus cap for default and text data")
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="held-out share of the corpus")
    eval_batches: int = Field(4, gt=0, description="batches in the held-out eval loss")
    final_window: float = Field(0.1, gt=0, le=1, description="final_loss = mean train loss over this fraction")
    divergence_factor: float = Field(1.5, gt=1, le=SCALE_MAX, allow_inf_nan=False,
                                     description="diverged when loss > factor * loss_at_init")
    batching: Batching = Field("auto", description="vmap over LRs and seeds or not")
    chunk: int = Field(16, gt=0, description="most runs per vmapped program (bounds memory)")
    coord_steps: list[_Step] | None = Field(None, description="steps recorded in coord.parquet "
                                            "(default: 0, 1, steps/2, steps-1)")
    curves: bool = Field(False, description="write per-step train losses to curves.parquet")

    @model_validator(mode="before")
    @classmethod
    def _flat_constants(cls, data: Any) -> Any:
        """Top-level constant keys (TOML) go into ``constants``; both forms at once is an error. A key written
        where another belongs (``lr_mode`` for ``lr_modes``) says where, not only "Extra inputs". true/false is
        no number (TOML's `widths = [true, 32]` trained a width-1 model, `steps = true` one step)."""
        if isinstance(data, dict):
            for key, meant in _MISPLACED.items():
                if key in data:
                    raise ValueError(f"{key}: {meant}")
            if "sweep" in data:  # a [sweep] table beside other keys, or a JSON {"sweep": ...}: read nowhere
                raise ValueError("sweep: a [sweep] table holds every key of the spec (none beside it), and a JSON "
                                 "spec is the spec's object itself (a sweep's spec.json)")
            try:
                for key, value in data.items():
                    if key not in _BOOL_FIELDS and (where := _bool_inside(value)) is not None:
                        raise ValueError(f"{key}{where}: true/false is not a number")
            except RecursionError:
                raise ValueError("spec: nested too deeply to be a sweep spec") from None
            known = [*cls.model_fields, *_FLAT_CONSTANTS]
            for key in data:
                if isinstance(key, str) and key not in known and (close := difflib.get_close_matches(key, known, 1)):
                    raise ValueError(f"{key}: not a key of a sweep spec; did you mean {close[0]}?")
        return nest_constants(data, _FLAT_CONSTANTS)

    @field_validator("data")
    @classmethod
    def _data(cls, v: str) -> str:
        """An empty path is no folder of the user's: it read the working directory's files (``--data "$DATA"`` with
        DATA unset: a review), as ``--out ""`` is refused."""
        if not v.strip():
            raise ValueError("an empty path (an unset variable?): give a text file, a folder of them, a .npy file, "
                             "'default' or 'synthetic'")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        """A built-in name, or a reference of the form ``MODULE:ATTRIBUTE`` (loaded when the sweep runs)."""
        v = v.strip()
        if v in BUILTIN_MODELS:
            return v
        module, sep, attr = v.rpartition(":")
        if not sep or not module.strip() or not attr.strip().isidentifier():
            raise ValueError(f"expected transformer, mlp or a factory reference 'pkg.module:factory' or "
                             f"'path/file.py:factory', got {v!r}")
        return v

    @field_validator("parameterizations", "optimizers", "lr_modes", "widths", "coord_steps", mode="before")
    @classmethod
    def _lists(cls, v: Any, info: ValidationInfo) -> Any:
        if info.field_name == "coord_steps" and isinstance(v, str) and v.strip().lower() == "none":
            return []  # no coordinate statistics, as the CLI's --coord-steps none
        v = _split(v)
        return [v] if isinstance(v, int | float) else v

    @field_validator("parameterizations", "optimizers", "alignments", "lr_modes")
    @classmethod
    def _some(cls, v: list[Any]) -> list[Any]:
        if not v:  # an empty grid list would make an empty sweep
            raise ValueError("give at least one value, got none")
        return v

    @field_validator("custom_tables")
    @classmethod
    def _custom_names(cls, v: dict[str, ABTable]) -> dict[str, ABTable]:
        for name in v:  # a table named `mup` would be read as muP by recommend, check and the exports
            try:
                Parameterization.parse(name)
            except ValueError:
                continue
            raise ValueError(f"{name!r} is a built-in parameterization's name; name the table otherwise")
        return v

    @field_validator("parameterizations")
    @classmethod
    def _parameterizations(cls, v: list[str], info: ValidationInfo) -> list[str]:
        custom = info.data.get("custom_tables", {})
        # repeated (or aliased: sp, standard) values would train the same cells twice
        return list(dict.fromkeys(p if p in custom else Parameterization.parse(p).value for p in v))

    @field_validator("optimizers")
    @classmethod
    def _optimizers(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(parse_optimizer(x) for x in v))

    @field_validator("alignments", mode="before")
    @classmethod
    def _alignments(cls, v: Any) -> Any:
        if isinstance(v, str):  # "full,none", "0.5,0.5,1" (one triple) or "full;1,0.5,1"
            items: list[Any] = []
            for piece in v.split(";") if v.strip() else []:
                parts = [p.strip() for p in piece.split(",")]
                numeric = all(p.replace(".", "", 1).replace("-", "", 1).isdigit() for p in parts if p) and any(parts)
                items.extend([piece] if numeric else parts)  # an empty item stays, to be refused by its index
            v = items
        return v

    @field_validator("alignments", "lr_modes")
    @classmethod
    def _once(cls, v: list[Any]) -> list[Any]:
        return list(dict.fromkeys(v))

    @field_validator("coord_steps")
    @classmethod
    def _coord_steps(cls, v: list[int] | None, info: ValidationInfo) -> list[int] | None:
        steps = info.data.get("steps")
        if v and steps is not None and (bad := [s for s in v if not 0 <= s < steps]):
            raise ValueError(f"{bad[0]} is not a step of a {steps}-step run (0 to {steps - 1})")
        return v

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        return sorted(set(v))  # each checked on its own (_width)

    @field_validator("log2_lr", mode="before")
    @classmethod
    def _grid(cls, v: Any) -> Any:
        if isinstance(v, str) and ":" in v:
            return parse_lr_grid(v)
        # a comma list or a list: each item is checked on its own (_log2_lr), so an error names it
        return [v] if isinstance(v, int | float) else _split(v)

    @field_validator("log2_lr")
    @classmethod
    def _grid_size(cls, v: list[float]) -> list[float]:
        if len(v) > MAX_GRID:
            raise ValueError(f"{len(v)} learning rates; a grid holds at most {MAX_GRID}")
        return list(dict.fromkeys(v))  # a repeated LR would be trained and written twice

    @field_validator("gammas", mode="before")
    @classmethod
    def _gammas(cls, v: Any) -> Any:
        if isinstance(v, str):  # 'e,h,r;e,h,r' or one 'e,h,r'
            v = [p for p in v.split(";") if p.strip()]
        return list(dict.fromkeys(PerLayer.parse(g) for g in v))  # PerLayer is frozen, so hashable

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        if self.constants.weight_decay:
            lacking = [o for o in self.optimizers if o not in DECAYING_VARIANTS]
            if lacking:
                verb = "has" if len(lacking) == 1 else "have"
                decaying = [o + " (its L2 term)" * (o == "sgd") for o in OPTIMIZER_FAMILY if o in DECAYING_VARIANTS]
                raise ValueError(f"constants.weight_decay: {', '.join(lacking)} {verb} no weight decay that abcscale "
                                 f"transfers; sweep only {', '.join(decaying)}, or use the top-level `weight_decay` "
                                 "(independent, every variant)")
        if self.constants.epsilon == 0 and (zero := [o for o in self.optimizers if _uses_epsilon(o)]):
            # Adam's m / (sqrt(v) + eps) is 0/0 for an embedding row no batch touched: every run a NaN
            raise ValueError(f"epsilon: {', '.join(zero)} {'divides' if len(zero) == 1 else 'divide'} by sqrt(v) + "
                             "epsilon, which is 0 for a row with no gradient yet: give epsilon > 0")
        if self.steps > MAX_STEPS:
            raise ValueError(f"steps: {self.steps} is more than {MAX_STEPS:,} updates a run; small-width sweeps "
                             "take hundreds to thousands")
        if self.batch * self.seq_len > MAX_STEP_TOKENS:
            raise ValueError(f"batch: {self.batch} x seq_len {self.seq_len} is {self.batch * self.seq_len:,} tokens "
                             f"a step, more than {MAX_STEP_TOKENS:,}; lower batch or seq_len")
        if self.steps * self.batch > MAX_WINDOWS:
            raise ValueError(f"steps: {self.steps} x batch {self.batch} is {self.steps * self.batch:,} sequences a run "
                             f"draws, more than {MAX_WINDOWS:,}; lower steps or batch")
        # a width whose largest matrix the init cannot draw: said now, not after the smaller widths trained
        if (wide := [w for w in self.widths if largest_matrix(self.model, w, self.seq_len) > MAX_PARAM_ELEMENTS]):
            raise ValueError(f"widths: {wide[0]} gives the {self.model} a matrix of "
                             f"{largest_matrix(self.model, wide[0], self.seq_len):,} elements; the init draws at "
                             f"most {MAX_PARAM_ELEMENTS:,} (small-width sweeps stay far below)")
        if self.momentum and "sgd" not in self.optimizers:  # it was accepted and changed nothing
            raise ValueError(f"momentum: only sgd takes it, and the sweep has {', '.join(self.optimizers)}")
        if not self.gammas:
            self.gammas = [self.constants.gamma]
        if self.model == "transformer":
            bad = [w for w in self.widths if w % self.head_dim]
            if bad:
                raise ValueError(f"head_dim: {self.head_dim} must divide every width (not {bad})")
        else:  # accepted and changed nothing (an mlp or a user model has no attention of the runner's)
            fields = type(self).model_fields
            for name in ("head_dim", "attn_scale"):
                if getattr(self, name) != fields[name].default:
                    raise ValueError(f"{name}: only the transformer has the runner's attention; model "
                                     f"{self.model!r} takes no {name} (drop it)")
        return self

    # --- derived ------------------------------------------------------------------------------------

    @property
    def base(self) -> int:
        return self.base_width or min(self.widths)

    def corpus(self) -> Corpus:
        """The token data this spec trains on (loaded once per process)."""
        from abcscale.runner.data import load_corpus

        return load_corpus(self.data, self.max_bytes, self.eval_fraction, self.seq_len + 2)

    def parameterization(self, name: str) -> Parameterization | ABTable:
        return self.custom_tables[name] if name in self.custom_tables else Parameterization.parse(name)

    def parameterization_name(self, name: str) -> str:
        return name if name in self.custom_tables else Parameterization.parse(name).value

    def runs(self) -> list[Run]:
        """Every (log2 LR, seed) a cell trains, in the order its rows appear."""
        return [(g, s) for g in self.log2_lr for s in range(self.seeds)]

    def cells(self) -> list[Cell]:
        """One cell per (config, width): a compiled program trains all its LRs and seeds."""
        out = []
        for p, o, a, m, g, w in itertools.product(self.parameterizations, self.optimizers, self.alignments,
                                                  self.lr_modes, self.gammas, self.widths):
            out.append(Cell(parameterization=self.parameterization_name(p), optimizer=o, alignment=a,
                            lr_mode=m, gamma=g, width=w))
        return out

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> SweepSpec:
        """The spec a TOML file states (its keys at the top or under ``[sweep]``), with ``overrides`` replacing
        keys (None values ignored) before anything is checked: a flag can make a file valid (``--widths 16,32``
        for a file whose widths its ``head_dim`` does not divide)."""
        return cls.model_validate(_merged(toml_data(path), overrides))

    def with_overrides(self, **kwargs: Any) -> SweepSpec:
        """A new spec with the given keys replaced (None values ignored), validated again."""
        data = self.model_dump()
        # the constants as given, not every default: what was set is what the sweep warns of (theory_warnings)
        data["constants"] = self.constants.model_dump(exclude_unset=True)
        # gammas defaults to [constants.gamma], filled in when validated: a new gamma must replace that too
        if (kwargs.get("gamma") is not None or kwargs.get("constants") is not None) and kwargs.get("gammas") is None \
                and self.gammas == [self.constants.gamma]:
            data.pop("gammas")
        return SweepSpec.model_validate(_merged(data, kwargs))


#: environment settings that change the compiled program's rounding (runner.train.compiler_options)
XLA_KNOBS = ("ABCSCALE_XLA_OPT_LEVEL", "ABCSCALE_XLA_FUSION_EMITTERS")


def model_source(ref: str) -> str:
    """A hash of a factory's code: the source file the reference names (``path/file.py:factory`` or
    ``pkg.module:factory``) and every file of the user's own code it imports, transitively, '' when the file
    cannot be found (loading the factory then says why). With no such imports it is the file's hash alone.

    Imports are read from the import statements (:func:`user_imports`), so a module imported by name at run
    time (``importlib.import_module``) is not seen (``runner.user.check`` says so when the model imports one); for
    ``pkg.module`` its packages' ``__init__.py`` that hold code count too (:func:`file_imports`)."""
    path, package = _factory_file(ref)
    if path is None:
        return ""
    try:
        digest = hashlib.sha256(path.read_bytes())
        # by module name, not path: the same project checked out elsewhere is the same model
        for name, file in sorted(file_imports(path, package, first_folder(ref)).items()):
            digest.update(b"\0" + name.encode() + b"\0" + file.read_bytes())
    except OSError:
        return ""
    return digest.hexdigest()[:16]


def file_imports(path: Path, package: str | None, first: str | None) -> dict[str, Path]:
    """:func:`user_imports` of a factory's file as loading it finds them, ``first`` (:func:`first_folder`) ahead of
    the import path: a model file's siblings are the user's code whether or not its folder is on the path yet.
    (Before, they were found only once the file had loaded: a process's first cell key missed them.)"""
    # importing pkg.module runs pkg/__init__.py first, whether or not the module imports from its package: an
    # __init__ that sets a JAX option or patches a layer was not in the key (session 75's note); an empty one runs
    # nothing and stays out, so a key written before is kept where nothing ran
    packages = [".".join(package.split(".")[:i]) for i in range(1, len(package.split(".")) + 1)] if package else []
    return user_imports(path, package or None, first=first, also=packages)


def first_folder(ref: str) -> str | None:
    """The folder loading ``ref`` puts first on the import path (``runner.user``): a model file's own, or for
    ``pkg.module:factory`` the working directory, resolved."""
    target = ref.rpartition(":")[0]
    try:
        if target.endswith(".py") or "/" in target:
            return str(Path(target).expanduser().resolve().parent)
        return str(Path.cwd().resolve())
    except (OSError, RuntimeError):  # a home that is not there (~nobody/), a deleted working directory
        return None


def fresh_spec(name: str, first: str | None = None) -> Any:
    """The module spec an import of ``name`` in a fresh process would find, ``first`` (a folder) ahead of
    ``sys.path`` (as ``runner.user`` puts it to load a model): the import system's finders asked in order, past
    ``sys.modules``, and a package's submodules found through its path without importing it.
    (:func:`importlib.util.find_spec` answers with a module already imported, which may be another folder's
    ``layers``: a model file in folder B was keyed and trained with folder A's sibling of the same name, or with a
    notebook's own ``layers``, a review.) None when not found."""
    from importlib.machinery import PathFinder

    search = sys.path if first is None else [first, *(entry for entry in sys.path if entry != first)]
    parts = name.split(".")
    spec: Any = None
    parent: list[str] | None = None
    for i in range(len(parts)):
        sub = ".".join(parts[: i + 1])
        for finder in sys.meta_path:
            if finder is PathFinder:
                spec = PathFinder.find_spec(sub, search if parent is None else parent)
            elif (find := getattr(finder, "find_spec", None)) is not None:
                spec = find(sub, parent)
            if spec is not None:
                break
        else:
            return None
        if i < len(parts) - 1:
            if spec.submodule_search_locations is None:
                return None
            parent = list(spec.submodule_search_locations)
    return spec


def _factory_file(ref: str) -> tuple[Path | None, str | None]:
    """The source file a factory reference names (``path/file.py:factory`` relative to the working directory, or
    ``pkg.module:factory`` found on sys.path, the working directory first) and its package (for relative imports);
    None when not found."""
    target = ref.rpartition(":")[0]
    if target.endswith(".py") or "/" in target:
        return Path(target).expanduser(), None
    try:
        # as a fresh import finds it; else as this process holds it (a module registered by hand, a notebook's own),
        # importing nothing (importlib.util.find_spec imports the packages above it, whose __init__ may fail)
        found = fresh_spec(target, first_folder(ref)) or getattr(sys.modules.get(target), "__spec__", None)
    except (ImportError, ValueError, OSError, RuntimeError):
        return None, None
    path = Path(found.origin) if found is not None and found.origin and found.origin.endswith(".py") else None
    return path, (target if path is not None and path.name == "__init__.py" else target.rpartition(".")[0]) or None


def _library_roots() -> tuple[Path, ...]:
    """Folders whose modules are not the user's code: the Python installation and the environment's
    packages."""
    import site
    import sysconfig

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages(),
             *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    return tuple(Path(r).resolve() for r in roots if r)


def user_imports(path: Path, package: str | None = None, *, limit: int = 500, first: str | None = None,
                 also: Sequence[str] = ()) -> dict[str, Path]:
    """The user's own modules (name -> ``.py`` file) that the source file ``path`` imports, directly or
    through each other, read from their ``import`` statements (``package``: the file's package, for relative
    imports), each where a fresh import finds it (:func:`fresh_spec`, the folder ``first`` ahead of the path). A
    module found in a library root (:func:`_library_roots`), abcscale's own, or one not found is left out, and not
    read; at most ``limit`` modules. ``also``: packages whose ``__init__.py`` runs before ``path`` (its own, for
    ``pkg.module``), counted where their file holds anything, and what they import."""
    roots = _library_roots()
    found: dict[str, Path] = {}
    try:  # the origins are resolved: a folder reached through a symlink is the same file (a package __init__'s
        path = path.resolve()  # `from .model import factory` named the model again under another key: a review)
    except (OSError, RuntimeError):
        pass
    for name in also:
        if (origin := _user_origin(name, roots, first)) is not None and origin != path and _holds_code(origin):
            found[name] = origin
    todo = [(path, package), *((origin, name) for name, origin in found.items())]
    while todo and len(found) < limit:
        file, pkg = todo.pop()
        try:
            tree = ast.parse(file.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        for name in _imported_names(tree, pkg):
            if name in found or len(found) >= limit:
                continue
            if (origin := _user_origin(name, roots, first)) is not None and origin != path:
                found[name] = origin
                todo.append((origin, name if origin.name == "__init__.py" else name.rpartition(".")[0]))
    return found


def _holds_code(file: Path) -> bool:
    """Whether a package's ``__init__.py`` runs anything: not when it holds only blanks, comments or a docstring
    (most packages' ``__init__``: keys written before stayed, a review). One that cannot be read or parsed counts
    (loading it says why)."""
    try:
        body = ast.parse(file.read_bytes()).body
    except (OSError, SyntaxError, ValueError):
        return True
    docstring = bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    return len(body) > (1 if docstring else 0)


def _imported_names(tree: ast.AST, package: str | None) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not package:
                    continue
                try:
                    base = importlib.util.resolve_name("." * node.level + base, package)
                except (ImportError, ValueError):
                    continue
            if base:  # `from pkg import name`: name may be a submodule
                names += [base, *(f"{base}.{a.name}" for a in node.names if a.name != "*")]
    # importing a.b.c runs a's and a.b's __init__ too
    return [".".join(parts[:i]) for parts in (n.split(".") for n in names) for i in range(1, len(parts) + 1)]


def _user_origin(name: str, roots: tuple[Path, ...], first: str | None = None) -> Path | None:
    """The ``.py`` file of module ``name`` when it is the user's code (:func:`fresh_spec`, which imports nothing).
    The top-level package is looked up first: a library's submodules are not looked for."""
    top = name.partition(".")[0]
    if top == "abcscale":  # versioned with the runner, not the model (an editable install lies outside the roots)
        return None
    for part in (top, name) if top != name else (name,):
        try:
            spec = fresh_spec(part, first)
        except Exception:  # noqa: BLE001 - a user package whose __init__ fails, a name that is no module
            return None
        if spec is None:
            return None
        if part != name and spec.origin in (None, "namespace") and spec.submodule_search_locations is not None:
            # a namespace package (a folder without __init__.py): the user's where no folder of it is a library's
            # (its modules were never keyed: a review)
            if any(Path(folder).resolve().is_relative_to(r) for folder in spec.submodule_search_locations
                   for r in roots):
                return None
            continue
        if not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = Path(spec.origin).resolve()
        if any(origin.is_relative_to(r) for r in roots):
            return None
    return origin


def toml_data(path: str | Path) -> dict[str, Any]:
    """A spec file's keys, unchecked (under ``[sweep]`` or at the top): TOML, or JSON (the ``spec.json`` a sweep
    writes into its folder, every key of the spec). ``path`` must be a path: ``open`` would take an int (or a
    bool) as a file descriptor, read stdin or another open file, and close it. A file in another encoding than
    UTF-8, or JSON that is not a sweep's object, is a ValueError saying so."""
    from abcscale.schemas.textfile import read_text

    if not isinstance(path, str | Path) or isinstance(path, bool):
        raise ValueError(f"spec: expected a SweepSpec or the path of its TOML file, got {type(path).__name__}")
    text = read_text(path)  # a BOM (Windows editors) is no key; UTF-16 is said
    return spec_data(text, as_json=Path(path).suffix.lower() == ".json")


def spec_data(text: str, *, as_json: bool = False) -> dict[str, Any]:
    """:func:`toml_data`'s keys of a spec's text (JSON when ``as_json`` or when it starts with ``{``)."""
    try:
        return _spec_data(text.removeprefix("\ufeff"), as_json)
    except RecursionError:  # a file nested hundreds deep: the parsers recurse
        raise ValueError("spec: nested too deeply to be a sweep spec") from None


def _spec_data(text: str, as_json: bool) -> dict[str, Any]:
    import json

    if as_json or text.lstrip().startswith("{"):
        def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
            if (twice := [k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i])]):
                raise ValueError(f"{twice[0]}: given twice")
            return dict(pairs)

        try:
            data = json.loads(text, object_pairs_hook=unique)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc}); a spec is TOML, or a sweep's spec.json") from None
        if not isinstance(data, dict):
            raise ValueError("a JSON spec is an object of the spec's keys (a sweep's spec.json)")
        if isinstance(constants := data.get("constants"), dict) and not constants.get("weight_decay") \
                and constants.get("weight_decay_mode") == "coupled":
            constants.pop("weight_decay_mode")  # spec.json records the default mode of a decay it lacks
        return data
    data = tomllib.loads(text)
    if "sweep" not in data:
        return data
    # with a [sweep] table, a key beside it was dropped unread (a [constants] table, keys above the header)
    if outside := sorted(k for k in data if k != "sweep"):
        raise ValueError(f"spec: {', '.join(outside)} outside [sweep], where nothing is read: put every key under "
                         "[sweep] (constants under [sweep.constants]), or drop the [sweep] header")
    sweep = data["sweep"]
    if not isinstance(sweep, dict):
        raise ValueError("spec: sweep must be a table ([sweep])")
    return sweep


def _merged(data: dict[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the non-None ``kwargs`` replacing its keys; a constant's flat key (``epsilon``) replaces that
    constant wherever ``data`` holds it (under ``constants``, or flat)."""
    data, given = dict(data), {k: v for k, v in kwargs.items() if v is not None}
    flat = {k: given.pop(k) for k in _FLAT_CONSTANTS if k in given}
    if flat and isinstance(data.get("constants"), dict):
        data["constants"] = {**data["constants"], **{_FLAT_CONSTANTS[k]: v for k, v in flat.items()}}
    else:
        data.update(flat)
    data.update(given)
    return data


#: spec fields that each cell holds one value of
_GRID = frozenset({"parameterizations", "optimizers", "alignments", "lr_modes", "gammas", "widths"})
#: spec fields that change how a cell runs or what is recorded, not its results
_EXECUTION = EXECUTION_KEYS = frozenset({"batching", "chunk", "curves", "coord_steps"})


def x64_mode() -> bool:
    """Whether JAX runs with 64-bit types (``JAX_ENABLE_X64``, or ``jax.config.update`` in a notebook that loaded
    JAX): its draws of the data windows and the init take another algorithm (``runner.draws.shared_draw``), so a
    cell's runs are other runs. Read without loading JAX where nothing has."""
    jax = sys.modules.get("jax")
    if jax is not None:
        return bool(jax.config.jax_enable_x64)
    return os.environ.get("JAX_ENABLE_X64", "").strip().lower() in ("1", "true", "yes", "on", "t", "y")


def spelling_free(spec: SweepSpec) -> dict[str, str]:
    """The key fields that name the same thing however it is written: a factory reference as its file (resolved),
    its name and its code (the hash of the file and the user's modules it imports, :func:`model_source`), so that
    ``models.py:make``, ``./models.py:make``, the absolute path and ``models:make`` are one model; a data path as
    ``"file"``, since the cell key holds the corpus's own hash. Empty for the built-in models and data sets; a reference
    whose file is not found keeps its spelling (loading it then says why)."""
    out: dict[str, str] = {}
    if spec.model not in BUILTIN_MODELS and (source := model_source(spec.model)):
        # the file itself, however spelled: identical code in two folders may read different files beside it
        path = _factory_file(spec.model)[0]
        where = str(path.resolve()) if path is not None else ""
        out |= {"model": f"factory:{where}:{spec.model.rpartition(':')[2]}", "model_source": source}
    if spec.data not in BUILTIN_DATA:
        out["data"] = "file"
    return out


class Cell(BaseModel):
    """One (config, width) of a sweep."""

    model_config = ConfigDict(frozen=True)

    parameterization: str
    optimizer: str
    alignment: str
    lr_mode: LrMode
    gamma: PerLayer
    width: int

    def constants(self, spec: SweepSpec) -> Constants:
        """The spec's base-width constants with this cell's LR constants."""
        return spec.constants.model_copy(update={"gamma": self.gamma})

    def key(self, spec: SweepSpec, data_hash: str, *, spelled: bool = False, all_tables: bool = False,
            unread: bool = False, x64: bool | None = None) -> str:
        """Stable id of this cell's runs under ``spec``: everything that changes them, and the LR grid and
        seed count. The file name of a cell committed whole (``runner.store``); older stores name every
        cell file this way.

        The spec's constants enter flat (as before they were one model), and their weight decay only when it is
        nonzero (it came later), so existing sweeps still resume. A transformer's cells computed before its
        LayerNorm gains took the vector-like LR trained differently, so its key names the rule and they rerun. A
        user model's key holds a digest of its layout at the cell's width (``runner.user.layout_digest``: each
        parameter's role, init and std constant), so a change of the runner's layout rules is another cell.

        A factory reference and a data path enter by what they hold, not how they are written
        (:func:`spelling_free`); ``spelled=True`` gives the id as stores before that hashed them, as written.
        Of ``custom_tables`` only the cell's own table enters; ``all_tables=True`` gives the id as stores before
        that hashed every table of the spec.

        Settings no run reads stay out (session 78): the data's byte cap (``data_hash``, of the tokens read, says
        what it changed) and an epsilon where the cell's optimizer divides by none (SGD, Lion, ...): a rerun that
        changed only those trained every run again. ``unread=True`` gives the id as stores before hashed them.
        Under JAX's 64-bit mode the runs are other runs (``x64``: this process's mode by default).
        """
        return self._hash(spec, data_hash, set(), spelled, all_tables, unread, x64)

    def base_key(self, spec: SweepSpec, data_hash: str, *, spelled: bool = False, all_tables: bool = False,
                 unread: bool = False, x64: bool | None = None) -> str:
        """Stable id of this cell whatever its LR grid and seed count: a run's results depend on the cell,
        its log2 LR and its seed only, so every committed run of this id serves any grid that holds it."""
        return self._hash(spec, data_hash, {"log2_lr", "seeds"}, spelled, all_tables, unread, x64)

    def _user_layout(self, spec: SweepSpec) -> str:
        """The digest of the user model's layout at this cell (``runner.user.layout_digest``), '' when the factory
        cannot be built (a previous spec's model file gone: its cells then match none of this one's)."""
        from abcscale.runner.sweep import _program
        from abcscale.runner.user import layout_digest

        try:
            prog = _program(spec, self, (), False)
            return layout_digest(prog.model, prog.optimizer)
        except ValueError:
            return ""

    def _hash(self, spec: SweepSpec, data_hash: str, exclude: set[str], spelled: bool, all_tables: bool = False,
              unread: bool = False, x64: bool | None = None) -> str:
        from abcscale.runner.optim import variant

        if not unread:  # what no run reads (Cell.key): the byte cap, which data_hash covers, and an unused epsilon
            exclude = exclude | {"max_bytes"}
        fields = spec.model_dump(mode="json", exclude=set(_GRID | _EXECUTION | exclude | {"constants"}))
        if not all_tables:
            # the cell's own (a, b) table, not every table the spec defines: a table added to a sweep (and its
            # parameterization) made every cell another, and a rerun trained all of them again (a review)
            # (a built-in parameterization's cell holds none: no table takes a built-in name)
            fields["custom_tables"] = {k: v for k, v in fields["custom_tables"].items() if k == self.parameterization}
        if not spelled:
            fields |= spelling_free(spec)
        # the cell holds gamma; the flat name weight_decay is the spec's own (independent) decay
        ignored = set() if unread or variant(self.optimizer).uses_epsilon else {"epsilon", "epsilon_mode"}
        fields |= spec.constants.model_dump(mode="json", exclude={"gamma", *_NOT_CONSTANTS, *ignored})
        if spec.constants.weight_decay:
            fields |= {f"constants.{k}": v for k, v in spec.constants.model_dump(mode="json",
                                                                                  include=set(_NOT_CONSTANTS)).items()}
        fields["base_width"] = spec.base
        if spec.model != "mlp":  # vector-like parameters (LayerNorm gains) follow their own rule since issue 13
            fields["vector_rule"] = "theory.groups.vector_setting"
        if spec.model not in BUILTIN_MODELS and "model_source" not in fields:
            fields["model_source"] = model_source(spec.model)  # an edited factory file is another model
        if spec.model not in BUILTIN_MODELS:  # a user model's readout bias trains in the fixed role since session 48
            fields["fixed_rule"] = "theory.groups.fixed_setting"
            # and what it trains at this width (roles, inits, std constants): a change of the layout rules is
            # another cell (session 63's dense-kernel embedding init was not, and resumed folders mixed two inits)
            fields["user_layout"] = self._user_layout(spec)
        # XLA settings forced by hand round some fusions differently (1e-6): their runs are other runs
        if xla := {k: os.environ[k] for k in XLA_KNOBS if os.environ.get(k)}:
            if "ABCSCALE_XLA_FUSION_EMITTERS" in xla:
                from abcscale.runner.train import OLDER_EMITTERS  # jax only where the knob is set

                if not OLDER_EMITTERS:  # jax >= 0.11 has no such option: the knob changes no run, nor the key
                    xla.pop("ABCSCALE_XLA_FUSION_EMITTERS")
            if xla:
                fields["xla"] = xla
        if x64_mode() if x64 is None else x64:  # JAX draws the data windows and init otherwise: other runs
            fields["x64"] = True
        blob = json.dumps({"cell": self.model_dump(mode="json"), "spec": fields, "data": data_hash},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
