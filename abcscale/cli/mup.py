"""``abcscale mup import`` and ``abcscale mup export``: microsoft/mup setups in abcscale's terms and back."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from abcscale.cli._common import Command, Group, Table, build, console, emit_json, fail, parse_flag, validation_message
from abcscale.cli.options import (
    EpsilonModeOpt,
    EpsilonOpt,
    GammaOpt,
    InitScaleOpt,
    Json,
    MultiplierOpt,
    OptimizerReq,
    ParamOpt,
    WeightDecayModeOpt,
    WeightDecayOpt,
    Width,
)
from abcscale.cli.theory import frac
from abcscale.schemas.api import MupExport, MupImport, MupImportRequest
from abcscale.schemas.enums import LAYERS, EpsilonMode, WeightDecayMode, mup_wrapper, mup_wrapper_call
from abcscale.schemas.groups import Role
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.theory import layer_rules

app = typer.Typer(cls=Group, help="microsoft/mup setups in abcscale's terms (import) and back (export).",
                  no_args_is_help=True)

#: request fields -> the flags that set them
FLAGS = {"base_width": "--base-width", "output_mult": "--output-mult", "init_std": "--init-std", "lr": "--lr",
         "width": "--width", "base.width": "--base-width", "base.beta": "--base-lr", "weight_decay": "--weight-decay",
         "base.weight_decay": "--weight-decay"}


def _per_role(text: str, n: int) -> float | dict[str, float]:
    """``3e-3`` (every role) or one number per role (the first ``n`` of embedding, hidden, readout, vector),
    comma-separated; a ValueError says what is expected."""
    from abcscale.usecases.mup import per_role

    return per_role(text, n)  # type: ignore[return-value]  # text: a number or a dict of numbers


@app.command("import", cls=Command)
def mup_import(
    optimizer: OptimizerReq,
    base_width: Annotated[int, typer.Option("--base-width", help="set_base_shapes' base width")],
    lr: Annotated[str, typer.Option("--lr", help="what MuAdam/MuSGD is given: one number, or 'e,h,r,v' per role "
                                    "(embedding, hidden, readout, vector; a fifth, f: the readout's bias in a "
                                    "group of its own)")],
    output_mult: Annotated[float, typer.Option("--output-mult", help="MuReadout's output_mult")] = 1.0,
    init_std: Annotated[str | None, typer.Option("--init-std", help="init stds at the base width 'e,h,r'",
                                                 show_default=False)] = None,
    width: Annotated[int | None, typer.Option("--width", "-n", help="the width to run at",
                                              show_default="--base-width")] = None,
    epsilon: Annotated[str | None, typer.Option(help="Adam epsilon: one number, or each param group's 'e,h,r,v[,f]' "
                                                "per role", show_default="1e-08")] = None,
    weight_decay: Annotated[float | None, typer.Option(
        "--weight-decay", help="what MuAdamW, MuAdam(impl=Lion) or MuSGD is given (one number; MuAdam(W) multiplies "
        "the hidden groups' by width_mult, MuSGD divides the others')",
        show_default="0")] = None,
    epsilon_mode: Annotated[EpsilonMode, typer.Option(
        "--epsilon-mode", parser=EpsilonMode.parse, help="how the constants carry epsilon to other widths: "
        "constant (one epsilon in abcscale's form, as mup keeps its one) or per_layer (scaled with each layer's "
        "gradient, the theory's rule); the two agree at the base width")] = EpsilonMode.constant,
    as_json: Json = False,
) -> None:
    """abcscale's constants for a microsoft/mup setup, and the equivalent `abcscale recommend` command."""
    from abcscale.usecases.mup import mup_import as run

    req = build(MupImportRequest, FLAGS, optimizer=optimizer, base_width=base_width, width=width,
                lr=parse_flag(lambda t: _per_role(t, 4), lr, "--lr"), output_mult=output_mult,
                init_std=parse_flag(lambda t: _per_role(t, 3), init_std, "--init-std"),
                epsilon=parse_flag(lambda t: _per_role(t, 4), epsilon, "--epsilon"),
                weight_decay=weight_decay)
    # recommend --constants FILE --epsilon-mode was "given by the flag and in --constants; drop one", and mup import
    # always wrote constant: the theory's per-layer epsilon took a hand edit of the file (a review, session 63)
    out = run(req, epsilon_mode=epsilon_mode)
    if as_json:
        emit_json(out)
        return
    print_import(out)


