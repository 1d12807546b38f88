"""How ``abcscale fit`` shows a covariate table's joint laws (first, before the per-curve groups), and the
``--summary --json`` document."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from abcscale.cli._common import Table, console
from abcscale.schemas.fit import Estimate, FitResult, JointLaw, LossSurface, value_text
from abcscale.schemas.theory import Interval
from abcscale.usecases.fits import group_warnings


def _ci(ci: Interval) -> str:
    return f"[{ci.low:.3f}, {ci.high:.3f}]"


def _label(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in group.items()) or "all rows"


def law_text(j: JointLaw) -> str:
    """The law as an equation, with its bases."""
    terms = " + ".join(f"e_{n} log2({n}/{j.bases[n]:g})" for n in j.names)
    return f"log2 LR* = log2 C + {terms}"


def bases_line(j: JointLaw) -> str:
    """Where the bases come from (the user reads the constant C as LR* there)."""
    size = j.names[0]
    parts = [f"{size}={j.bases[size]:g} (the smallest size, or --base-width)"]
    parts += [f"{n}={j.bases[n]:g}" for n in j.names[1:]]
    tail = " (each covariate's median swept value, rounded to a swept value)" if len(j.names) > 1 else ""
    return "bases: " + ", ".join(parts) + tail


def print_joint(result: FitResult, warn: Callable[[str], str]) -> None:
    """Each joint law: exponents with their intervals, C, bases, the prediction, the loss law (if identified)."""
    for j in result.joint:
        level = f"{100 * j.log2_constant.ci.confidence_level:g}%"
        console.print(f"[bold]joint law[/] ({_label(j.group)}): {law_text(j)}", highlight=False)
        t = Table()
        for col in ("term", "estimate", f"{level} CI"):
            t.add_column(col, no_wrap=True)
        for n in j.names:
            e = j.exponents[n]
            t.add_row(f"e_{n}", f"{e.estimate:.3f}", _ci(e.ci))
        t.add_row("C (LR* at the bases)", f"{j.constant:.4g}", f"[{j.constant_ci.low:.4g}, {j.constant_ci.high:.4g}]")
        console.print(t)
        console.print(f"{j.n_curves} curve optima ({j.n_unidentified} without one), tau^2 {j.tau2:.3g} "
                      f"octave^2 between curves, t with {j.df} df", highlight=False)
        console.print(bases_line(j), highlight=False)
        if (p := j.prediction) is not None:
            where = ", ".join([f"{j.size_col}={p.size:g}", *(f"{k}={v:g}" for k, v in p.at.items())])
            half = (math.log2(p.ci.high) - math.log2(p.ci.low)) / 2
            console.print(f"prediction at {where}: LR* {p.lr:.4g} ({level} {p.ci.low:.4g}-{p.ci.high:.4g}, "
                          f"+-{half:.2g} octave)", highlight=False)
        if (s := j.loss_surface) is not None:
            console.print("loss law: " + surface_text(s), highlight=False)
        for note in j.notes:
            console.print(f"[dim]note:[/] {note}", highlight=False)
        for w in [*j.warnings, *(j.prediction.warnings if j.prediction is not None else [])]:
            console.print(warn(w), highlight=False)


def surface_text(s: LossSurface) -> str:
    """L(N, D) with E and the exponents' intervals; A and B are each term at the data's geometric means."""
    def e(x: Estimate) -> str:
        return f"{x.estimate:.3g} {_ci(x.ci)}"

    return (f"L(N, D) = E + A (N/{s.size_scale:.3g})^-alpha + B (D/{s.tokens_scale:.3g})^-beta: E {e(s.E)}, "
            f"alpha {e(s.alpha)}, beta {e(s.beta)}, A {s.A.estimate:.3g}, B {s.B.estimate:.3g} ({s.n_points} points)")


def summary_json(result: FitResult) -> dict[str, Any]:
    """``--summary --json``: what ``--summary`` prints, as one JSON document (joint laws first)."""
    def est(e: Any) -> dict[str, Any] | None:
        # the flat low/high this summary always had, and `ci` as `--json` shapes it (a CI step reading one
        # shape from both: `exponent.ci.low`; a review, session 50)
        return None if e is None else {"estimate": e.estimate, "low": e.ci.low, "high": e.ci.high,
                                       "confidence_level": e.ci.confidence_level,
                                       "ci": e.ci.model_dump(mode="json")}

    joint = [{"group": j.group, "names": j.names, "bases": j.bases,
              "exponents": {n: est(j.exponents[n]) for n in j.names}, "constant": j.constant,
              "constant_ci": [j.constant_ci.low, j.constant_ci.high], "tau2": j.tau2, "df": j.df,
              "n_curves": j.n_curves,
              "prediction": None if j.prediction is None else j.prediction.model_dump(mode="json"),
              "loss_surface": None if j.loss_surface is None else j.loss_surface.model_dump(mode="json"),
              "notes": j.notes, "warnings": j.warnings}
             for j in result.joint]
    # the prediction --summary prints ("at width N: LR* ..."), whole, as the joint laws give theirs
    groups = [{"group": g.group, "exponent": est(g.exponent), "theory_exponent": g.theory_exponent,
               "theory_span": g.theory_span,
               "consistent": g.consistent, "n_warnings": len(group_warnings(g)),
               "prediction": None if g.prediction is None else g.prediction.model_dump(mode="json")}
              for g in result.groups]
    return {"n_rows": result.provenance.n_rows, "loss_col": result.mapping.loss_col,
            "size_col": result.mapping.size_col, "size_kind": result.mapping.size_kind, "joint": joint,
            "groups": groups, "warnings": result.warnings}

