"""``abcscale theory table`` and ``abcscale theory convert``: the abc-parameterization algebra."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated

import typer
from rich.markup import escape

from abcscale.cli._common import Command, Group, Table, build, console, emit_json, err_console, parse_flag
from abcscale.cli.options import (
    DEFAULT_EPSILON,
    AlignmentOpt,
    Json,
    OptimizerReq,
    WeightDecayModeOpt,
    WeightDecayOpt,
)
from abcscale.schemas.api import ConvertRequest
from abcscale.schemas.enums import LAYERS, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.theory import Alignment, ExponentRow, PerLayer

app = typer.Typer(cls=Group, help="The abc-parameterization algebra (tables, conversion).", no_args_is_help=True)

PerLayerOpt = Annotated[str | None, typer.Option(help="'e,h,r' or one number for every layer", show_default=False)]


def frac(x: float) -> str:
    f = Fraction(x).limit_denominator(64)
    return str(f) if abs(float(f) - x) < 1e-9 else f"{x:g}"


@app.command("table", cls=Command)
def table(
    parameterization: Annotated[list[str] | None, typer.Option(
        "--parameterization", "-p", help="one parameterization or a comma list (sp,mup); repeatable; aliases sp, mf",
        show_default="all")] = None,
    optimizer: Annotated[list[str] | None, typer.Option("--optimizer", "-o", help="one optimizer or a comma list "
                                                        "(lion,muon); repeatable", show_default="all")] = None,
    alignment: Annotated[list[str] | None, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U; "
                                                        "repeatable", show_default="full and none")] = None,
    as_json: Json = False,
) -> None:
    """Per-layer exponents (a, b, c) solved from the stability constraints."""
    from abcscale import theory
    from abcscale.theory.transfer import alignment_range

    # -o and -a repeat as -p does: a second one kept only the last in silence, beside the repeatable -p (a review)
    als = [parse_flag(Alignment.parse, a, "--alignment") for a in alignment or ()]
    als = [a for i, a in enumerate(als) if a not in als[:i]]
    opts = parse_flag(lambda v: list(dict.fromkeys(Optimizer.parse(o) for o in v.split(","))), ",".join(optimizer),
                      "--optimizer") if optimizer else None
    # every -p given (a repeated -p kept only the last, silently), each a name or a comma list
    params = parse_flag(lambda v: list(dict.fromkeys(Parameterization.parse(p) for p in v.split(","))),
                        ",".join(parameterization), "--parameterization") if parameterization else None
    rows = theory.theory_table(params, opts, als or None)
    # an alignment past none..full: said on stderr as recommend says it (the rows' JSON is a list, kept as it is)
    for w in [w for al in als for w in alignment_range(al)]:
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    if as_json:
        emit_json(rows)
        return
    t = Table(title="abc exponents: multiplier n^-a, init n^-b, LR (n/base)^-c")
    for col in ("parameterization", "optimizer", "alignment", "layer", "a", "b", "c", "global c", "eps e", "unique"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.parameterization, r.optimizer.value, r.alignment.name, r.layer.value, frac(r.a), frac(r.b),
                  frac(r.c), frac(r.global_c), "-" if r.epsilon_exponent is None else frac(r.epsilon_exponent),
                  _unique(r))
    console.print(t)


def _unique(r: ExponentRow) -> str:
    """"no [lo, hi]" where the optimum is a face; "yes, alone c" where it is one point that a layer could still leave
    for a smaller c by raising another's ("yes" alone said nothing of it: a theory review, session 54)."""
    if not r.unique and r.c_range and abs(r.c_range[1] - r.c_range[0]) < 1e-9:
        # the optimum is a face, but this layer's c is the same all over it: another layer's moves ("no [1, 1]"
        # read as if this one were free, a review)
        return "this layer yes; another's c is free"
    if not r.unique:
        return "[red]no[/]" + (f" [{frac(r.c_range[0])}, {frac(r.c_range[1])}]" if r.c_range else "")
    if r.lower_bound is not None and r.lower_bound < r.c - 1e-6:
        return f"yes; trades: alone {frac(r.lower_bound)}"
    return "yes"


