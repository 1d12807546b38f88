"""``abcscale fit TABLE``: optimal LRs per width, the exponent across widths, and the theory verdict."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from abcscale.cli._common import (
    RETRYABLE,
    SERVICE_DOWN,
    Table,
    build,
    console,
    emit_json,
    err_console,
    fail,
    on_command_line,
    parse_flag,
    post_service,
    redact,
    service_detail,
    service_token,
    service_url,
    status,
    to_jsonable,
    verdict,
)
from abcscale.cli.fit_joint import print_joint, summary_json
from abcscale.cli.options import Json, Plots, Quiet
from abcscale.cli.recommend import band_line
from abcscale.schemas.api import FitOptions
from abcscale.schemas.enums import LrMode
from abcscale.schemas.fit import FitResult, GroupFit, Prediction, value_text
from abcscale.schemas.theory import Alignment, Interval
from abcscale.usecases.fits import group_warnings, unreliable

if TYPE_CHECKING:
    import pandas as pd

#: how this command names each FitOptions field in messages (the use case says options in the caller's words).
FLAGS = {"size_col": "--size-col", "lr_col": "--lr-col", "loss_col": "--loss-col", "seed_col": "--seed-col",
         "diverged_col": "--diverged-col",
         "group_cols": "--group-cols", "target_width": "--target-width", "base_width": "--base-width",
         "alignment": "--alignment", "n_boot": "--n-boot", "seed": "--seed", "confidence_level": "--confidence-level",
         "size_kind": "--size-kind", "covariates": "--covariates", "derive": "--derive", "at": "--at",
         "blowup": "--blowup", "strict": "--strict", "parameterization": "--parameterization",
         "optimizer": "--optimizer", "lr_mode": "--lr-mode", "drop_cut_short": "--drop-cut-short"}

# One parameter per flag, so the signature is long by design; the body builds FitOptions and calls the use case.
def fit(
    ctx: typer.Context,
    table: Annotated[Path, typer.Argument(help="a sweep's folder, its results.parquet, or any CSV/parquet; - reads "
                                          "standard input")],
    out: Annotated[Path | None, typer.Option("--out", help="write fit.json into this folder", file_okay=False,
                                             show_default=False)] = None,
    plots: Plots = None,
    target_width: Annotated[int | None, typer.Option("--target-width", "--target-size", help="predict LR* at this "
                                                     "size (width, or parameters with --size-kind params)",
                                                     show_default=False)] = None,
    size_col: Annotated[str | None, typer.Option("--size-col", help="size column (width or parameters)",
                                                 show_default="width")] = None,
    size_kind: Annotated[str | None, typer.Option("--size-kind", help="width | params: what the size column "
                                                  "counts", show_default="width")] = None,
    covariates: Annotated[str | None, typer.Option(
        "--covariates", help="numeric columns 'D,batch_size' fitted in one joint law with the size (each curve: "
        "size x covariate values); the first is the data axis D of the joint loss law", show_default=False)] = None,
    at: Annotated[list[str] | None, typer.Option("--at", help="covariate values to predict at with --target-size, "
                                                 "'D=1e10,batch_size=64' (others: their bases); repeatable",
                                                 show_default=False)] = None,
    derive: Annotated[list[str] | None, typer.Option(
        "--derive", help="derived column NAME=A/B or NAME=A*B (B a column or a positive number), optionally "
        ":round or :log2round (e.g. tpp=D/N:round, width=width_mult*256), or NAME=A, a copy "
        "(parameterization=config.param); repeatable", show_default=False)] = None,
    lr_col: Annotated[str | None, typer.Option("--lr-col", help="learning-rate column", show_default="beta")] = None,
    loss_col: Annotated[str | None, typer.Option("--loss-col", help="loss column",
                                                 show_default="eval_loss where the table has it, else "
                                                 "final_loss")] = None,
    seed_col: Annotated[str | None, typer.Option("--seed-col", help="seed column", show_default="seed")] = None,
    diverged_col: Annotated[str | None, typer.Option("--diverged-col", help="divergence flag column (true/false)",
                                                     show_default="diverged")] = None,
    group_cols: Annotated[str | None, typer.Option("--group-cols", help="grouping columns 'a,b'",
                                                   show_default="the contract's that are present")] = None,
    base_width: Annotated[int | None, typer.Option("--base-width", help="width the constant C refers to",
                                                   show_default="smallest width")] = None,
    alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U for the "
                                                  "theory exponent: the hypothesis --expect-theory tests",
                                                  show_default="the table's alignment column, else full; a global "
                                                  "LR's theory spans full to none")] = None,
    parameterization: Annotated[str | None, typer.Option(
        "--parameterization", "-p", help="a table without a parameterization column: every run's (for theory's "
        "exponent)", show_default=False)] = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", "-o", help="a table without an optimizer column: every run's", show_default=False)] = None,
    lr_mode: Annotated[str | None, typer.Option(
        "--lr-mode", help="a table without an lr_mode column: how every run's LR was set (global | per_layer)",
        show_default=False)] = None,
    confidence_level: Annotated[float, typer.Option("--confidence-level", help="level of every interval")] = 0.95,
    n_boot: Annotated[int, typer.Option("--n-boot", help="bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
    expect_theory: Annotated[bool, typer.Option("--expect-theory",
                                                help="exit 1 unless every group agrees with theory")] = False,
    blowup: Annotated[float, typer.Option("--blowup", help="a finite loss above this multiple of its curve's "
                                          "best, at a larger LR, is a divergence (0: off)")] = 1.5,
    drop_cut_short: Annotated[bool, typer.Option(
        "--drop-cut-short", help="leave out runs that stopped at a lower step count than the rest of their curve "
        "(otherwise named in a warning)")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when a prediction is unreliable (a huge "
                                         "expected loss penalty, or extrapolation from 2 widths)")] = False,
    expect_exponent: Annotated[list[str] | None, typer.Option(
        "--expect-exponent", help="NAME=VALUE: exit 1 unless every group's fitted exponent interval contains "
        "VALUE (a published law); NAME is 'size' or the size column, or with --covariates a covariate (the joint "
        "law's exponents); repeatable", show_default=False)] = None,
    service: Annotated[str | None, typer.Option(
        "--service", help="fit on a running service (POST /v1/fits) and store it there, e.g. http://127.0.0.1:8000",
        show_default=False)] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="ABCSCALE_API_TOKEN", help="with --service: the "
                                              "service's write token", show_default=False)] = None,
    summary: Annotated[bool, typer.Option("--summary", help="one line per group (exponent, theory, verdict, "
                                          "warnings count) instead of each group's per-width table")] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Fit optimal LRs per width, their exponent across widths, and compare with theory.

    --out DIR writes DIR/fit.json (the FitResult, as --json prints it) for `abcscale recommend --fit`.
    With --covariates, one joint law per group across every (size, covariate values) curve comes first.
    """
    from abcscale.fitting import TableError, read_table
    from abcscale.fitting.reading import STDIN
    from abcscale.usecases import fit_sweep, plot_fit
    from abcscale.usecases.fits import respoken, speak, with_setup

    if blowup != 0 and not blowup > 1:
        fail(f"--blowup: must be above 1 (or 0 for off), got {blowup:g}")
    # a parameter-count table's target is a size (the flag's other name, as the README writes it there)
    names = FLAGS | {"target_width": "--target-size"} if size_kind == "params" else FLAGS
    if size_kind is not None and size_kind not in ("width", "params"):
        fail(f"--size-kind: expected width or params, got {size_kind!r}")
    # repeatable (`--at D=1e10 --at batch_size=64`, one pair each): the last one alone was kept (a code review)
    at_values = parse_flag(_pairs, ",".join(at) if at else None, "--at")
    covs = [c.strip() for c in (covariates or "").split(",") if c.strip()]
    if at_values and (bad := [k for k in at_values if k not in covs]):
        fail(f"--at: {', '.join(bad)} is not a covariate (--covariates: {', '.join(covs) or 'none given'})")
    if at_values and target_width is None:
        fail("--at: needs --target-size (the size to predict at)")
    service = service_url(service)  # empty or no http(s) URL: bad input (exit 2), not "unreachable" (exit 3)
    if out is not None:
        _check_out(out)
    if token and service is None and on_command_line(ctx, "token"):
        fail("--token needs --service URL (it is the service's write token)")
    if service is not None:  # stripped; one no header can carry is bad input, never echoed (a review)
        token = service_token(ctx, token, ("ABCSCALE_API_TOKEN",))
    if strict and target_width is None:  # a CI gate that could never fail is a mistake, not a pass
        fail(f"--strict: refuses an unreliable prediction, and without {names['target_width']} there is none to "
             "check; give the size you will train at")
    if group_cols is not None:  # the setup flags add columns: they group as the contract's would
        group_cols = ",".join([group_cols, *(k for k, v in (("parameterization", parameterization),
                                                             ("optimizer", optimizer), ("lr_mode", lr_mode)) if v)])
    options = build(FitOptions, names, size_col=size_col, lr_col=lr_col, loss_col=loss_col, seed_col=seed_col,
                    diverged_col=diverged_col, group_cols=group_cols, target_width=target_width, base_width=base_width,
                    alignment=parse_flag(Alignment.parse, alignment, "--alignment"), n_boot=n_boot, seed=seed,
                    confidence_level=confidence_level, size_kind=size_kind, covariates=covariates, at=at_values,
                    derive=derive or None, blowup=blowup if blowup != 1.5 else None,
                    drop_cut_short=drop_cut_short or None)
    # --strict is checked here on the fit (exit 1), also on one made by --service: REST's `strict` would refuse
    # to store it (a 422, exit 2)
    expected = [parse_flag(lambda e: _expectation(e, options.mapping().size_col, options.covariates), e,
                           "--expect-exponent") for e in expect_exponent or []]
    stored: dict[str, Any] | None = None
    try:
        with status(f"fitting {table}" + (f" on {service}" if service else ""), quiet=quiet):
            # `-` is standard input (a CSV or parquet piped in), as most tools read it; a terminal is no table (it
            # waited, silent, for a Ctrl-D)
            source = _stdin_table() if str(table) == "-" else table
            df = with_setup(read_table(source, name=STDIN if str(table) == "-" else None),
                            parameterization=parameterization, optimizer=optimizer, lr_mode=lr_mode)
            if service is None:
                result = fit_sweep(df, options, names=names)
            else:
                # refused before the service stores a fit the gate cannot judge (as run here, nothing is written)
                cols = options.mapping().group_cols
                if expect_theory and (absent := [c for c in THEORY_SETUP if c not in df.columns
                                                 or (cols is not None and c not in cols)]):
                    fail(_NO_THEORY_GROUP.format(", ".join(absent)))
                stored = _post_fit(service, token, df, options)
                result = respoken(FitResult.model_validate(stored["result"]), names)
    except TableError as exc:
        fail("; ".join(exc.problems))
    except ValueError as exc:  # a setting the table contradicts (e.g. --at on a law without that covariate)
        fail(speak(str(exc), names).replace("at: ", "--at: ", 1) if str(exc).startswith("at: ") else
             speak(str(exc), names))
    if expect_theory:
        absent = [c for c in THEORY_SETUP if not any(c in g.group for g in result.groups)]
        if absent:
            fail(_NO_THEORY_GROUP.format(", ".join(absent)))
    written: dict[str, Path] = {}
    if out is not None:
        written["fit"] = _write_json(result, out)
    if plots is not None:
        try:
            with status("drawing plots", quiet=quiet):
                written |= plot_fit(result, df, plots)
        except OSError as exc:
            fail(f"--plots: cannot write into {plots} ({exc.strerror or exc})")
    gates = _gates(result, expect_theory=expect_theory, expected=expected, strict=strict)
    # every failure of every gate, one line each as stderr says it (`--strict: unreliable: ...`)
    failed = [f"{flag}: {kind}: {text}" for flag, failures in gates.items() for kind, text in failures]
    if as_json:
        verdicts = {k: {"passed": not v, "failures": [f"{kind}: {text}" for kind, text in v]} for k, v in gates.items()}
        # --summary --json is the CI gate's format: with --service it names the stored fit too, for a later
        # `check --service URL --fit-id ID` (a review: one call could not give both)
        where = {} if stored is None else {"id": stored["id"], "replayed": stored.get("replayed", False)}
        # the verdict as `check --json` gives it (ok, exit_code, failed): always in the gate's format, and in the
        # whole fit's JSON where a gate was asked (without one that JSON stays the FitResult, as --out writes it)
        # (after the fit's own keys: a reader of the summary takes its first keys as they were)
        if summary:
            emit_json({**summary_json(result), **where, "gates": verdicts, **verdict(failed)})
        else:
            doc = to_jsonable(result if stored is None else stored)
            emit_json({**doc, **verdict(failed)} if gates else doc)
    else:
        if stored is not None:
            again = " (a retry: the service already had it)" if stored.get("replayed") else ""
            console.print(f"fit stored on {service} with id [bold]{stored['id']}[/]{again}", highlight=False)
        (print_compact if summary else print_summary)(result)
        for name, path in written.items():
            console.print(f"{name}: {path}", highlight=False)
    # every gate asked is judged and every failure said (a CI log that names one failure per push is a slow fix)
    # one line each whatever the terminal's width (a CI log is grepped), led by the gate's flag
    for flag, failures in gates.items():
        for kind, text in failures:
            err_console.print(f"[red]{flag}: {escape(kind)}:[/] {escape(text)}", highlight=False, soft_wrap=True)
    if any(gates.values()):
        raise typer.Exit(1)


