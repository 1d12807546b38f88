"""``abcscale recommend``: per-layer settings at a target width, from theory or from a fit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from abcscale.cli._common import build, console, emit_json, fail, parse_flag, read_fit, validation_message
from abcscale.cli.options import Json, LrModeOpt, OptimizerOpt, ParamOpt, Width
from abcscale.cli.theory import DEFAULT_EPSILON, frac
from abcscale.schemas.enums import EpsilonMode, LrMode, WeightDecayMode
from abcscale.schemas.fit import Prediction
from abcscale.schemas.recommend import LrBand, Recommendation
from abcscale.schemas.theory import Constants, PerLayer

#: request fields -> the flags that set them, so validation errors name what the user typed
FLAGS = {"beta": "--base-lr", "base.beta": "--base-lr", "base_width": "--base-width", "base.width": "--base-width",
         "width": "--width", "fit_id": "--fit"}

PerLayerOpt = Annotated[str | None, typer.Option(help="'e,h,r' or one number", show_default="1,1,1")]


def recommend(
    width: Width,
    parameterization: ParamOpt = None,
    optimizer: OptimizerOpt = None,
    base_width: Annotated[int | None, typer.Option("--base-width", help="width beta was tuned at (not with --fit)",
                                                   show_default=False)] = None,
    base_lr: Annotated[float | None, typer.Option("--base-lr", help="beta, the LR tuned at the base width (not "
                                                  "with --fit)", show_default=False)] = None,
    alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U; with "
                                                  "--fit it also selects the group", show_default="full")] = None,
    lr_mode: LrModeOpt = LrMode.per_layer,
    gamma: Annotated[str | None, typer.Option(help="per-layer LR constants 'e,h,r'", show_default="1,1,1")] = None,
    init_scale: Annotated[str | None, typer.Option("--init-scale", help="init std constants 'e,h,r'",
                                                   show_default="1,1,1")] = None,
    multiplier: Annotated[str | None, typer.Option(help="multiplier constants 'e,h,r'",
                                                   show_default="1,1,1")] = None,
    epsilon: Annotated[float | None, typer.Option(help="Adam epsilon at the base width",
                                                  show_default=f"{DEFAULT_EPSILON:g}")] = None,
    epsilon_mode: Annotated[EpsilonMode, typer.Option("--epsilon-mode", parser=EpsilonMode.parse)] = (
        EpsilonMode.per_layer),
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", help="AdamW weight decay at the base width "
                                                       "(-o adamw)", show_default="0")] = None,
    weight_decay_mode: Annotated[WeightDecayMode, typer.Option(
        "--weight-decay-mode", parser=WeightDecayMode.parse, help="coupled: the step subtracts lr * wd * W (torch, "
        "optax AdamW); independent: wd * W")] = WeightDecayMode.coupled,
    fit: Annotated[Path | None, typer.Option("--fit", help="a fit.json from `abcscale fit` (instead of "
                                             "--base-width/--base-lr)", show_default=False)] = None,
    group: Annotated[str | None, typer.Option(help="with --fit: pick a group, 'key=value,...'",
                                              show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Per-layer multiplier, init std, LR, epsilon and (AdamW) weight decay at a target width.

    Analytic (theory) from -p, -o, --base-width and --base-lr; or from a fit with --fit, whose group
    -p, -o, --lr-mode global, -a and --group select.
    """
    from abcscale import usecases

    constants = build(Constants, {}, gamma=parse_flag(PerLayer.parse, gamma, "--gamma"),
                      init_scale=parse_flag(PerLayer.parse, init_scale, "--init-scale"),
                      multiplier=parse_flag(PerLayer.parse, multiplier, "--multiplier"), epsilon=epsilon,
                      epsilon_mode=epsilon_mode, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode)
    try:  # one rule for which flags go with which source, shared with the Python API and the REST body
        req = usecases.recommend_request(
            width=width, parameterization=parameterization, optimizer=optimizer, alignment=alignment,
            lr_mode=lr_mode, base_width=base_width, beta=base_lr, constants=constants,
            fit_id=None if fit is None else usecases.LOCAL_FIT, group=group)
    except ValidationError as exc:
        fail(validation_message(exc, FLAGS))
    rec = usecases.recommend(req, None if fit is None else read_fit(fit))
    if as_json:
        emit_json(rec)
        return
    print_recommendation(rec)


def band_line(band: LrBand | Prediction) -> str:
    """A fitted LR with its interval at the fit's level, the fixed 68% and 95% bands, the safe side and the
    expected loss penalty (``abcscale recommend --fit`` and ``abcscale fit --target-width`` print it)."""
    ci = band.ci
    level = 100 * ci.confidence_level
    own = "" if any(math.isclose(level, x) for x in (68, 95)) else f"{level:g}% [{ci.low:.4g}, {ci.high:.4g}]  "
    return (f"{band.lr:.4g}  {own}68% [{band.ci68[0]:.4g}, {band.ci68[1]:.4g}]  "
            f"95% [{band.ci95[0]:.4g}, {band.ci95[1]:.4g}]  safe-side {band.safe_lr:.4g}  "
            f"expected loss penalty {100 * band.expected_loss_penalty:.3g}%  "
            f"(extrapolation x{band.extrapolation_factor:.3g})")


def print_recommendation(rec: Recommendation) -> None:
    """The per-layer table, the fitted LR band when there is one, and the warnings."""
    t = Table(title=f"{rec.parameterization} + {rec.optimizer.value}, {rec.lr_mode.value} LR, alignment "
                    f"{rec.alignment.name}: width {rec.base_width} -> {rec.width} (source: {rec.source})")
    decay = rec.weight_decay_mode is not None  # a column only for an optimizer with decoupled decay (AdamW)
    for col in ("layer", "a", "b", "c", "multiplier", "init std", "learning rate", "epsilon",
                *([f"weight decay ({rec.weight_decay_mode})"] if decay else [])):
        t.add_column(col, justify="right" if col != "layer" else "left")
    for s in rec.layers:
        e = rec.exponents[s.layer.value]
        t.add_row(s.layer.value, frac(e.a), frac(e.b), frac(e.c), f"{s.multiplier:.4g}", f"{s.init_std:.4g}",
                  f"{s.lr:.4g}", "-" if s.epsilon is None else f"{s.epsilon:.3g}",
                  *([f"{s.weight_decay:.4g}"] if decay and s.weight_decay is not None else []))
    console.print(t)
    if rec.band is not None:
        console.print(f"fitted LR at width {rec.width}: {band_line(rec.band)}", highlight=False)
    for w in rec.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