@app.command("convert", cls=Command)
def convert(
    optimizer: OptimizerReq,
    source: Annotated[Parameterization, typer.Option("--from", parser=Parameterization.parse,
                                                     help="parameterization the setting is in")],
    target: Annotated[Parameterization, typer.Option("--to", parser=Parameterization.parse,
                                                     help="parameterization to express it in")],
    width: Annotated[int, typer.Option("--width", "-n", help="width of the setting")],
    base_width: Annotated[int | None, typer.Option("--base-width", help="base width of --base-lr",
                                                   show_default="--width")] = None,
    base_lr: Annotated[float, typer.Option("--base-lr", help="beta at the base width")] = 1e-3,
    alignment: AlignmentOpt = "full",
    lr: PerLayerOpt = None,
    multiplier: PerLayerOpt = None,
    init_std: Annotated[str | None, typer.Option("--init-std", help="actual init stds 'e,h,r', or one number for "
                                                 "every layer",
                                                 show_default=False)] = None,
    epsilon: Annotated[str | None, typer.Option(help="the source setting's Adam epsilon at the target width: one "
                                                "number for every layer, or 'e,h,r' (a converted setting's, to "
                                                "convert it back); not transferred from --base-width by the epsilon "
                                                "rule, as recommend's is", show_default=f"{DEFAULT_EPSILON:g}")] = None,
    weight_decay: WeightDecayOpt = None,
    weight_decay_mode: WeightDecayModeOpt = WeightDecayMode.coupled,
    as_json: Json = False,
) -> None:
    """The equivalent setting under another parameterization (same function and dynamics).

    The setting is the analytic one from --base-lr at --base-width, with --lr, --multiplier and
    --init-std replacing its per-layer values where given. An AdamW --weight-decay is transferred from
    --base-width by its rule (without --base-width it is every layer's decay at --width).
    """
    from abcscale.usecases import convert_setting

    req = build(ConvertRequest, {"source": "--from", "target": "--to"}, optimizer=optimizer, source=source,
                target=target, width=width, base_width=base_width, base_lr=base_lr,
                alignment=parse_flag(Alignment.parse, alignment, "--alignment"),
                lr=parse_flag(PerLayer.parse, lr, "--lr"),
                multiplier=parse_flag(PerLayer.parse, multiplier, "--multiplier"),
                init_std=parse_flag(PerLayer.parse, init_std, "--init-std"),
                epsilon=parse_flag(_epsilon, epsilon, "--epsilon"),
                weight_decay=weight_decay, weight_decay_mode=weight_decay_mode)
    conv = convert_setting(req)
    if as_json:
        emit_json(conv)
        return
    p1, p2 = conv.source_parameterization, conv.target_parameterization
    t = Table(title=f"{p1} -> {p2} at width {conv.width} ({conv.optimizer.value}, k={conv.k})")
    decay = conv.weight_decay_mode is not None  # a column only for an optimizer with decoupled decay (AdamW)
    for col in ("layer", "theta", "multiplier", "init std", "LR", "epsilon",
                *([f"weight decay ({conv.weight_decay_mode})"] if decay else [])):
        t.add_column(col)

    def eps(x: float | None) -> str:
        return "-" if x is None else f"{x:.3g}"

    for s1, s2 in zip(conv.source.layers, conv.converted.layers, strict=True):
        t.add_row(s1.layer.value, frac(conv.theta[s1.layer.value]), f"{s1.multiplier:.4g} -> {s2.multiplier:.4g}",
                  f"{s1.init_std:.4g} -> {s2.init_std:.4g}", f"{s1.lr:.4g} -> {s2.lr:.4g}",
                  f"{eps(s1.epsilon)} -> {eps(s2.epsilon)}",
                  *([f"{eps(s1.weight_decay)} -> {eps(s2.weight_decay)}"] if decay else []))
    console.print(t)
    console.print("c exponents: " + ", ".join(
        f"{layer.value} {frac(conv.c_from[layer.value])} -> {frac(conv.c_to[layer.value])}" for layer in LAYERS))
    for w in conv.warnings:
        console.print(f"[yellow]note:[/] {w}", highlight=False)


def _epsilon(text: str) -> float | PerLayer:
    """``--epsilon``: one number (0 allowed: none) or ``e,h,r`` per layer."""
    if "," in text or ":" in text or "=" in text:
        parts = [p.strip() for p in text.split(",")]
        try:  # one number on every layer is that number (0 too, which a per-layer table refuses)
            if len(parts) == 3 and len({float(p) for p in parts}) == 1:
                return float(parts[0])
        except ValueError:
            pass
        return PerLayer.parse(text)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number or 'e,h,r', got {text!r}") from None