def _regular_file(stream: Any) -> bool:
    """Whether a stream is a regular file (``< runs.csv``), not a pipe, a terminal or a device."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):  # no file descriptor (a test's stream), or a closed one
        return False


def _stdin_table() -> bytes:
    """Standard input's bytes, for TABLE ``-``. A terminal is no table (it waited, silent, for a Ctrl-D); a closed
    one (``<&-``: Python's ``sys.stdin`` is None, which was an AttributeError traceback) is said so, as ``check -``
    says it; one opened for writing only (``0>file``) is named too."""
    from abcscale.fitting.reading import STDIN, read_stream
    from abcscale.fitting.table import TableError

    stream = sys.stdin
    if stream is None:
        fail(f"table: {STDIN} is closed: pipe a CSV or parquet into it (abcscale fit - < runs.csv), or give the "
             "file's path")
    try:
        if stream.isatty():
            fail("TABLE: - reads standard input, which is a terminal here: pipe a CSV or parquet into it "
                 "(abcscale fit - < runs.csv), or give the file's path")
        if _regular_file(stream):  # a file redirected in (< big.csv): read whole, as its path would be
            return stream.buffer.read()
        return read_stream(stream.buffer, STDIN)
    except TableError as exc:
        fail(str(exc))
    except (OSError, ValueError) as exc:  # io.UnsupportedOperation (write-only) is both; a closed file a ValueError
        fail(f"table: cannot read {STDIN} ({exc}): pipe a CSV or parquet into it (abcscale fit - < runs.csv), or "
             "give the file's path")


def _gates(result: FitResult, *, expect_theory: bool, expected: list[tuple[str, float]], strict: bool
           ) -> dict[str, list[tuple[str, str]]]:
    """The failures of each gate asked (by its option's name), as (kind, message): none is a pass."""
    out: dict[str, list[tuple[str, str]]] = {}
    if expect_theory:
        out["--expect-theory"] = _check_theory(result)
    if expected:
        out["--expect-exponent"] = _check_exponents(result, expected)
    if strict:
        out["--strict"] = [("unreliable", f"{label}: {w.removeprefix('unreliable: ')}")
                           for label, w in unreliable(result)]
    return out


def _expectation(text: str, size_col: str, covariates: list[str] | None = None) -> tuple[str, float]:
    """``NAME=VALUE`` of --expect-exponent; NAME is the size exponent's ('size' or the size column) or, with
    --covariates, a covariate's (the joint law's exponents)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, e.g. size=-0.5, got {text!r}")
    if name not in ("size", size_col, *(covariates or [])):
        has = ("one: 'size' (or " + repr(size_col) + ")" if not covariates else
               "'size' (or " + repr(size_col) + ") and the covariates' " + ", ".join(map(repr, covariates)))
        raise ValueError(f"{name!r} is no fitted exponent; this fit has {has}")
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"{name}: VALUE must be a number, got {value.strip()!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: VALUE must be finite, got {value.strip()!r}")
    return name, v


def _check_exponents(result: FitResult, expected: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """The --expect-exponent gate's failures: a group's exponent interval misses a published value, or no exponent
    was fitted for it. With covariates the exponents are the joint laws' (a curve per size and covariate value has
    none of its own: every one of them failed the gate as "not checked", a review)."""
    if result.mapping.covariates:
        return _check_joint_exponents(result, expected)
    out = []
    for name, value in expected:
        for g in result.groups:
            label, e = _group_label(g.group), g.exponent
            if e is None:
                out.append(("not checked", f"{label}: no exponent was fitted for {name}={value:g} "
                                           f"({'; '.join(g.warnings) or 'see summary'})"))
            elif not e.ci.contains(value):
                out.append((f"inconsistent with {name}={value:g}", f"{label}: exponent {e.estimate:.3f}, "
                            f"{100 * e.ci.confidence_level:g}% interval {_ci(e.ci)}"))
    return out


def _check_joint_exponents(result: FitResult, expected: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """:func:`_check_exponents` over the joint laws: each law's exponent of the size ('size' or its column) or of a
    covariate; a group key without a law, or a law without that axis, is not checked (a failure, as a gate with
    nothing to check must be)."""
    out: list[tuple[str, str]] = []
    from abcscale.fitting.pipeline import NO_JOINT_LAW

    for name, value in expected:
        for law in result.joint:
            label = _group_label(law.group)
            axis = law.size_col if name == "size" else name
            e = law.exponents.get(axis)
            if e is None:
                why = "; ".join(law.notes) or "no notes"
                out.append(("not checked", f"{label}: the joint law has no exponent for {name}={value:g} (it was "
                                           f"fitted across {', '.join(law.names)}; {why})"))
            elif not e.ci.contains(value):
                out.append((f"inconsistent with {name}={value:g}", f"{label}: joint law's exponent of {axis} "
                            f"{e.estimate:.3f}, {100 * e.ci.confidence_level:g}% interval {_ci(e.ci)}"))
        out += [("not checked", f"{name}={value:g}: {w}") for w in result.warnings if w.startswith(NO_JOINT_LAW)]
        if not result.joint and not any(w.startswith(NO_JOINT_LAW) for w in result.warnings):
            out.append(("not checked", f"no joint law was fitted for {name}={value:g}"))
    return out


#: what theory's exponent needs among a fit's group columns
THEORY_SETUP = ("parameterization", "optimizer", "lr_mode")
_NO_THEORY_GROUP = ("--expect-theory: no group holds {} (needed for theory: the table has no such column, or "
                    "--group-cols leaves it out; -p, -o, --lr-mode give a table's missing ones)")


def _in_table_words(detail: str) -> str:
    """A service's 422 as the CLI says it: the table's rows are the TABLE (``body.rows: `` dropped, a row's index
    kept: ``body.rows.0: ...``), a mapping field's problem (``body.lr_col``) its field's, which ``respeak`` then
    says as its flag (``--lr-col``)."""
    detail = re.sub(r"(^|; )body(\.rows)?: ", r"\1", detail)
    return re.sub(r"(^|; )body\.(?!rows\b)([A-Za-z_]\w*): ", r"\1\2: ", detail)


#: the whole exchange with ``--service`` at most this long (``ABCSCALE_SERVICE_DEADLINE`` overrides): a fit
#: of a big table may take minutes at the service (600 s a read)
FIT_DEADLINE_S = 900


def _post_fit(url: str, token: str | None, df: pd.DataFrame, options: FitOptions) -> dict[str, Any]:
    """POST the table's rows and options to ``url``/v1/fits (the options as given: the service fills in the
    same defaults). The Idempotency-Key is a hash of the body, so a rerun of the same fit stores nothing twice.
    Returns the stored fit (FitPublic's JSON) with ``replayed``; a service's refusal exits 2, no answer
    (unreachable, a 5xx) exits 3."""
    import httpx

    from abcscale.fitting.table import json_rows
    from abcscale.usecases.fits import respeak

    body = {**options.model_dump(mode="json", exclude_unset=True), "rows": json_rows(df)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    headers = {"Content-Type": "application/json",
               "Idempotency-Key": "abcscale-fit-" + hashlib.sha256(text.encode()).hexdigest()[:48]}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        resp = post_service(url, "/v1/fits", FIT_DEADLINE_S, content=text, headers=headers,
                            timeout=httpx.Timeout(600, connect=10))
    except httpx.HTTPError as exc:  # never the token, whatever the client's message quotes
        fail(f"--service: cannot reach {url} ({exc.__class__.__name__}: {redact(str(exc), token)})", SERVICE_DOWN)
    if resp.status_code >= 500 or resp.status_code in RETRYABLE:  # the service's own failure (or a proxy's, a rate
        # limit): nothing was stored, a retry may pass
        fail(f"--service: {url} answered {resp.status_code}: {service_detail(resp)}", SERVICE_DOWN)
    if resp.status_code >= 400:
        detail = _in_table_words(service_detail(resp))
        if resp.status_code in (401, 403) and "--token" not in detail:  # an older service says no more than this
            detail += " (give the service's write token with --token or ABCSCALE_API_TOKEN)"
        fail(f"--service: {url} answered {resp.status_code}: {respeak(detail, FLAGS)}")
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):  # another program at that URL
        fail(f"--service: {url} answered {resp.status_code} without a stored fit (is it an abcscale service? its "
             f"answer began {resp.text[:80]!r})")
    return {**answer, "replayed": resp.headers.get("Idempotent-Replayed") == "true"}


def _pairs(text: str) -> dict[str, float]:
    """``--at``'s ``NAME=VALUE,...`` as numbers; an empty one (``--at "$AT"`` with AT unset) is an error, as an empty
    ``--derive`` is: it predicted at the bases in silence (a review)."""
    if not text.strip(" ,"):
        raise ValueError("empty (an unset variable?): give NAME=VALUE pairs, e.g. D=1e10,batch_size=64")
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE pairs, e.g. D=1e10,batch_size=64, got {part!r}")
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"{name.strip()}: VALUE must be a number, got {value.strip()!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name.strip()}: VALUE must be a positive number, got {value.strip()!r}")
        if name.strip() in out:  # the last one won in silence (a review), where --covariates refuses a repeat
            raise ValueError(f"{name.strip()}: given twice; each covariate once")
        out[name.strip()] = v
    return out


def loss_line(result: FitResult) -> str:
    """Which loss was fitted, and why (the default is the held-out loss where the table has it)."""
    col = result.mapping.loss_col
    held = "held-out eval loss, the default where the table has it" if col == "eval_loss" else None
    if held is None and "loss_col" not in result.mapping.model_fields_set:
        held = "training loss: the table has no complete eval_loss column"
    return f"loss: {col}" + (f" ({held})" if held else "")


def warning_line(msg: str) -> str:
    """A warning as printed: those that make a prediction unreliable in bold red."""
    from abcscale.fitting.predict import UNRELIABLE

    if msg.startswith(UNRELIABLE):
        return f"[bold red]warning: {msg}[/]"
    return f"[yellow]warning:[/] {msg}"


def _check_out(out: Path) -> None:
    """Before fitting: ``--out``'s ``fit.json``, where one is there, must be a fit (this command's own, from an
    earlier run, is replaced); a file of the user's by that name was overwritten (a review). Judged by its shape,
    not the schema: a fit from an older abcscale (``ci95`` where ``ci`` is now) is still this command's to replace;
    a service's stored fit holds one under ``result``."""
    path = out / "fit.json"
    try:
        if not path.exists():
            return
    except OSError as exc:  # a name too long for the file system: said as the flag, not as a bare path
        fail(f"--out: {out}: {exc.strerror or exc}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
        doc = doc["result"]
    if not (isinstance(doc, dict) and "groups" in doc and ("provenance" in doc or "mapping" in doc)):
        fail(f"--out: {path} exists and is not a fit from `abcscale fit` (it would be replaced); give another folder")


def _write_json(result: FitResult, out: Path) -> Path:
    """``out``/fit.json written whole or not at all (a temporary file renamed over it): on a full disk the fit
    there before was left cut short, unreadable (a review)."""
    path = out / "fit.json"
    tmp = out / ".fit.json.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(result.model_dump(mode="json"), indent=2, allow_nan=False) + "\n")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder may be what failed (missing_ok is ENOENT alone)
            tmp.unlink(missing_ok=True)
        fail(f"--out: cannot write {path} ({exc.strerror or exc}); a fit.json there before is as it was")
    return path


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def _ci(ci: Interval | None) -> str:
    return "-" if ci is None else f"[{ci.low:.3f}, {ci.high:.3f}]"


def _group_label(group: dict[str, Any]) -> str:
    # the runner's optimizer_variant only where it differs from the optimizer, as the tables show it
    shown = {k: v for k, v in group.items()
             if not (k == "optimizer_variant" and str(v) == str(group.get("optimizer")))}
    return ", ".join(f"{k}={value_text(v)}" for k, v in shown.items()) or "(all rows)"


def _level(result: FitResult) -> str:
    return f"{100 * result.provenance.settings.get('confidence_level', 0.95):g}%"


def _size(result: FitResult) -> tuple[str, str]:
    """How output names the size: (symbol in the law, noun): w/width, or the column and 'size' for parameters."""
    m = result.mapping
    if m.size_kind == "params":
        return m.size_col, "size"
    return ("w" if m.size_col == "width" else m.size_col), "width"


def _shown(result: FitResult) -> list[str]:
    """The group keys a table shows: ``optimizer_variant`` only where some group's differs from its optimizer (the
    runner's plain variants repeat it: ``mup adam adam full global``)."""
    keys = list(result.groups[0].group) if result.groups else []
    if all(str(g.group.get("optimizer_variant")) == str(g.group.get("optimizer")) for g in result.groups):
        keys = [k for k in keys if k != "optimizer_variant"]
    return keys


def _row_label(g: GroupFit, keys: list[str]) -> str:
    return " ".join(value_text(g.group[k]) for k in keys if k in g.group)


def _one_line(text: str) -> str:
    """A table's value as one line of text: a newline in a group value broke `--summary`'s line in two (a review);
    rich markup in one (`[bold]x[/bold]`) is escaped where the label is printed."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def print_summary(result: FitResult) -> None:
    level = _level(result)
    print_joint(result, warning_line)
    sym, noun = _size(result)
    t = Table(title=f"log2 LR* = log2 C + e log2({sym}/base): {result.provenance.n_rows} rows"
              + (", per curve" if result.joint else ""))
    for col in ("group", f"e ({level} CI)", "theory", "verdict", "C @ base", "LOO oct"):
        t.add_column(col, overflow="fold")
    shown = _shown(result)
    for g in result.groups:
        e = g.exponent
        verdict = {True: "[green]consistent[/]", False: "[red]INCONSISTENT[/]", None: "-"}[g.consistent]
        t.add_row(escape(_one_line(_row_label(g, shown))) or "all",
                  "-" if e is None else f"{e.estimate:.3f} {_ci(e.ci)}", g.theory_text(), verdict,
                  "-" if g.constant is None else f"{g.constant:.3g} @ {g.base_width}", _fmt(g.loo_error_octaves, ".2f"))
    console.print(t)
    console.print(loss_line(result), highlight=False)
    for msg in result.warnings:
        console.print(warning_line(msg), highlight=False)
    if result.groups and result.groups[0].group:
        console.print("group = " + " ".join(shown), style="dim")
    for g in result.groups:
        _print_group(g, level, result.mapping.size_col if noun == "size" else "width")


def print_compact(result: FitResult) -> None:
    """``--summary``: one line per group (for tables of many groups), then the table's warnings once."""
    level = _level(result)
    print_joint(result, warning_line)
    sym, noun = _size(result)
    shown = _shown(result)
    labels = [_one_line(_row_label(g, shown)) or "all rows" for g in result.groups]
    pad = max(map(len, labels), default=0)
    console.print(f"log2 LR* = log2 C + e log2({sym}/base): {result.provenance.n_rows} rows, {len(result.groups)} "
                  f"group{'' if len(result.groups) == 1 else 's'}; e with its {level} interval", highlight=False)
    for label, g in zip(labels, result.groups, strict=True):
        console.print(compact_line(escape(label.ljust(pad)), g), highlight=False)
        if g.prediction is not None:  # the answer --target-width asked for, under its group's line
            p = g.prediction
            # a per-layer sweep's LR* is beta, the base LR: its layers' LRs beside it (a review: 0.0227 read as
            # the LR, the hidden layer's 0.000709)
            what = "LR* beta (base LR)" if swept_beta(g.group, p) else own_lr("LR*", p)
            spread = layer_lrs(p, g.group)
            # at the fit's level, as its exponents above (it said 95% beside a 90% exponent: a review)
            console.print(f"{' ' * pad}  at {noun} {p.width}: {what} {p.lr:.4g}, {100 * p.ci.confidence_level:g}% "
                          f"[{p.ci.low:.4g}, {p.ci.high:.4g}], safe-side {p.safe_lr:.4g}"
                          + (f"; layer LRs {spread}" if spread else "")
                          + (" [bold red]unreliable[/]" if p.unreliable else ""), highlight=False)
    console.print(loss_line(result), highlight=False)
    for msg in result.warnings:
        console.print(warning_line(msg), highlight=False)
    if result.groups and result.groups[0].group:
        console.print("group = " + " ".join(shown), style="dim")


def compact_line(label: str, g: GroupFit) -> str:
    """One group in one line: label, exponent [interval], theory, verdict, number of warnings."""
    e = g.exponent
    # padded before the markup, so the columns line up
    verdict = {True: "[green]consistent[/]  ", False: "[red]INCONSISTENT[/]", None: "-" + " " * 11}[g.consistent]
    n = len(group_warnings(g))
    fitted = "e -" if e is None else f"e {e.estimate:.3f} {_ci(e.ci)}"
    warned = f"[yellow]{n} warning{'s' if n != 1 else ''}[/]" if n else "0 warnings"
    # 8: a global LR's span, "-1..-0.5", pushed its verdicts two columns right of the per-layer rows' (a review)
    return f"{label}  {fitted:<28}  theory {g.theory_text():<8}  {verdict}  {warned}"


def swept_beta(group: dict[str, Any], p: Prediction | None = None) -> bool:
    """Whether a group's swept LR is beta, the base LR of a per-layer sweep (its ``lr_mode`` column says
    per_layer): each layer's LR is then beta times its factors, and no layer trains at beta itself. Not where the
    prediction ``p`` is one layer's own LR (a fit of lr_col lr_hidden: a code review saw it called beta)."""
    if p is not None and p.lr_layer is not None:
        return False
    try:
        return LrMode.parse(str(group.get("lr_mode"))) is LrMode.per_layer
    except ValueError:
        return False


def layer_lrs(p: Prediction, group: dict[str, Any]) -> str | None:
    """``embedding 0.00401, hidden 0.000709, readout 0.00401``: the layers' LRs a prediction holds, where they are
    not all its LR (a per-layer sweep's beta, or a global LR with per-layer gammas); None otherwise."""
    if not p.layers or (not swept_beta(group, p) and all(math.isclose(s.lr, p.lr, rel_tol=1e-9) for s in p.layers)):
        return None
    return ", ".join(f"{s.layer.value} {s.lr:.4g}" for s in p.layers)


def own_lr(what: str, p: Prediction) -> str:
    """``what`` (LR*) with the layer whose own LR the prediction is, where it is one's."""
    return what if p.lr_layer is None else f"{what} ({p.lr_layer} layer's own LR)"


def beta_line(p: Prediction, group: dict[str, Any], noun: str = "width") -> str | None:
    """The line under a prediction that says what its LR* is where it is not one LR every layer trains at: a
    per-layer sweep's beta, the base LR each layer's LR scales from (a review: ``LR* at width 1024: 0.02268``
    beside layer LRs of 0.00401, 0.000709 and 0.00401), and the layers' LRs from it; None for one global LR."""
    spread = layer_lrs(p, group)
    if p.lr_layer is not None:
        return (f"LR* here is the {p.lr_layer} layer's own LR (the fit's LR column is that layer's own); the other "
                "layers' do not follow from it: fit the swept LR (beta) for per-layer settings")
    if swept_beta(group, p):
        head = ("LR* here is beta, the per-layer sweep's base LR (each layer's LR is beta x its gamma x "
                "(width/base)^-c), not a layer's LR")
        return head + (f"; the layers' LRs at {noun} {p.width}: {spread}" if spread else "")
    return None if spread is None else f"the layers' LRs at {noun} {p.width} from that LR*: {spread}"


def _print_group(g: GroupFit, level: str, size: str = "width") -> None:
    w = Table(title=f"per {size}: {escape(_one_line(_group_label(g.group)))}", title_justify="left")
    for col in (size, "LR*", f"{level} CI", "max stable", "<0.5% loss"):
        w.add_column(col, no_wrap=True)
    w.add_column("note", overflow="fold")
    for o in g.per_width:
        band = "-" if o.band_0p5 is None else f"{o.band_0p5[0]:.3g}-{o.band_0p5[1]:.3g}"
        note = "[yellow]edge[/]" if o.on_edge else ("" if o.identified else "[red]unidentified[/]")
        if label := {"asymmetric": "asym", "bracket": "bracket"}.get(o.model):
            note = f"{note} {label}".strip()
        ci = "-" if o.ci is None else f"{o.ci.low:.3g}-{o.ci.high:.3g}"
        w.add_row(str(o.width), _fmt(o.lr_opt, ".3g"), ci,
                  _fmt(o.largest_stable_lr, ".3g"), band, note)
    console.print(w)
    for o in g.per_width:  # why an interval is wide (a lack of fit, unresolved seed noise): the JSON's message
        if o.message:
            console.print(f"{size} {o.width}: {o.message}", highlight=False)
    if g.prediction is not None:
        console.print(f"prediction at {size} {g.prediction.width}: LR* {band_line(g.prediction, size)}",
                      highlight=False)
        if (said := beta_line(g.prediction, g.group, size)) is not None:
            console.print(said, highlight=False)
    for msg in group_warnings(g):
        console.print(warning_line(msg), highlight=False)


def _check_theory(result: FitResult) -> list[tuple[str, str]]:
    """The --expect-theory gate's failures: a group disagrees with theory or could not be checked."""
    out = []
    for g in result.groups:
        label = _group_label(g.group)
        if g.consistent is False and g.exponent is not None:
            e = g.exponent
            out.append(("inconsistent", f"{label}: exponent {e.estimate:.3f}, {100 * e.ci.confidence_level:g}% "
                                        f"interval {_ci(e.ci)}, theory {g.theory_text()}"))
        elif g.consistent is None and g.exponent is None:
            out.append(("not checked", f"{label}: no exponent was fitted ({'; '.join(g.warnings) or 'see summary'})"))
        elif g.consistent is None:
            # the reason theory has no exponent for the group (an unknown optimizer, an empty column), not every
            # warning the group has: its widths and loss law said nothing about why (a review)
            from abcscale.fitting.group import NO_THEORY

            # a reason every group shares (a whole table of one unknown optimizer) is said once, in the result's
            # warnings (fitting.pipeline._said_once): read it there too, or the gate loses why
            why = [w.removeprefix(NO_THEORY) for w in [*g.warnings, *result.warnings] if w.startswith(NO_THEORY)]
            out.append(("not checked", f"{label}: no theory exponent for this group: "
                                       + ("; ".join(why) or "theory gives none for its parameterization, optimizer "
                                          "and lr_mode")))
    return out
