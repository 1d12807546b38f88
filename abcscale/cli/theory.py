"""``abcscale theory table``, ``abcscale theory convert`` and ``abcscale recommend``."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abcscale.cli._common import console, emit_json, fail, parse_or_fail
from abcscale import theory
from abcscale.schemas.enums import LAYERS, Layer, LrMode, Optimizer, Parameterization
from abcscale.schemas.theory import Alignment, BaseConfig, LayerSetting, PerLayer, Setting

ParamOpt = Annotated[str | None, typer.Option("--parameterization", "-p", help="standard|ntk|mup|mean_field (sp, mf)")]
AlignOpt = Annotated[str, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U")]


def frac(x: float) -> str:
    f = Fraction(x).limit_denominator(64)
    return str(f) if abs(float(f) - x) < 1e-9 else f"{x:g}"


def _param(v: str) -> Parameterization:
    return parse_or_fail(Parameterization.parse, v, "--parameterization")


def _opt(v: str) -> Optimizer:
    return parse_or_fail(Optimizer.parse, v, "--optimizer")


def _align(v: str | None) -> Alignment:
    return parse_or_fail(Alignment.parse, v or "full", "--alignment")


def _lr_mode(v: str) -> LrMode:
    return parse_or_fail(LrMode.parse, v, "--lr-mode")


def _positive_int(v: int, what: str) -> int:
    if v <= 0:
        fail(f"{what}: must be a positive integer, got {v}")
    return v


def _positive(v: float, what: str) -> float:
    if not (v > 0) or v == float("inf"):
        fail(f"{what}: must be a positive finite number, got {v}")
    return v


def _per_layer(v: str | None, what: str) -> PerLayer:
    return parse_or_fail(PerLayer.parse, v, what)


def print_transfer(rec, title: str) -> None:
    t = Table(title=title)
    for col in ("layer", "a", "b", "c", "multiplier", "init std", "learning rate", "epsilon"):
        t.add_column(col, justify="right" if col != "layer" else "left")
    for s in rec.layers:
        e = rec.exponents[s.layer.value]
        t.add_row(s.layer.value, frac(e.a), frac(e.b), frac(e.c), f"{s.multiplier:.4g}", f"{s.init_std:.4g}",
                  f"{s.lr:.4g}", "-" if s.epsilon is None else f"{s.epsilon:.3g}")
    console.print(t)
    band = getattr(rec, "band", None)
    if band is not None:
        console.print(
            f"fitted LR at width {rec.width}: {band.lr:.4g}  68% [{band.ci68[0]:.4g}, {band.ci68[1]:.4g}]  "
            f"95% [{band.ci95[0]:.4g}, {band.ci95[1]:.4g}]  safe-side {band.safe_lr:.4g}  "
            f"expected loss penalty {100 * band.expected_loss_penalty:.2f}%  "
            f"(extrapolation x{band.extrapolation_factor:.3g})"
        )
    for w in rec.warnings:
        console.print(f"[yellow]warning:[/] {w}")


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    @theory_app.command("table")
    def table(
        parameterization: ParamOpt = None,
        optimizer: Annotated[str | None, typer.Option("--optimizer", "-o", help="sgd|adam|adafactor")] = None,
        alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full | none | A,O,U")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Per-layer exponents (a, b, c) solved from the stability constraints."""
        ps = [_param(parameterization)] if parameterization else None
        os_ = [_opt(optimizer)] if optimizer else None
        als = [_align(alignment)] if alignment else None
        try:
            rows = theory.theory_table(ps, os_, als)
        except ValueError as exc:
            fail(str(exc))
        if as_json:
            emit_json(rows)
            return
        t = Table(title="abc exponents: multiplier n^-a, init n^-b, LR (n/base)^-c")
        for col in ("parameterization", "optimizer", "alignment", "layer", "a", "b", "c", "global c",
                    "eps g", "unique"):
            t.add_column(col)
        for r in rows:
            t.add_row(r.parameterization, r.optimizer.value, r.alignment.name, r.layer.value, frac(r.a),
                      frac(r.b), frac(r.c), frac(r.global_c),
                      "-" if r.epsilon_exponent is None else frac(r.epsilon_exponent),
                      "yes" if r.unique else "[red]no[/]")
        console.print(t)

    @theory_app.command("convert")
    def convert(
        optimizer: Annotated[str, typer.Option("--optimizer", "-o", help="sgd|adam|adafactor")],
        source: Annotated[str, typer.Option("--from", help="parameterization the setting is in")],
        target: Annotated[str, typer.Option("--to", help="parameterization to express it in")],
        width: Annotated[int, typer.Option("--width", "-n", help="width of the setting")],
        base_width: Annotated[int | None, typer.Option("--base-width", help="base width of beta")] = None,
        base_lr: Annotated[float, typer.Option("--base-lr", help="beta at the base width")] = 1e-3,
        alignment: AlignOpt = "full",
        lr: Annotated[str | None, typer.Option(help="actual LRs 'e,h,r' (overrides the analytic ones)")] = None,
        multiplier: Annotated[str | None, typer.Option(help="actual multipliers 'e,h,r'")] = None,
        init_std: Annotated[str | None, typer.Option("--init-std", help="actual init stds 'e,h,r'")] = None,
        epsilon: Annotated[float | None, typer.Option(help="Adam epsilon (same on every layer)")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """The equivalent setting under another parameterization (same function and dynamics)."""
        opt, p1, p2, al = _opt(optimizer), _param(source), _param(target), _align(alignment)
        _positive_int(width, "--width")
        base = BaseConfig(width=_positive_int(base_width or width, "--base-width"),
                          beta=_positive(base_lr, "--base-lr"),
                          epsilon=epsilon if epsilon is not None else 1e-8, epsilon_mode="constant")
        start = theory.transfer(p1, opt, base, width, al, LrMode.per_layer)
        over = {k: _per_layer(v, f"--{k.replace('_', '-')}") if v else None
                for k, v in (("lr", lr), ("multiplier", multiplier), ("init_std", init_std))}
        layers = []
        for s in start.layers:
            d = s.model_dump()
            for k, pl in over.items():
                if pl is not None:
                    d[k] = pl[s.layer]
            if opt is not Optimizer.adam:
                d["epsilon"] = None
            layers.append(LayerSetting(**d))
        setting = Setting(parameterization=p1, optimizer=opt, width=width, layers=layers)
        conv = theory.convert(setting, p1, p2, al)
        if as_json:
            emit_json({
                "optimizer": opt.value, "from": p1.value, "to": p2.value, "width": width, "k": conv.k,
                "symmetric": conv.symmetric, "source": setting, "converted": conv.setting,
                "theta": {l.value: conv.theta[l] for l in LAYERS},
                "c_from": {l.value: conv.c_from[l] for l in LAYERS},
                "c_to": {l.value: conv.c_to[l] for l in LAYERS}, "warnings": list(conv.warnings),
            })
            return
        t = Table(title=f"{p1.value} -> {p2.value} at width {width} ({opt.value}, k={conv.k})")
        for col in ("layer", "theta", "multiplier", "init std", "LR", "epsilon"):
            t.add_column(col)

        def eps(x):
            return "-" if x is None else f"{x:.3g}"

        for s1, s2 in zip(setting.layers, conv.setting.layers, strict=True):
            l = s1.layer
            t.add_row(l.value, frac(conv.theta[l]), f"{s1.multiplier:.4g} -> {s2.multiplier:.4g}",
                      f"{s1.init_std:.4g} -> {s2.init_std:.4g}", f"{s1.lr:.4g} -> {s2.lr:.4g}",
                      f"{eps(s1.epsilon)} -> {eps(s2.epsilon)}")
        console.print(t)
        console.print("c exponents: " + ", ".join(
            f"{l.value} {frac(conv.c_from[l])} -> {frac(conv.c_to[l])}" for l in LAYERS))
        for w in conv.warnings:
            console.print(f"[yellow]note:[/] {w}")

    @app.command("recommend")
    def recommend(
        width: Annotated[int, typer.Option("--width", "-n", help="target width (model dim D)")],
        parameterization: ParamOpt = None,
        optimizer: Annotated[str | None, typer.Option("--optimizer", "-o", help="sgd|adam|adafactor")] = None,
        base_width: Annotated[int | None, typer.Option("--base-width", help="width beta was tuned at")] = None,
        base_lr: Annotated[float | None, typer.Option("--base-lr", help="beta, the LR tuned at base width")] = None,
        alignment: AlignOpt = "full",
        lr_mode: Annotated[str, typer.Option("--lr-mode", help="per_layer | global")] = "per_layer",
        gamma: Annotated[str | None, typer.Option(help="per-layer LR constants 'e,h,r'")] = None,
        init_scale: Annotated[str | None, typer.Option("--init-scale", help="init std constants 'e,h,r'")] = None,
        multiplier: Annotated[str | None, typer.Option(help="multiplier constants 'e,h,r'")] = None,
        epsilon: Annotated[float, typer.Option(help="Adam epsilon at the base width")] = 1e-8,
        epsilon_mode: Annotated[str, typer.Option("--epsilon-mode", help="per_layer | constant")] = "per_layer",
        fit: Annotated[Path | None, typer.Option("--fit", help="a fit.json from `abcscale fit`")] = None,
        group: Annotated[str | None, typer.Option(help="with --fit: pick a group, 'key=value,...'")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Per-layer multiplier, init std, LR and epsilon at a target width."""
        _positive_int(width, "--width")
        if epsilon_mode not in ("per_layer", "constant"):
            fail(f"--epsilon-mode: must be per_layer or constant, got {epsilon_mode!r}")
        if epsilon < 0:
            fail(f"--epsilon: must be >= 0, got {epsilon}")
        mode, al = _lr_mode(lr_mode), _align(alignment)
        consts = dict(gamma=_per_layer(gamma, "--gamma"), init_scale=_per_layer(init_scale, "--init-scale"),
                      multiplier=_per_layer(multiplier, "--multiplier"), epsilon=epsilon,
                      epsilon_mode=epsilon_mode)
        if fit is not None:
            rec = _recommend_from_fit(fit, width, group, parameterization, optimizer, alignment, lr_mode, consts)
        else:
            missing = [f for f, v in (("--parameterization", parameterization), ("--optimizer", optimizer),
                                      ("--base-width", base_width), ("--base-lr", base_lr)) if v is None]
            if missing:
                fail("analytic mode needs " + ", ".join(missing) + " (or pass --fit fit.json)")
            p, opt = _param(parameterization), _opt(optimizer)
            base = parse_or_fail(lambda _: BaseConfig(
                width=_positive_int(base_width, "--base-width"), beta=_positive(base_lr, "--base-lr"),
                **consts), None, "base")
            rec = recommend_analytic(p, opt, base, width, al, mode)
        if as_json:
            emit_json(rec)
            return
        print_transfer(rec, f"{rec.parameterization} + {rec.optimizer.value}, {rec.lr_mode.value} LR, "
                            f"alignment {rec.alignment.name}: width {rec.base_width} -> {rec.width} "
                            f"(source: {rec.source})")


def recommend_analytic(p, opt, base: BaseConfig, width: int, al: Alignment, mode: LrMode):
    return theory.recommend(p, opt, base, width, al, mode)


def _recommend_from_fit(path: Path, width, group, parameterization, optimizer, alignment, lr_mode, consts):
    from abcscale.fitting.predict import recommend_from_fit
    from abcscale.schemas.fit import FitResult

    try:
        fit = FitResult.model_validate(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        fail(f"--fit: no such file {path}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"--fit: {path} is not JSON ({exc})")
    except ValueError as exc:
        fail(f"--fit: {path} is not a FitResult: {exc}")
    selector = {}
    if group:
        for part in group.split(","):
            if "=" not in part:
                fail(f"--group: expected key=value pairs, got {part!r}")
            k, v = part.split("=", 1)
            selector[k.strip()] = v.strip()
    for k, v in (("parameterization", parameterization), ("optimizer", optimizer), ("lr_mode", lr_mode)):
        if v is not None and k not in selector and not (k == "lr_mode" and v == "per_layer"):
            selector[k] = v
    try:
        return recommend_from_fit(fit, width, selector=selector, constants=consts)
    except ValueError as exc:
        fail(str(exc))


__all__ = ["register", "recommend_analytic", "print_transfer", "Layer"]
