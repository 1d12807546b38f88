"""``abcscale check CONFIG``: exit 0 when a planned run follows the transfer rule, 1 when not, 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abcscale.cli._common import console, emit_json, fail


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    @app.command("check")
    def check(
        config: Annotated[Path, typer.Argument(help="YAML, JSON or TOML file describing the planned run")],
        fit: Annotated[Path | None, typer.Option("--fit", help="fit.json from `abcscale fit`")] = None,
        service: Annotated[str | None, typer.Option("--service", help="ask a running service, e.g. "
                                                    "http://127.0.0.1:8000")] = None,
        fit_id: Annotated[str | None, typer.Option("--fit-id", help="with --service: a stored fit's id")] = None,
        tolerance: Annotated[float, typer.Option(help="LR ratio allowed either way (x)")] = 2.0,
        init_tolerance: Annotated[float, typer.Option("--init-tolerance", help="init std / multiplier ratio")] = 1.5,
        eps_tolerance: Annotated[float, typer.Option("--eps-tolerance", help="epsilon ratio allowed above")] = 10.0,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Gate a training config on the transfer rule (for CI)."""
        from abcscale.check import ConfigError, compare, load_config

        for name, tol in (("--tolerance", tolerance), ("--init-tolerance", init_tolerance),
                          ("--eps-tolerance", eps_tolerance)):
            if not tol >= 1 or tol == float("inf"):
                fail(f"{name}: must be a finite number >= 1, got {tol}")
        if fit and service:
            fail("--fit and --service: give one of them")
        if fit_id and not service:
            fail("--fit-id needs --service URL")
        try:
            cfg = load_config(config)
            if service:
                rec = _ask_service(service, cfg, fit_id)
            elif fit:
                rec = _from_fit(fit, cfg)
            else:
                rec = _analytic(cfg)
        except ConfigError as exc:
            fail(str(exc))
        report = compare(cfg, rec, config_name=str(config), lr_tolerance=tolerance,
                         init_tolerance=init_tolerance, eps_tolerance=eps_tolerance)
        if as_json:
            emit_json(report)
        else:
            t = Table(title=f"{config}: {cfg.parameterization.value} + {cfg.optimizer.value}, width {cfg.width}, "
                            f"{report.lr_mode.value} LR (recommendation from {report.source})")
            for col in ("setting", "yours", "recommended", "ratio", "verdict"):
                t.add_column(col, justify="left" if col in ("setting", "verdict") else "right")
            for c in report.checks:
                color = "green" if c.ok else "red"
                label = f"{c.setting} ({c.layer.value})" if c.layer else c.setting
                t.add_row(label, f"{c.yours:.4g}", f"{c.recommended:.4g}", f"{c.ratio:.3g}x",
                          f"[{color}]{c.verdict}[/]")
            console.print(t)
            for w in report.warnings:
                console.print(f"[yellow]warning:[/] {w}")
            console.print("[green]PASS[/]" if report.ok else f"[red]FAIL[/]: {', '.join(report.failed)}")
        raise typer.Exit(report.exit_code)


def _analytic(cfg):
    from abcscale import theory

    return theory.recommend(cfg.parameterization, cfg.optimizer, cfg.base_config(), cfg.width, cfg.alignment,
                            cfg.mode)


def _from_fit(path: Path, cfg):
    from abcscale.fitting.predict import recommend_from_fit
    from abcscale.schemas.fit import FitResult

    try:
        fit = FitResult.model_validate(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        fail(f"--fit: no such file {path}")
    except ValueError as exc:
        fail(f"--fit: {path} is not a FitResult ({str(exc).splitlines()[0]})")
    selector = {"parameterization": cfg.parameterization.value, "optimizer": cfg.optimizer.value,
                "lr_mode": cfg.mode.value}
    try:
        return recommend_from_fit(fit, cfg.width, selector=selector, constants=cfg.constants())
    except ValueError as exc:
        fail(f"--fit: {exc}")


def _ask_service(url: str, cfg, fit_id: str | None):
    import httpx

    from abcscale.check import request_body
    from abcscale.schemas.recommend import Recommendation

    try:
        resp = httpx.post(url.rstrip("/") + "/v1/recommend", json=request_body(cfg, fit_id), timeout=30)
    except httpx.HTTPError as exc:
        fail(f"--service: cannot reach {url} ({exc.__class__.__name__}: {exc})")
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("detail")
        except ValueError:
            detail = resp.text[:300]
        detail = detail if isinstance(detail, str) else json.dumps(detail)
        fail(f"--service: {url} answered {resp.status_code}: {detail}")
    return Recommendation.model_validate(resp.json())
