"""``abcscale check CONFIG``: exit 0 when a planned run follows the transfer rule, 1 when not, 2 on bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from abcscale.cli._common import (
    RETRYABLE,
    SERVICE_DOWN,
    TOO_DEEP,
    Table,
    _one_line,
    console,
    emit_json,
    err_console,
    fail,
    fail_gate,
    file_read,
    on_command_line,
    post_service,
    read_fit,
    redact,
    service_detail,
    service_token,
    service_url,
)
from abcscale.cli.options import Json

if TYPE_CHECKING:
    from abcscale.schemas.recommend import Recommendation
    from abcscale.usecases.check import CheckConfig, CheckReport

#: where --token is read from when not typed, in this order (the first one set)
TOKEN_VARIABLES = ("ABCSCALE_READ_TOKEN", "ABCSCALE_API_TOKEN")


def check(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="YAML, JSON or TOML file describing the planned run")],
    fit: Annotated[Path | None, typer.Option("--fit", help="compare with a fit.json from `abcscale fit`",
                                             show_default=False)] = None,
    service: Annotated[str | None, typer.Option("--service", help="ask a running service, e.g. "
                                                "http://127.0.0.1:8000", show_default=False)] = None,
    fit_id: Annotated[str | None, typer.Option("--fit-id", help="with --service: a stored fit's id",
                                               show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar=list(TOKEN_VARIABLES), help="with --service: a token the service "
        "takes for reads (its read token, or its write token)", show_default=False)] = None,
    constants_file: Annotated[Path | None, typer.Option(
        "--constants", help="a constants file from `abcscale tune`, a hand-written one (gamma, init_scale, ...; "
        "width and beta beside them) or `abcscale mup import --json`'s output: the reference transfers its "
        "constants (and its base width and beta where the config gives none); overrides the config's constants_file",
        dir_okay=False, show_default=False)] = None,
    tolerance: Annotated[float, typer.Option(help="LR ratio allowed either way (x); with a fit, an LR down to its "
                                             "safe-side LR passes too", min=1.0)] = 2.0,
    init_tolerance: Annotated[float, typer.Option("--init-tolerance", help="init std ratio (forward scale)",
                                                  min=1.0)] = 1.5,
    eps_tolerance: Annotated[float, typer.Option("--eps-tolerance", help="epsilon ratio allowed above",
                                                 min=1.0)] = 10.0,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", metavar="KEY=PATH,...", help="read a nested config: schema key = dotted path in it, e.g. "
        "width=model.d_model,lr.hidden=optim.param_groups.1.lr (repeatable)", show_default=False)] = None,
    map_file: Annotated[list[Path] | None, typer.Option(
        "--map-file", help="TOML/YAML/JSON file: a 'map' table (key = \"dotted.path\") and an optional "
        "'values' table (key = value); repeatable, merged in order; --map entries add to it",
        show_default=False)] = None,
    group: Annotated[str | None, typer.Option(
        "--group", metavar="KEY=VALUE,...", help="with --fit or --fit-id: pick the fit's group by other columns "
        "than the config names (depth=2, steps=1000), 'key=value,...' or a JSON object", show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="with --fit or --fit-id: exit 1 when the fit's prediction "
                                         "at the config's width is unreliable (what `fit --strict` refuses)")] = False,
    as_json: Json = False,
) -> None:
    """Gate a training config on the transfer rule (for CI): theory by default, or a fit, or a service."""
    from abcscale.usecases.check import compare, recommendation
    from abcscale.usecases.config_map import ConfigError

    for name, tol in (("--tolerance", tolerance), ("--init-tolerance", init_tolerance),
                      ("--eps-tolerance", eps_tolerance)):
        if not math.isfinite(tol):
            fail(f"{name}: must be a finite number >= 1, got {tol}")
    service = service_url(service)  # an empty one (an unset variable) passed against theory alone: exit 2 now
    if fit_id is not None and not fit_id.strip():
        fail("--fit-id: empty (an unset variable?); give the stored fit's id")
    if fit and service:
        fail("--fit and --service: give one of them")
    if fit_id and not service:
        fail("--fit-id needs --service URL")
    if token and not service and on_command_line(ctx, "token"):
        fail("--token needs --service URL (it is the service's read token)")
    if service is not None:  # a local check reads no token: the variable a whole CI job exports is left alone
        token = service_token(ctx, token, TOKEN_VARIABLES)
    if group is not None and not (fit or fit_id):
        fail("--group: picks a fit's group; give --fit fit.json or --service URL --fit-id ID")
    selector = None
    if group is not None:
        from abcscale.usecases.recommend import selector_from

        try:
            selector = selector_from(group)
        except ValueError as exc:
            fail(f"--group: {str(exc).removeprefix('group: ')}")
    if strict and not (fit or fit_id):  # theory's recommendation has no band: a gate that could never fail
        fail("--strict: refuses an unreliable fitted prediction, and theory's recommendation has none; give --fit "
             "fit.json or --service URL --fit-id ID")
    try:
        cfg = _load(config, map_ or [], map_file, constants_file, with_fit=bool(fit or fit_id))
    except ConfigError as exc:  # every problem at once, one line each
        for line in exc.lines[:-1]:
            _one_line(line)
        fail(exc.lines[-1])
    if service is not None:
        rec = _ask_service(service, cfg, fit_id, token, selector)
    elif fit:
        fitted = read_fit(fit)
        try:
            rec = recommendation(cfg, fitted, selector)
        except ValueError as exc:  # no group of the fit matches the config
            from abcscale.fitting.predict import NoLaw

            if isinstance(exc, NoLaw):  # the sweep's shortfall: a gate fails it as fit --strict does (exit 1)
                if strict:  # with --json, the report's keys: `failed` as an unreliable prediction's, no checks made
                    fail_gate(f"--strict: unreliable: no prediction: {exc}",
                              [f"unreliable prediction: no prediction: {exc}"], checks=[], warnings=[])
                fail(f"--fit: {exc}")
            field, _, why = str(exc).partition(": ")
            if field in ("alignment", "lr_mode"):  # the config's or --group's, against the sweep's exponents
                in_config = "alignment" in cfg.model_fields_set if field == "alignment" else cfg.lr_mode is not None
                if not in_config and field in (selector or {}):
                    fail(f"--group {field}: {why}")
                fail(f"{config}: {exc}" + ("" if in_config else f" (the config's {field} is its default: give "
                                           f"{field} in it)"))
            fail(f"--fit: {_in_config_words(str(exc))}")
    else:
        try:
            rec = recommendation(cfg)
        except ValueError as exc:  # the base decay is the config's constants.weight_decay (weight_decay: the run's)
            if not str(exc).startswith("weight_decay:"):
                raise
            fail("constants." + str(exc))
    report = compare(cfg, rec, config_name=str(config), lr_tolerance=tolerance, init_tolerance=init_tolerance,
                     eps_tolerance=eps_tolerance)
    if rec.source == "theory":  # a width past the base width's reach, said as recommend says it (a fit says its own)
        from abcscale.usecases.recommend import far_width_note

        if (far := far_width_note(rec.width, rec.base_width)) is not None and far not in report.warnings:
            report = report.model_copy(update={"warnings": [*report.warnings, far]})
    if strict and rec.band is not None and rec.band.unreliable:  # its warnings say them; --strict fails on them
        # said once, as a failure: the same reason also among the warnings read as two problems
        said = {f"unreliable: {why}" for why in rec.band.unreliable}
        report = report.model_copy(update={"ok": False, "exit_code": 1, "failed": [
            *report.failed, *(f"unreliable prediction: {why}" for why in rec.band.unreliable)],
            "warnings": [w for w in report.warnings if w not in said]})
    if as_json:
        emit_json(report)
    else:
        print_report(cfg, report)
    if strict and rec.band is not None:  # on stderr too, led by the flag, as fit, predict and recommend say it
        for why in rec.band.unreliable:  # (a CI log grepped for `--strict: unreliable` missed check's, a review)
            err_console.print(f"[red]--strict: unreliable:[/] {escape(why)}", highlight=False, soft_wrap=True)
    raise typer.Exit(report.exit_code)


def _load(config: Path, maps: list[str], map_files: list[Path] | None, constants_file: Path | None, *,
          with_fit: bool) -> CheckConfig:
    from abcscale.usecases.check import load_config
    from abcscale.usecases.config_map import ConfigError, ConfigMap, load_map, parse_map

    cmap = None
    for map_file in map_files or []:  # each merged in: a second one replaced the first, silently
        try:
            cmap = (cmap or ConfigMap()).merged(load_map(map_file))
        except ConfigError as exc:  # the map file's own problems: said as the flag that named it
            raise ConfigError(f"--map-file: {exc.problems[0][0]}", exc.problems[0][1], exc.problems[1:]) from None
        except RecursionError:  # its parser's, on lists nested thousands deep: a traceback, exit 1 (a review)
            fail(f"--map-file: {map_file}: {TOO_DEEP}")
    flagged: dict[str, str] = {}  # each key's path as an earlier --map gave it
    for text in maps:
        parsed = parse_map(text)
        for key, path in parsed.paths.items():
            # two --map flags for one key kept the later in silence, as one flag's two entries did (a code review);
            # --map over --map-file stays the documented override
            if key in flagged:
                raise ConfigError("--map", f"{key}: given twice (mapped to '{flagged[key]}' and to '{path}'); map "
                                           "each key once")
            flagged[key] = path
        cmap = (cmap or ConfigMap()).merged(parsed)
    try:
        return load_config(config, cmap, constants_file, with_fit=with_fit)
    except RecursionError as exc:  # the config's parser's or its constants file's, on lists nested thousands deep
        where = file_read(exc) or str(config)
        named = constants_file is not None and where == str(constants_file)
        fail(f"{'--constants: ' if named else ''}{where}: {TOO_DEEP}")


def print_report(cfg: CheckConfig, report: CheckReport) -> None:
    t = Table(title=f"{report.config}: {cfg.parameterization.value} + {cfg.optimizer.value}, width {cfg.width}, "
                    f"{report.lr_mode.value} LR (recommendation from {report.source})")
    for col in ("setting", "multiplier", "yours", "recommended", "ratio", "verdict"):
        t.add_column(col, justify="left" if col in ("setting", "verdict") else "right")
    for c in report.checks:
        color = "green" if c.ok else "red"
        label = f"{c.setting} ({c.layer.value})" if c.layer else c.setting
        t.add_row(label, "-" if c.multiplier is None else f"{c.multiplier:.4g}", f"{c.yours:.4g}",
                  f"{c.recommended:.4g}", "-" if c.recommended == 0 and c.yours > 0 else f"{c.ratio:.3g}x",
                  f"[{color}]{c.verdict}[/]")
    console.print(t)
    # the recommendation is written with the run's multipliers: compared on the invariants, any form passes
    console.print(f"form: {report.form_detail or report.form.value}; recommended = the rule's value written with "
                  "your multiplier", highlight=False)
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print("[green]PASS[/]" if report.ok else f"[red]FAIL[/]: {', '.join(_with_ratios(report))}")


def _with_ratios(report: CheckReport) -> list[str]:
    """The failures, each with its ratio to the rule as the global LR's says it (``lr (global, 3 layers) too high
    (4x)``), so that a CI log's one line says by how much: ``lr (hidden) too high`` said it only in the table (a
    review). The JSON's ``failed`` stays as it was."""
    ratios = {f"{c.setting} ({c.layer.value}) {c.verdict}": c.ratio for c in report.checks
              if c.layer is not None and not c.ok and c.recommended > 0 and math.isfinite(c.ratio)}
    return [f"{f} ({ratios[f]:.3g}x)" if f in ratios else f for f in report.failed]


