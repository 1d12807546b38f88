"""``abcscale recommend``: per-layer settings at a target width, from theory or from a fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abcscale.cli._common import build, console, emit_json, fail, parse_flag, read_fit
from abcscale.cli.options import Json, LrModeOpt, OptimizerOpt, ParamOpt, Width
from abcscale.cli.theory import frac
from abcscale.schemas.api import AnalyticRecommend
from abcscale.schemas.enums import EpsilonMode, LrMode
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, PerLayer

#: request fields -> the flags that set them, so validation errors name what the user typed
FLAGS = {"beta": "--base-lr", "base.width": "--base-width", "width": "--width"}

PerLayerOpt = Annotated[str | None, typer.Option(help="'e,h,r' or one number", show_default="1,1,1")]


def recommend(
    width: Width,
    parameterization: ParamOpt = None,
    optimizer: OptimizerOpt = None,
    base_width: Annotated[int | None, typer.Option("--base-width", help="width beta was tuned at",
                                                   show_default=False)] = None,
    base_lr: Annotated[float | None, typer.Option("--base-lr", help="beta, the LR tuned at the base width",
                                                  show_default=False)] = None,
    alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U; with "
                                                  "--fit it also selects the group", show_default="full")] = None,
    lr_mode: LrModeOpt = LrMode.per_layer,
    gamma: Annotated[str | None, typer.Option(help="per-layer LR constants 'e,h,r'", show_default="1,1,1")] = None,
    init_scale: Annotated[str | None, typer.Option("--init-scale", help="init std constants 'e,h,r'",
                                                   show_default="1,1,1")] = None,
    multiplier: Annotated[str | None, typer.Option(help="multiplier constants 'e,h,r'",
                                                   show_default="1,1,1")] = None,
    epsilon: Annotated[float, typer.Option(help="Adam epsilon at the base width")] = 1e-8,
    epsilon_mode: Annotated[EpsilonMode, typer.Option("--epsilon-mode", parser=EpsilonMode.parse)] = (
        EpsilonMode.per_layer),
    fit: Annotated[Path | None, typer.Option("--fit", help="a fit.json from `abcscale fit` (instead of "
                                             "--base-width/--base-lr)", show_default=False)] = None,
    group: Annotated[str | None, typer.Option(help="with --fit: pick a group, 'key=value,...'",
                                              show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Per-layer multiplier, init std, LR and epsilon at a target width.

    Analytic (theory) from -p, -o, --base-width and --base-lr; or from a fit with --fit, whose group
    -p, -o, --lr-mode global, -a and --group select.
    """
    from abcscale import usecases

    al = parse_flag(Alignment.parse, alignment, "--alignment")
    constants = build(Constants, {}, gamma=parse_flag(PerLayer.parse, gamma, "--gamma"),
                      init_scale=parse_flag(PerLayer.parse, init_scale, "--init-scale"),
                      multiplier=parse_flag(PerLayer.parse, multiplier, "--multiplier"), epsilon=epsilon,
                      epsilon_mode=epsilon_mode)
    rec: Recommendation
    if fit is not None:
        selector = usecases.selector_from(group, parameterization=parameterization, optimizer=optimizer,
                                          lr_mode=lr_mode, alignment=al)
        rec = usecases.recommend_from_fit(read_fit(fit), width, selector=selector, constants=constants)
    else:
        missing = [f for f, v in (("--parameterization", parameterization), ("--optimizer", optimizer),
                                  ("--base-width", base_width), ("--base-lr", base_lr)) if v is None]
        if missing:
            fail("analytic mode needs " + ", ".join(missing) + " (or pass --fit fit.json)")
        base = build(BaseConfig, {"width": "--base-width", "beta": "--base-lr"}, width=base_width, beta=base_lr,
                     **dict(constants))
        rec = usecases.recommend_analytic(build(
            AnalyticRecommend, FLAGS, parameterization=parameterization, optimizer=optimizer,
            alignment=al or "full", lr_mode=lr_mode, width=width, base=base))
    if as_json:
        emit_json(rec)
        return
    print_recommendation(rec)


def print_recommendation(rec: Recommendation) -> None:
    """The per-layer table, the fitted LR band when there is one, and the warnings."""
    t = Table(title=f"{rec.parameterization} + {rec.optimizer.value}, {rec.lr_mode.value} LR, alignment "
                    f"{rec.alignment.name}: width {rec.base_width} -> {rec.width} (source: {rec.source})")
    for col in ("layer", "a", "b", "c", "multiplier", "init std", "learning rate", "epsilon"):
        t.add_column(col, justify="right" if col != "layer" else "left")
    for s in rec.layers:
        e = rec.exponents[s.layer.value]
        t.add_row(s.layer.value, frac(e.a), frac(e.b), frac(e.c), f"{s.multiplier:.4g}", f"{s.init_std:.4g}",
                  f"{s.lr:.4g}", "-" if s.epsilon is None else f"{s.epsilon:.3g}")
    console.print(t)
    band = rec.band
    if band is not None:
        console.print(
            f"fitted LR at width {rec.width}: {band.lr:.4g}  68% [{band.ci68[0]:.4g}, {band.ci68[1]:.4g}]  "
            f"95% [{band.ci95[0]:.4g}, {band.ci95[1]:.4g}]  safe-side {band.safe_lr:.4g}  "
            f"expected loss penalty {100 * band.expected_loss_penalty:.2f}%  "
            f"(extrapolation x{band.extrapolation_factor:.3g})"
        )
    for w in rec.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
