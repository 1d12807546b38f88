"""``abcscale predict FIT --size N [--at D=...]``: LR* at any size (and covariate values) from a fit alone.

``abcscale fit --target-size N --at ...`` predicts at one point while it fits; a stored fit answers any other
point without its table (the same numbers, :func:`abcscale.usecases.fits.predict_at`), as ``abcscale.predict``
and ``POST /v1/fits/{id}/predict`` do.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from abcscale.cli._common import (
    console,
    emit_json,
    err_console,
    fail,
    fail_gate,
    parse_flag,
    read_fit,
    to_jsonable,
    verdict,
)
from abcscale.cli.fit import _pairs, beta_line, swept_beta, warning_line
from abcscale.cli.options import Json, Quiet
from abcscale.cli.recommend import band_line
from abcscale.schemas.fit import FitPrediction, JointPrediction
from abcscale.usecases.fits import group_label, predict_at
from abcscale.usecases.recommend import SELECT_HINT, GroupSelectError

#: how this command names the use case's fields in its messages
_FLAGS = {"width": "--size", "at": "--at", "group": "--group"}
_SAID = {"at": "--at", "group": "--group", "covariates": "`abcscale fit --covariates`"}


def predict(
    fit: Annotated[Path, typer.Argument(help="a fit.json from `abcscale fit --out` (or that folder; a stored fit "
                                        "as the service answers it reads too)")],
    size: Annotated[float, typer.Option("--size", "--target-size", "--width", "-n",
                                        help="the size to predict at: a width, or a parameter count for a fit "
                                        "with --size-kind params (7e9)")],
    at: Annotated[list[str] | None, typer.Option("--at", help="covariate values to predict at, 'D=1e11,"
                                                 "batch_size=256' (a fit with --covariates: its joint law; others "
                                                 "sit at their bases; 'bases': every one there); repeatable",
                                                 show_default=False)] = None,
    group: Annotated[str | None, typer.Option("--group", help="pick the fit's group (or joint law), "
                                              "'key=value,...' or a JSON object", show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when the prediction is unreliable (a "
                                         "warning starting 'unreliable:')")] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """LR* at a size, and at covariate values (tokens, batch size), from a fit alone: no table, no refit.

    The same numbers as `abcscale fit TABLE --target-size N --at ...` (JSON: exactly one of `prediction`, a
    group's, and `joint`, a joint law's).
    """
    del quiet  # nothing slow to show progress for: reading a fit and one prediction
    # `--at bases`: the joint law at every covariate's base, what `fit --target-size N` without --at predicts (an
    # empty --at is refused: an unset variable)
    at_values: dict[str, float] | Literal["bases"] | None = (
        "bases" if at == ["bases"] else parse_flag(_pairs, ",".join(at) if at else None, "--at"))
    from abcscale.fitting.predict import NoLaw  # the fitting package loads here, not with the CLI

    result = read_fit(fit, "fit")  # its messages start with "fit: ", the argument's name
    try:
        answer = predict_at(result, size, at=at_values, group=group, names=_SAID)
    except GroupSelectError as exc:  # several groups, or none, match: which to pick is --group's
        fail("--group: " + str(exc).replace(SELECT_HINT, "select one with --group key=value,..."))
    except NoLaw as exc:  # the data's shortfall, not the input's: a gate fails it as `fit --strict` does
        if strict:  # through fail(): with --json the one JSON document says it too (stdout was empty, a review),
            # with `failed` as a passing or failing answer's verdict has it
            said = f"--strict: unreliable: {str(exc).partition(': ')[2]}"
            fail_gate(said, [said])
        fail(f"fit: {str(exc).partition(': ')[2]}")  # the fit's shortfall, not --group's (it picked the group)
    except ValueError as exc:
        field, _, rest = str(exc).partition(": ")
        if str(exc).startswith("group key "):
            fail(f"--group: {exc}")
        fail(f"{_FLAGS[field]}: {rest}" if field in _FLAGS and rest else str(exc))
    failed = [f"--strict: unreliable: {why}" for why in answer.unreliable] if strict else []
    if as_json:  # the verdict as `check --json` gives it, then the answer (a CI step reads `ok` and `failed`)
        emit_json({**verdict(failed), **to_jsonable(answer)})
    else:
        _print(answer)
    if failed:
        for why in answer.unreliable:
            err_console.print(f"[red]--strict: unreliable:[/] {escape(why)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _print(answer: FitPrediction) -> None:
    """The group's (or joint law's) label, the LR with its bands, then every warning."""
    noun = "size" if answer.size_kind != "width" else "width"
    if answer.joint is not None:
        j: JointPrediction = answer.joint
        where = ", ".join([f"{noun} {j.size:g}", *(f"{k}={v:g}" for k, v in j.at.items())])
        level = 100 * j.ci.confidence_level
        own = "" if any(math.isclose(level, x) for x in (68, 95)) else f"{level:g}% [{j.ci.low:.4g}, {j.ci.high:.4g}]  "
        half = (math.log2(j.ci95[1]) - math.log2(j.ci95[0])) / 2
        label = group_label(answer.group).strip("()")
        console.print(f"joint law ({label}): LR* at {where}: {j.lr:.4g}  {own}68% [{j.ci68[0]:.4g}, "
                      f"{j.ci68[1]:.4g}]  95% [{j.ci95[0]:.4g}, {j.ci95[1]:.4g}] (+-{half:.2g} octave)",
                      highlight=False)
        warnings = j.warnings
    else:
        p = answer.prediction
        assert p is not None
        # a per-layer sweep's LR* is beta, the base LR, not a layer's (a review: 0.02268 beside a hidden LR of
        # 0.000709): said on the line, and the layers' LRs under it
        what = ("beta (base LR) " if swept_beta(answer.group, p) else
                "" if p.lr_layer is None else f"the {p.lr_layer} layer's own LR ")
        console.print(f"{group_label(answer.group)}: LR* at {noun} {p.width:g}: {what}{band_line(p, noun)}",
                      highlight=False)
        if (said := beta_line(p, answer.group, noun)) is not None:
            console.print(said, highlight=False)
        warnings = p.warnings
    for w in warnings:
        console.print(warning_line(w), highlight=False)