def print_import(out: MupImport) -> None:
    c = out.constants
    t = Table(title=f"microsoft/mup ({out.setup.optimizer.value}, base width {out.setup.base_width}, output_mult "
                    f"{out.setup.output_mult:g}) as abcscale's muP constants: beta {c.beta:.6g}")
    for col in ("layer", "gamma", "multiplier", "init_scale"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for layer in LAYERS:
        t.add_row(layer.value, *(f"{getattr(getattr(c, f), layer.value):.6g}" for f in ("gamma", "multiplier",
                                                                                       "init_scale")))
    console.print(t)
    if layer_rules(out.setup.optimizer).has_epsilon:
        console.print(f"epsilon {c.epsilon:g} (epsilon_mode {c.epsilon_mode.value})", highlight=False)
    if c.weight_decay:
        console.print(f"weight decay {c.weight_decay:g} ({c.weight_decay_mode.value})", highlight=False)
    console.print(f"equivalent: {out.command}", highlight=False, soft_wrap=True)
    if len(set(out.setup.lr.values())) == 1:  # one lr for every group: what a sweep of this setup swept
        # the fit of such a sweep holds mup's lr, which recommend reads with these constants (a review read it with
        # abcscale's defaults: embedding and readout lrs off by sqrt(base width))
        mu = mup_wrapper(out.setup.optimizer)  # lion's, adafactor's and muon's were said MuAdam, MuAdamW
        console.print(f"a fit of a sweep of this setup ({mu}'s one lr swept; fit it with --lr-mode per_layer): save "
                      "this with --json and give it as `abcscale recommend --fit FIT --width N --constants FILE`",
                      highlight=False, soft_wrap=True)
    for w in out.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command("export", cls=Command)
def mup_export(
    width: Width,
    optimizer: OptimizerReq,
    base_width: Annotated[int, typer.Option("--base-width", help="width beta was tuned at")],
    base_lr: Annotated[float, typer.Option("--base-lr", help="beta, the LR tuned at the base width")],
    parameterization: ParamOpt = None,
    gamma: GammaOpt = None,
    init_scale: InitScaleOpt = None,
    multiplier: MultiplierOpt = None,
    epsilon: EpsilonOpt = None,
    epsilon_mode: EpsilonModeOpt = EpsilonMode.per_layer,
    weight_decay: WeightDecayOpt = None,
    weight_decay_mode: WeightDecayModeOpt = WeightDecayMode.coupled,
    as_json: Json = False,
) -> None:
    """A transfer (default muP) as microsoft/mup's setup: set_base_shapes, MuAdam/MuSGD lr, MuReadout, mup.init."""
    from abcscale import usecases
    from abcscale.usecases.mup import mup_export as run

    constants = build(Constants, {}, gamma=parse_flag(PerLayer.parse, gamma, "--gamma"),
                      init_scale=parse_flag(PerLayer.parse, init_scale, "--init-scale"),
                      multiplier=parse_flag(PerLayer.parse, multiplier, "--multiplier"), epsilon=epsilon,
                      epsilon_mode=epsilon_mode, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode)
    try:
        req = usecases.recommend_request(width=width, parameterization=parameterization or "mup",
                                         optimizer=optimizer, base_width=base_width, beta=base_lr,
                                         constants=constants)
    except ValidationError as exc:
        fail(validation_message(exc, FLAGS))
    try:
        out = run(req)  # type: ignore[arg-type]  # no fit_id: always the analytic request
    except ValueError as exc:  # theory's "weight_decay: ..." is the flag's
        if not str(exc).startswith("weight_decay:"):
            raise
        fail("--" + str(exc).replace("weight_decay:", "weight-decay:", 1))
    if as_json:
        emit_json(out)
        return
    print_export(out)


def print_export(out: MupExport) -> None:
    s = out.setup
    muon = s.optimizer.value == "muon"
    console.print(f"set_base_shapes(model, base)  # base model at width {s.base_width}; this run: width {s.width} "
                  f"(width_mult {s.width_mult:g})", highlight=False)
    console.print(f"MuReadout(..., output_mult={s.output_mult:g})", highlight=False)
    one_eps = set((s.epsilon or {}).values())  # one number: in the call; several: a column, per group
    eps = f", eps={one_eps.pop():g}" if len(one_eps) == 1 else ""
    per_eps = len(one_eps) > 1
    # Adafactor's floor on a parameter's scale maps with the form: each group's own (torch's Adafactor eps[1]), as
    # `recommend --form mup` and --json give it (the table left it out, a review)
    floors = any(r.param_scale_floor is not None for r in out.roles)
    per_group = ", ".join(["lr", *(["eps"] if per_eps else []), *(["weight_decay"] if s.weight_decay else []),
                           *(["param scale floor"] if floors else [])])
    per_group = f"{per_group} per group"
    # adafactor's and lion's wrapper is MuAdam(impl=...): plain MuAdam runs Adam
    call = mup_wrapper_call(s.optimizer, "param_groups", *([eps.removeprefix(", ")] if eps else []))
    title = f"{call}: {per_group}, and mup.init stds at the base width"
    if muon:  # no Mu-wrapper exists for Muon: say what runs the hidden group instead of naming MuAdam for it
        title = (f"{call} on embedding, readout and vector, a plain Muon (microsoft/mup has no "
                 f"Muon wrapper) on hidden: {per_group}, and mup.init stds at the base width")
    t = Table(title=title)
    wd = s.weight_decay
    # an independent decay has no Mu-optimizer spelling (the setup gives none): still shown, to apply yourself
    applied_wd = bool(wd) or any(r.weight_decay for r in out.roles)
    # the given columns under the kwargs' names (the title names the optimizer): nine columns fit 140 characters
    for col in ("group", f"{mup_wrapper(s.optimizer)} lr", *(["eps"] if per_eps else []),
                *(["weight_decay"] if wd else []), *(["scale floor"] if floors else []), "init std at base",
                "applied lr", *(["applied decay"] if applied_wd else []), "applied init std", "multiplier"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for r in out.roles:
        base_std = s.init_std.get(r.role)
        # the readout's bias (fixed) sits in the vector group unless the setup gives it a group of its own
        given = r.role if r.role in s.lr else Role.vector
        label = r.role.value if given is r.role else f"{r.role.value} (in the vector group)"
        group_eps = (s.epsilon or {}).get(given)
        t.add_row(label, f"{s.lr[given]:.4g}", *(["-" if group_eps is None else f"{group_eps:.4g}"]
                                                 if per_eps else []),
                  *([f"{wd.get(given, 0.0):.4g}"] if wd else []),
                  *(["-" if r.param_scale_floor is None else f"{r.param_scale_floor:.4g}"] if floors else []),
                  # a hidden matrix of fan-in r x width takes it x r^-1/2, as the exports draw it (one number
                  # read as every hidden matrix's was 2x theirs for an MLP's 4D -> D projection: session 63)
                  "-" if base_std is None else f"{base_std:.4g}" + (" x r^-1/2" if r.role is Role.hidden else ""),
                  f"{r.lr:.4g}",
                  *([f"{r.weight_decay or 0.0:.4g}"] if applied_wd else []),
                  "-" if r.init_std is None else f"{r.init_std:.4g}",
                  "-" if r.multiplier is None else frac(r.multiplier))
    console.print(t)
    if floors:
        console.print("scale floor: Adafactor scales each step by max(rms(W), floor); give each param group its own "
                      "(torch.optim.Adafactor's eps=(1e-15, floor), optax.scale_by_param_block_rms(min_scale))",
                      highlight=False)
    for w in out.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
