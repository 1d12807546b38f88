"""``abcscale sweep`` and ``abcscale coord-check``: small-width JAX training. JAX loads inside the commands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from abcscale.cli._common import console, emit_json, err_console, fail
from abcscale.runner.spec import SweepSpec

_FLAGS = {"parameterizations": "parameterization", "optimizers": "optimizer", "alignments": "alignment",
          "lr_modes": "lr-mode", "gammas": "gamma"}


def _flag_message(exc: ValidationError) -> str:
    """Name the flag (``--seq-len``) rather than the spec field (``seq_len``)."""
    parts = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x != "__root__"]
        msg = str(e.get("msg")).removeprefix("Value error, ")
        parts.append(f"--{_FLAGS.get(loc[0], loc[0].replace('_', '-'))}: {msg}" if loc else msg)
    return "; ".join(parts)


def _build_spec(spec_file: Path | None, overrides: dict[str, Any]) -> SweepSpec:
    try:
        base = SweepSpec.from_toml(spec_file) if spec_file else SweepSpec()
    except FileNotFoundError:
        fail(f"SPEC: no such file: {spec_file}")
    except ValidationError as exc:
        fail(f"{spec_file}: {_flag_message(exc).replace('--', '')}")
    except ValueError as exc:  # TOML syntax
        fail(f"{spec_file}: {exc}")
    try:
        return base.with_overrides(**overrides)
    except ValidationError as exc:
        fail(_flag_message(exc))


def _lr_exponents(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    try:
        e, h, r = (float(x) for x in value.split(","))
    except ValueError:
        fail(f"--lr-exponents: expected 3 comma-separated numbers 'e,h,r', got {value!r}")
    if not all(math.isfinite(x) for x in (e, h, r)):
        fail(f"--lr-exponents: numbers must be finite, got {value!r}")
    return e, h, r


def _summary(df) -> Table:
    """Best LR per (configuration, width) among runs that did not diverge."""
    t = Table(title="best learning rate per width (eval loss)")
    for col in ("parameterization", "optimizer", "lr_mode", "width", "best log2 beta", "eval loss", "diverged"):
        t.add_column(col)
    keys = ["parameterization", "optimizer_variant", "alignment", "lr_mode", "width"]
    for k, g in df.groupby(keys, sort=False):
        ok = g[~g["diverged"]]
        if len(ok):
            best = ok.groupby("log2_lr")["eval_loss"].mean()
            lr, loss = f"{best.idxmin():g}", f"{best.min():.4f}"
        else:
            lr, loss = "-", "-"
        t.add_row(k[0], k[1], k[3], str(k[4]), lr, loss, f"{int(g['diverged'].sum())}/{len(g)}")
    return t


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    del theory_app

    @app.command()
    def sweep(
        spec_file: Annotated[Path | None, typer.Argument(metavar="[SPEC.toml]", help="sweep spec file")] = None,
        out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("sweep-out"),
        model: Annotated[str | None, typer.Option(help="transformer | mlp")] = None,
        parameterization: Annotated[str | None, typer.Option("--parameterization", "-p",
                                                             help="comma list: standard,ntk,mup,mean_field")] = None,
        optimizer: Annotated[str | None, typer.Option(
            "--optimizer", "-o", help="comma list: sgd,adam,adam_atan2,adam_scaled,adafactor")] = None,
        alignment: Annotated[str | None, typer.Option(
            "--alignment", "-a", help="comma list of full,none; or A,O,U (';' between several)")] = None,
        lr_mode: Annotated[str | None, typer.Option("--lr-mode", help="comma list: global,per_layer")] = None,
        widths: Annotated[str | None, typer.Option(help="comma list, e.g. 32,64,128")] = None,
        base_width: Annotated[int | None, typer.Option("--base-width", help="default min(widths)")] = None,
        log2_lr: Annotated[str | None, typer.Option("--log2-lr", help="START:STOP:STEP, e.g. -12:-4:0.5")] = None,
        gamma: Annotated[str | None, typer.Option(help="per-layer LR constants 'e,h,r' (';' separates a grid)")] = None,
        seeds: Annotated[int | None, typer.Option(help="seeds per LR")] = None,
        steps: Annotated[int | None, typer.Option()] = None,
        batch: Annotated[int | None, typer.Option()] = None,
        seq_len: Annotated[int | None, typer.Option("--seq-len")] = None,
        depth: Annotated[int | None, typer.Option()] = None,
        head_dim: Annotated[int | None, typer.Option("--head-dim")] = None,
        attn_scale: Annotated[str | None, typer.Option("--attn-scale", help="sqrt | linear")] = None,
        init_scale: Annotated[str | None, typer.Option("--init-scale", help="init std constants 'e,h,r'")] = None,
        multiplier: Annotated[str | None, typer.Option(help="multiplier constants 'e,h,r'")] = None,
        epsilon: Annotated[float | None, typer.Option(help="Adam epsilon at the base width")] = None,
        epsilon_mode: Annotated[str | None, typer.Option("--epsilon-mode", help="per_layer | constant")] = None,
        momentum: Annotated[float | None, typer.Option(help="SGD momentum")] = None,
        schedule: Annotated[str | None, typer.Option(help="cosine | constant")] = None,
        warmup: Annotated[float | None, typer.Option(help="warmup fraction")] = None,
        weight_decay: Annotated[float | None, typer.Option("--weight-decay")] = None,
        data: Annotated[str | None, typer.Option(help="default | synthetic | PATH (text, dir, .npy)")] = None,
        max_bytes: Annotated[int | None, typer.Option("--max-bytes")] = None,
        eval_fraction: Annotated[float | None, typer.Option("--eval-fraction")] = None,
        eval_batches: Annotated[int | None, typer.Option("--eval-batches")] = None,
        final_window: Annotated[float | None, typer.Option("--final-window")] = None,
        divergence_factor: Annotated[float | None, typer.Option("--divergence-factor")] = None,
        batching: Annotated[str | None, typer.Option(help="auto | vmap | single")] = None,
        chunk: Annotated[int | None, typer.Option(help="most runs per vmapped program")] = None,
        coord_steps: Annotated[str | None, typer.Option("--coord-steps", help="comma list of steps")] = None,
        curves: Annotated[bool | None, typer.Option("--curves/--no-curves", help="write curves.parquet")] = None,
        executor: Annotated[str, typer.Option(help="local | ray")] = "local",
        address: Annotated[str | None, typer.Option(help="Ray cluster address (executor ray)")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or summary")] = False,
    ) -> None:
        """Train every configuration x width x learning rate x seed; write results.parquet (resumable)."""
        if executor not in ("local", "ray"):
            fail(f"--executor: must be 'local' or 'ray', got {executor!r}")
        overrides = {
            "model": model, "parameterizations": parameterization, "optimizers": optimizer,
            "alignments": alignment, "lr_modes": lr_mode, "widths": widths, "base_width": base_width,
            "log2_lr": log2_lr, "gammas": gamma, "seeds": seeds, "steps": steps, "batch": batch,
            "seq_len": seq_len, "depth": depth, "head_dim": head_dim, "attn_scale": attn_scale,
            "init_scale": init_scale, "multiplier": multiplier, "epsilon": epsilon, "epsilon_mode": epsilon_mode,
            "momentum": momentum, "schedule": schedule, "warmup": warmup, "weight_decay": weight_decay,
            "data": data, "max_bytes": max_bytes, "eval_fraction": eval_fraction, "eval_batches": eval_batches,
            "final_window": final_window, "divergence_factor": divergence_factor, "batching": batching,
            "chunk": chunk, "coord_steps": coord_steps.split(",") if coord_steps else None, "curves": curves,
        }
        spec = _build_spec(spec_file, overrides)
        from abcscale.runner.sweep import run_sweep

        df = run_sweep(spec, out, progress=not quiet, executor=executor, address=address)
        if not quiet:
            console.print(_summary(df))
            console.print(f"{len(df)} runs -> {out / 'results.parquet'}")

    @app.command("coord-check")
    def coord_check(
        parameterization: Annotated[str, typer.Option("--parameterization", "-p", help="standard|ntk|mup|mean_field")],
        optimizer: Annotated[str, typer.Option("--optimizer", "-o", help="sgd|adam|adam_atan2|adam_scaled|adafactor")],
        widths: Annotated[str, typer.Option(help="comma list, at least two")] = "32,64,128,256",
        steps: Annotated[int, typer.Option(help="updates to train")] = 5,
        log2_lr: Annotated[float, typer.Option("--log2-lr", help="log2 of the base LR beta")] = -6.0,
        alignment: Annotated[str, typer.Option("--alignment", "-a")] = "full",
        lr_mode: Annotated[str, typer.Option("--lr-mode", help="per_layer | global")] = "per_layer",
        lr_exponents: Annotated[str | None, typer.Option("--lr-exponents",
                                                         help="override c per layer 'e,h,r'")] = None,
        model: Annotated[str, typer.Option(help="mlp | transformer")] = "mlp",
        depth: Annotated[int, typer.Option()] = 2,
        batch: Annotated[int, typer.Option()] = 16,
        seq_len: Annotated[int, typer.Option("--seq-len")] = 32,
        head_dim: Annotated[int, typer.Option("--head-dim")] = 16,
        data: Annotated[str, typer.Option(help="default | synthetic | PATH")] = "default",
        tolerance: Annotated[float, typer.Option(help="largest allowed slope of log RMS vs log width")] = 0.25,
        plot: Annotated[Path | None, typer.Option(help="write a figure, e.g. coord.png")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Train a few steps per width; fail (exit 1) if a layer's activations grow with width."""
        if not (tolerance > 0 and math.isfinite(tolerance)):
            fail(f"--tolerance: must be a positive number, got {tolerance}")
        if steps <= 0:
            fail(f"--steps: must be a positive integer, got {steps}")
        if not math.isfinite(log2_lr):
            fail(f"--log2-lr: must be finite, got {log2_lr}")
        exps = _lr_exponents(lr_exponents)
        spec = _build_spec(None, {"model": model, "parameterizations": parameterization, "optimizers": optimizer,
                                  "alignments": alignment, "lr_modes": lr_mode, "widths": widths, "depth": depth,
                                  "batch": batch, "seq_len": seq_len, "head_dim": head_dim, "data": data})
        if len(spec.widths) < 2:
            fail(f"--widths: a coordinate check needs at least two widths, got {widths!r}")
        if len(spec.parameterizations) * len(spec.optimizers) * len(spec.alignments) * len(spec.lr_modes) != 1:
            fail("--parameterization/--optimizer/--alignment/--lr-mode: give one value each")
        from abcscale.runner.coord import coord_check as run_check
        from abcscale.runner.coord import plot as plot_check

        result = run_check(spec, log2_lr=log2_lr, steps=steps, tolerance=tolerance, lr_exponents=exps)
        if plot:
            plot_check(result, str(plot))
        if as_json:
            emit_json({"passed": result.passed, "tolerance": tolerance, "widths": spec.widths,
                       "layers": [{"layer": v.layer, "layer_type": v.layer_type, "slopes": list(v.slopes),
                                   "worst_step": v.worst_step, "worst_slope": v.worst_slope, "passed": v.passed}
                                  for v in result.layers]})
        else:
            t = Table(title=f"coordinate check: slope of log activation RMS vs log width (tolerance {tolerance:g})")
            for col in ("layer", "type", "slope per step", "worst", "verdict"):
                t.add_column(col)
            for v in result.layers:
                t.add_row(v.layer, v.layer_type, " ".join(f"{s:+.2f}" for s in v.slopes), f"{v.worst_slope:+.2f}",
                          "[green]pass[/]" if v.passed else "[red]FAIL[/]")
            console.print(t)
            err_console.print("PASS" if result.passed else "FAIL: activations grow with width")
        raise typer.Exit(0 if result.passed else 1)
