"""Option types shared by several commands: one spelling, one help text and one parser per concept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.groups import Form
from abcscale.schemas.numbers import as_said, as_typed, read_whole
from abcscale.schemas.theory import Constants

#: Adam's epsilon when --epsilon is not given: the Constants model's default, shown in --help
DEFAULT_EPSILON: float = Constants.model_fields["epsilon"].default

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
                                           help="global: one shared LR; per_layer: one LR per layer type")]


def parse_width(text: str) -> int:
    """``--width``: a whole number, also written as a float (4096.0, 4e3), as the REST fields and the Python API take
    it; a fraction is refused in their words ("expected an integer width, got 4096.5"), not as typer's "unable to
    parse string as an integer", which misled beside the 4096.0 it takes (a review)."""
    try:
        return int(text)
    except ValueError:
        pass
    reading = read_whole(text, 2**63 - 1)
    if not reading.number:
        raise typer.BadParameter("Input should be a valid integer, unable to parse string as an integer")
    if reading.too_large:
        raise typer.BadParameter(f"{as_typed(text)} is beyond any whole number this option takes")
    if reading.value is not None:
        return reading.value
    raise typer.BadParameter(f"expected an integer width, got {as_said(text)}")


Width = Annotated[int, typer.Option("--width", "-n", parser=parse_width, metavar="<int>",
                                    help="target width (model dim D)")]
WeightDecayOpt = Annotated[float | None, typer.Option(
    "--weight-decay", help="weight decay at the base width (-o adamw, lion, muon or sgd: transferred by its rule)",
    show_default="0")]
WeightDecayModeOpt = Annotated[WeightDecayMode, typer.Option(
    "--weight-decay-mode", parser=WeightDecayMode.parse, help="coupled: the step subtracts lr * wd * W (torch, "
    "optax AdamW); independent: wd * W")]
#: recommend's: None when not typed, so a constants file's own mode holds (a default of coupled overrode it)
WeightDecayModeGiven = Annotated[WeightDecayMode | None, typer.Option(
    "--weight-decay-mode", parser=WeightDecayMode.parse, help="coupled: the step subtracts lr * wd * W (torch, "
    "optax AdamW); independent: wd * W", show_default="coupled, or a --constants file's")]
FormOpt = Annotated[Form, typer.Option(
    "--form", parser=Form.parse, help="how the parameter groups are written: abc | multiplier_free (aliases "
    "plain, multiplier-free) | mup (microsoft/mup's convention)")]

# the base-width constants of a transfer (recommend, mup export): each 'e,h,r' or one number
GammaOpt = Annotated[str | None, typer.Option(help="per-layer LR constants 'e,h,r'", show_default="1,1,1")]
InitScaleOpt = Annotated[str | None, typer.Option("--init-scale", help="init std constants 'e,h,r'",
                                                  show_default="1,1,1")]
MultiplierOpt = Annotated[str | None, typer.Option(help="multiplier constants 'e,h,r'", show_default="1,1,1")]
EpsilonOpt = Annotated[float | None, typer.Option(help="Adam epsilon at the base width",
                                                  show_default=f"{DEFAULT_EPSILON:g}")]
EpsilonModeOpt = Annotated[EpsilonMode, typer.Option("--epsilon-mode", parser=EpsilonMode.parse)]
#: recommend's: None when not given, so that a --constants file's own mode holds unless the flag is typed
EpsilonModeGiven = Annotated[EpsilonMode | None, typer.Option("--epsilon-mode", parser=EpsilonMode.parse,
                                                              show_default="per_layer")]