def _in_config_words(message: str) -> str:
    """A fit's group-selection message, said for a check: its config picks the group (by parameterization,
    optimizer, lr_mode, alignment), and ``--group`` by the fit's other columns (depth, steps, ...); the REST
    field names (``body.lr_mode``) are the check's flags and keys."""
    import re

    said = ("name it in the config (parameterization, optimizer, lr_mode, alignment), or pick it with --group "
            "key=value,... (depth=2)")
    message = message.replace("select one with group key=value,...", said)
    # a service's words for the same: its request fields (`group`, body.lr_mode) are the config's keys here
    message = message.replace("select one with `group` (an object, column: value) or the parameterization, "
                              "optimizer, lr_mode and alignment fields", said)
    message = re.sub(r"\bbody\.group: (?=(alignment|lr_mode): )", "--group ", message)  # what --group gave
    return re.sub(r"\bbody\.(lr_mode|optimizer|parameterization|alignment|group|fit_id): ", "", message)


#: the whole exchange with ``--service`` at most this long (``ABCSCALE_SERVICE_DEADLINE`` overrides): a check
#: asks one recommendation (30 s a read)
CHECK_DEADLINE_S = 60


def _ask_service(url: str, cfg: CheckConfig, fit_id: str | None, token: str | None = None,
                 group: dict[str, Any] | None = None) -> Recommendation:
    """POST the check's recommend request to a running service (the same request a local check answers)."""
    import httpx

    from abcscale.schemas.recommend import Recommendation
    from abcscale.usecases.check import check_request

    # unset fields left out: the service applies the same defaults, and a constant the config never gave (its
    # weight_decay 0) must not read as given there (a fit's trained decay is carried only where none was)
    body = check_request(cfg, fit_id, group).model_dump(mode="json", exclude_none=True, exclude_unset=True)
    try:
        resp = post_service(url, "/v1/recommend", CHECK_DEADLINE_S, json=body, timeout=30,
                            headers={"Authorization": f"Bearer {token}"} if token else None)
    except httpx.HTTPError as exc:  # never the token, whatever the client's message quotes (a review)
        fail(f"--service: cannot reach {url} ({exc.__class__.__name__}: {redact(str(exc), token)})", SERVICE_DOWN)
    if resp.status_code >= 500 or resp.status_code in RETRYABLE:  # the service's own failure (or a proxy's, a rate
        # limit): nothing was judged, a retry may pass
        fail(f"--service: {url} answered {resp.status_code}: {service_detail(resp)}", SERVICE_DOWN)
    if resp.status_code == 404 and fit_id is not None and service_detail(resp).startswith("Fit not found"):
        # the service has no such fit (not a wrong URL, also a 404): the flag that named it
        fail(f"--fit-id: {url} has no stored fit with the id {fit_id!r} (its fits: GET {url.rstrip('/')}/v1/fits)")
    if resp.status_code >= 400:
        detail = service_detail(resp)
        if resp.status_code in (401, 403) and "--token" not in detail:  # an older service says no more than this
            detail += " (give a token the service reads with: --token, ABCSCALE_READ_TOKEN or ABCSCALE_API_TOKEN)"
        fail(f"--service: {url} answered {resp.status_code}: {_in_config_words(detail)}")
    try:
        return Recommendation.model_validate(resp.json())
    except ValueError:  # JSON that is not a recommendation, or no JSON: another program answers at that URL
        fail(f"--service: {url} answered {resp.status_code} without a recommendation (is it an abcscale service? "
             f"its answer began {resp.text[:80]!r})")
