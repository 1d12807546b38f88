"""Option types shared by several commands: one spelling, one help text and one parser per concept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abcscale.schemas.enums import LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.groups import Form

Json = Annotated[bool, typer.Option("--json", help="print machine-readable JSON on stdout")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress on stderr")]
Plots = Annotated[Path | None, typer.Option("--plots", help="write PNG plots into this folder", show_default=False)]

ParamOpt = Annotated[Parameterization | None, typer.Option(
    "--parameterization", "-p", parser=Parameterization.parse, help="aliases sp, mf", show_default=False)]
ParamReq = Annotated[Parameterization, typer.Option(
    "--parameterization", "-p", parser=Parameterization.parse, help="aliases sp, mf")]
OptimizerOpt = Annotated[Optimizer | None, typer.Option(
    "--optimizer", "-o", parser=Optimizer.parse, show_default=False)]
OptimizerReq = Annotated[Optimizer, typer.Option("--optimizer", "-o", parser=Optimizer.parse)]
AlignmentOpt = Annotated[str, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U")]
LrModeOpt = Annotated[LrMode, typer.Option("--lr-mode", parser=LrMode.parse,
                                           help="one LR per layer type, or one shared LR")]
Width = Annotated[int, typer.Option("--width", "-n", help="target width (model dim D)")]
WeightDecayOpt = Annotated[float | None, typer.Option(
    "--weight-decay", help="AdamW weight decay at the base width (-o adamw)", show_default="0")]
WeightDecayModeOpt = Annotated[WeightDecayMode, typer.Option(
    "--weight-decay-mode", parser=WeightDecayMode.parse, help="coupled: the step subtracts lr * wd * W (torch, "
    "optax AdamW); independent: wd * W")]
FormOpt = Annotated[Form, typer.Option(
    "--form", parser=Form.parse, help="how the parameter groups are written: abc | multiplier-free (alias "
    "plain) | mup (microsoft/mup's convention)")]
