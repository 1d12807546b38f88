"""``abcscale tune``: search beta and the per-layer constants at the base width; write the constants file.

The training setup is a sweep spec (SPEC.toml and/or the flags ``abcscale sweep`` shares); the search's own
flags build :class:`~abcscale.schemas.tune.TuneSettings`. ``abcscale recommend --constants FILE`` reads the result.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from abcscale.cli._common import (
    Table,
    console,
    emit_json,
    err_console,
    fail,
    interrupted,
    on_command_line,
    sigterm_stops,
    styled_warnings,
    validation_message,
)
from abcscale.cli.options import Json, LrModeOpt, Quiet
from abcscale.cli.runner import MODEL_METAVAR, _build_spec, _check_model
from abcscale.schemas.enums import LrMode
from abcscale.schemas.tune import TransferCheck, TrialRecord, TunedConstants, TuneSettings, unsearched_range

#: TuneSettings fields -> the flags that set them
FLAGS = {"tune": "--tune", "trials": "--trials", "seconds": "--seconds", "seeds": "--seeds",
         "reeval_seeds": "--reeval-seeds", "top": "--top", "sampler_seed": "--seed",
         "beta_range": "--beta-range", "gamma_range": "--gamma-range", "scale_range": "--scale-range",
         "epsilon_range": "--epsilon-range"}
SEARCH, SETUP, VERIFY = "Search", "Training setup (as abcscale sweep)", "Transfer check"
DEFAULT_TRIALS = 30  # the budget when neither --trials nor --seconds is given
Text = str | None


def _groups(text: str) -> list[str]:
    """``--tune``'s groups; ``none`` is beta alone. An empty list or item is a typo, not beta alone."""
    if text.strip().lower() == "none":
        return []
    items = [g.strip() for g in text.split(",")]
    if not any(items):
        fail("--tune: empty; name the groups searched with beta (gamma, init_scale, multiplier, epsilon), or none "
             "for beta alone")
    if "" in items:
        fail(f"--tune[{items.index('')}]: empty")
    return items


def _range(text: str | None, flag: str) -> tuple[float, float] | None:
    """``LOW:HIGH`` with 0 < LOW < HIGH, or one line naming the flag."""
    if text is None:
        return None
    try:
        low, high = (float(x) for x in text.split(":"))
    except ValueError:
        fail(f"{flag}: expected LOW:HIGH, got {text!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        fail(f"{flag}: expected finite 0 < LOW < HIGH, got {text!r}")
    return low, high


# One parameter per flag; the body builds the spec and the settings, runs the search and prints.
def tune(
    ctx: typer.Context,
    spec_file: Annotated[Path | None, typer.Argument(metavar="[SPEC.toml]", help="sweep spec file for the training "
                                                     "setup", show_default=False)] = None,
    parameterization: Annotated[str, typer.Option("--parameterization", "-p", help="standard | ntk | mup | "
                                                  "mean_field", rich_help_panel=SEARCH)] = "mup",
    optimizer: Annotated[str, typer.Option("--optimizer", "-o", help="the runner's optimizer variant",
                                           rich_help_panel=SEARCH)] = "adam",
    alignment: Annotated[str, typer.Option("--alignment", "-a", rich_help_panel=SEARCH)] = "full",
    lr_mode: LrModeOpt = LrMode.per_layer,
    base_width: Annotated[int, typer.Option("--base-width", help="the width tuned at", rich_help_panel=SEARCH,
                                            min=1, max=2**40)] = 32,
    groups: Annotated[str, typer.Option("--tune", help="constant groups searched with beta: gamma, init_scale, "
                                        "multiplier, epsilon (comma list), or none for beta alone",
                                        rich_help_panel=SEARCH)] = "gamma",
    trials: Annotated[int | None, typer.Option(help="most trials (30 unless --seconds is given)",
                                               rich_help_panel=SEARCH, show_default=False)] = None,
    seconds: Annotated[float | None, typer.Option(help="most seconds of search", rich_help_panel=SEARCH,
                                                  show_default=False)] = None,
    seeds: Annotated[int, typer.Option(help="seeds per trial (>1: median pruning after each)",
                                       rich_help_panel=SEARCH)] = 1,
    reeval_seeds: Annotated[int, typer.Option("--reeval-seeds", help="fresh seeds for each top candidate",
                                              rich_help_panel=SEARCH)] = 3,
    top: Annotated[int, typer.Option(help="candidates re-evaluated", rich_help_panel=SEARCH)] = 3,
    seed: Annotated[int, typer.Option(help="the sampler's seed", rich_help_panel=SEARCH)] = 0,
    beta_range: Annotated[Text, typer.Option("--beta-range", help="LOW:HIGH", rich_help_panel=SEARCH,
                                             show_default="2^-14:2^-2")] = None,
    gamma_range: Annotated[Text, typer.Option("--gamma-range", help="LOW:HIGH", rich_help_panel=SEARCH,
                                              show_default="0.01:100")] = None,
    scale_range: Annotated[Text, typer.Option("--scale-range", help="LOW:HIGH of the init_scale and multiplier "
                                              "constants", rich_help_panel=SEARCH, show_default="0.1:10")] = None,
    epsilon_range: Annotated[Text, typer.Option("--epsilon-range", help="LOW:HIGH of epsilon's base-width value",
                                                rich_help_panel=SEARCH, show_default="1e-12:1e-4")] = None,
    model: Annotated[Text, typer.Option(metavar=MODEL_METAVAR, rich_help_panel=SETUP,
                                        show_default="transformer")] = None,
    data: Annotated[Text, typer.Option(rich_help_panel=SETUP, show_default="default")] = None,
    steps: Annotated[int | None, typer.Option(rich_help_panel=SETUP, show_default="200")] = None,
    batch: Annotated[int | None, typer.Option(rich_help_panel=SETUP, show_default="16")] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", rich_help_panel=SETUP, show_default="64")] = None,
    depth: Annotated[int | None, typer.Option(rich_help_panel=SETUP, show_default="2")] = None,
    head_dim: Annotated[int | None, typer.Option("--head-dim", rich_help_panel=SETUP, show_default="16")] = None,
    out: Annotated[Path, typer.Option("--out", help="the constants file written", dir_okay=False)] = Path(
        "tuned-constants.json"),
    verify_widths: Annotated[Text, typer.Option("--verify-widths", metavar="2x,4x", help="then check the transfer: "
                                                "an LR sweep at each width (multiples of the base or widths), "
                                                "tuned against the starting constants", rich_help_panel=VERIFY,
                                                show_default=False)] = None,
    verify_lrs: Annotated[int, typer.Option("--verify-lrs", help="betas per width, an octave apart around the "
                                            "transferred one", rich_help_panel=VERIFY)] = 5,
    verify_seeds: Annotated[int, typer.Option("--verify-seeds", help="seeds per beta (the interval's sample)",
                                              rich_help_panel=VERIFY)] = 3,
    verify_constants: Annotated[bool, typer.Option("--verify-constants", help="also run the fitter's constants-"
                                                   "consistency test: each tuned gamma x 1/4..4 at the base width and "
                                                   "each --verify-widths width; does its optimum drift with width?",
                                                   rich_help_panel=VERIFY)] = False,
    constants_file: Annotated[Path | None, typer.Option(
        "--constants", help="skip the search: check this constants file's transfer (--verify-widths) and add the "
        "result to it", rich_help_panel=VERIFY, dir_okay=False, show_default=False)] = None,
    storage: Annotated[Text, typer.Option("--storage", metavar="URL", help="keep the search in this Optuna "
                                          "database (sqlite:///tune.db, ...): a rerun resumes it, finished trials "
                                          "are not rerun", rich_help_panel=SEARCH, show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="--storage in a SQLite file next to --out "
                                         "(OUT.study.db)", rich_help_panel=SEARCH)] = False,
    ray: Annotated[bool, typer.Option("--ray", help="evaluate --workers trials at a time on Ray actors (the ray "
                                      "extra)", rich_help_panel=SEARCH)] = False,
    workers: Annotated[int, typer.Option(help="trials at a time with --ray", min=1, rich_help_panel=SEARCH)] = 2,
    address: Annotated[Text, typer.Option(help="Ray cluster address (--ray; default: start or join a local one)",
                                          rich_help_panel=SEARCH, show_default=False)] = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Tune beta jointly with the per-layer constants at the base width (Optuna TPE, fixed seed, log scale),
    re-evaluate the top candidates with fresh seeds, and write the constants file (--out) that
    `abcscale recommend --constants FILE` takes. --verify-widths 2x,4x then sweeps a few LRs at larger widths with
    the tuned and the starting constants and reports whether tuned still wins (loss difference, 95% interval)."""
    from abcscale.usecases.tune import save_constants
    from abcscale.usecases.tune import tune as run_tune

    for flag, n in (("--verify-lrs", verify_lrs), ("--verify-seeds", verify_seeds)):
        if n < 2:
            fail(f"{flag}: at least 2, got {n}")
    if verify_constants and verify_widths is None:
        fail("--verify-constants: give --verify-widths (the widths it checks)")
    if constants_file is not None:
        if verify_widths is None:
            fail("--constants: give --verify-widths (the transfer check is what runs on a constants file)")
        # the file says its setup and training; a search or setup flag beside it was silently ignored
        if unused := _typed(ctx, exclude={"constants_file", "out", "quiet", "as_json", "verify_widths",
                                          "verify_lrs", "verify_seeds", "verify_constants"}):
            fail(f"{unused[0]}: with --constants only the transfer check runs, with the file's setup and training; "
                 f"drop {', '.join(unused)}")
        tuned = _load(constants_file)
        from abcscale.usecases.tune import with_local_paths

        recorded = tuned.training  # written back as it was: the paths are found, not rewritten in the file
        try:  # the recorded model and data paths, relative to where tune ran (session 45's "noticed and left")
            tuned, notes = with_local_paths(tuned, constants_file.resolve().parent)
        except ValueError as exc:
            fail(f"--constants: {constants_file}: {exc}")
        for note in notes:
            err_console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
        # --out given: the checked file goes there and FILE stays as it was; else the check is added to FILE
        target = out if _typed(ctx, include={"out"}) else constants_file
        if target != constants_file:  # before the check runs, not after it (FILE itself holds this setup)
            from abcscale.usecases.tune import check_out

            try:
                check_out(target, tuned)
            except ValueError as exc:
                fail(f"--{exc}")
        _verify_and_print(tuned, verify_widths, verify_lrs, verify_seeds, target, quiet, as_json, verify_constants,
                          "--out" if target != constants_file else "--constants", recorded,
                          stopped=f"{target} {'unchanged' if target == constants_file else 'not written'}; rerun the "
                                  "same command to check it")
        return

    # a SPEC's setup stands where no flag is typed (the flags' defaults overrode it: a spec for standard + sgd was
    # tuned as mup + adam, at base width 32)
    typed = set(_typed(ctx, include={"parameterization", "optimizer", "alignment", "lr_mode", "base_width"}))

    def setup(value: Any, *flags: str) -> Any:
        return value if spec_file is None or typed & set(flags) else None

    width_typed = spec_file is None or "--base-width" in typed
    spec = _build_spec(spec_file, {
        "parameterizations": setup(parameterization, "--parameterization"),
        "optimizers": setup(optimizer, "--optimizer"), "alignments": setup(alignment, "--alignment"),
        "lr_modes": setup([lr_mode], "--lr-mode"), "widths": str(base_width) if width_typed else None,
        "base_width": base_width if width_typed else None, "model": model, "data": data,
        "steps": steps, "batch": batch, "seq_len": seq_len, "depth": depth, "head_dim": head_dim},
        names={"widths": "--base-width", "base_width": "--base-width"})
    if spec_file is not None:
        for key, flag in (("parameterizations", "-p"), ("optimizers", "-o"), ("alignments", "-a"),
                          ("lr_modes", "--lr-mode")):
            if len(values := getattr(spec, key)) > 1:
                shown = ", ".join(str(getattr(v, "value", v)) for v in values)
                fail(f"{spec_file}: {key} lists {shown}; tune searches one setup: give {flag}")
        if not width_typed:  # tuned at the spec's base width (its base_width, else its smallest width)
            try:
                spec = spec.with_overrides(widths=str(spec.base), base_width=spec.base)
            except ValidationError as exc:  # that width against the spec's own head_dim, say
                fail(f"{spec_file}: tuned at its base width {spec.base}: {validation_message(exc)}; give --base-width")
    _check_model(spec, spec_file, {k for k in ("model", "data") if ctx.params.get(k) is not None})
    _check_out(out, spec)
    if verify_widths is not None:  # checked now, not after the search
        from abcscale.usecases.tune_verify import check_widths, parse_widths

        try:
            # the file's training setup, as the check after the search reads it (its own grid, gammas and seeds)
            training = spec.model_dump(mode="json", exclude={"widths", "log2_lr", "gammas", "seeds"})
            check_widths(training, spec.base, parse_widths(verify_widths, spec.base))
        except ValueError as exc:
            fail(f"--verify-widths: {str(exc).removeprefix('verify_widths: ')}")
    try:
        settings = TuneSettings.model_validate({k: v for k, v in {
            "tune": _groups(groups),
            "trials": DEFAULT_TRIALS if trials is None and seconds is None else trials, "seconds": seconds,
            "seeds": seeds, "reeval_seeds": reeval_seeds, "top": top, "sampler_seed": seed,
            "beta_range": _range(beta_range, "--beta-range"),
            "gamma_range": _range(gamma_range, "--gamma-range"), "scale_range": _range(scale_range, "--scale-range"),
            "epsilon_range": _range(epsilon_range, "--epsilon-range")}.items() if v is not None or k == "trials"})
    except ValidationError as exc:
        fail(validation_message(exc, FLAGS))
    if settings.trials is None and settings.seconds is not None and math.isinf(settings.seconds):
        fail("--seconds: inf never ends the search; give a number of seconds, or --trials")
    if said := unsearched_range(settings, {"gamma_range": gamma_range, "scale_range": scale_range,
                                           "epsilon_range": epsilon_range}, FLAGS, "--tune", groups):
        fail(said)  # the range of a constant not searched: a typo
    if ray and importlib.util.find_spec("ray") is None:
        fail("--ray: ray is not installed (pip install 'abcscale[ray]')")
    if not ray:  # they would be ignored, the trials run here one at a time (as sweep's --address refuses: a review)
        if address is not None:
            fail("--address: a Ray cluster's address goes with --ray")
        if on_command_line(ctx, "workers"):
            fail("--workers: trials at a time on Ray actors, with --ray")
    if resume and storage is not None:
        fail("--resume: give --resume or --storage, not both")
    if resume:
        from sqlalchemy.engine import URL

        # built escaped: a `?` or `%` in the path made the URL name another file (a code review)
        storage = URL.create("sqlite", database=str(out.with_name(out.name + ".study.db").resolve())) \
            .render_as_string(hide_password=False)
    done = [0]  # this process's trials, for the interrupt's message
    progress = _Progress(settings)
    known = _studies(storage) if storage is not None else None  # the searches the database held before this one

    def on_trial(t: TrialRecord) -> None:
        done[0] += 1
        if not quiet:
            progress(t)

    def on_resume(before: int) -> None:
        progress.before = before
        if before and not quiet:
            total = "" if settings.trials is None else f" of {settings.trials}"
            trials = "trials" if total or before != 1 else "trial"  # "1 of 5 trials", "1 trial"
            err_console.print(f"resumed: {before}{total} {trials} already finished in {_shown(storage)}",
                              highlight=False, soft_wrap=True)
        # a rerun with another --steps, --seed, model or data is another study: it started fresh beside the one the
        # user meant to resume, silently (a user review)
        if not before and known and (_studies(storage) or set()) - known:
            err_console.print(f"note: {_shown(storage)} holds {len(known)} other search(es), of another training "
                              "setup, data or search space (a study is named by them): this one starts fresh, none "
                              "of their trials mixed in", highlight=False, soft_wrap=True)
    from abcscale.runner.store import SweepWarning

    try:
        with styled_warnings(SweepWarning), sigterm_stops():  # an edit saved during the search: one line
            tuned = run_tune(spec, settings, on_trial=on_trial, storage=storage,
                             ray_workers=workers if ray else None, address=address, on_resume=on_resume)
    except ValueError as exc:  # "field: why", the field named as its flag
        field, _, why = str(exc).partition(": ")
        from abcscale.cli.runner import FLAGS as SPEC_FLAGS  # the spec's list keys, said as the flags that set them

        storage_flag = "--resume" if resume else "--storage"  # the study's file is --resume's (a review: --storage)
        named = FLAGS.get(field) or SPEC_FLAGS.get(field) or (storage_flag if field == "storage" else field)
        fail(f"{named}: {why}" if why else str(exc))
    except KeyboardInterrupt:
        kept = (f"they are kept in {_shown(storage)}: rerun the same command to continue" if storage else
                "nothing is kept without --resume (or --storage): rerun with --resume to keep finished trials")
        interrupted(f"interrupted after {done[0]} trial(s); {out} not written; {kept}")
    try:
        save_constants(tuned, out)
    except ValueError as exc:
        fail(f"--{exc}")
    if not as_json:
        print_tuned(tuned, out, progress.before)
    if verify_widths is not None:
        _verify_and_print(tuned, verify_widths, verify_lrs, verify_seeds, out, quiet, as_json, verify_constants,
                          stopped=f"{out} holds the tuned constants without it: `abcscale tune --constants {out} "
                                  f"--verify-widths {verify_widths}` checks them")
    elif as_json:
        emit_json(tuned)


def _typed(ctx: typer.Context, *, include: set[str] | None = None, exclude: frozenset[str] | set[str] = frozenset()
           ) -> list[str]:
    """The flags of ``ctx``'s parameters the user typed (or set in the environment), as typed."""
    out = []
    for p in ctx.command.params:
        if p.name is None or p.name in exclude or (include is not None and p.name not in include):
            continue
        source = ctx.get_parameter_source(p.name)  # typer vendors click: its enum, compared by name
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
            out.append(p.opts[0] if p.opts and p.opts[0].startswith("-") else p.name.upper())
    return out


def _check_out(out: Path, spec: Any) -> None:
    from abcscale.usecases.tune import check_out

    try:
        check_out(out, spec)
    except ValueError as exc:
        fail(f"--{exc}")


def _load(path: Path) -> TunedConstants:
    from abcscale.usecases.tune import load_constants

    try:
        return load_constants(path)
    except ValueError as exc:
        fail(f"--constants: {exc}")


def _verify_and_print(tuned: TunedConstants, widths_text: str, lrs: int, seeds: int, out: Path, quiet: bool,
                      as_json: bool, constants: bool = False, flag: str = "--out",
                      training: dict[str, Any] | None = None, stopped: str = "") -> None:
    """Run the transfer check (and with ``constants`` the constants-consistency test, its sweeps kept in
    OUT.constants-sweep), write the file with it, print the tables (or the whole file as JSON). ``stopped``: what
    a Ctrl-C during the check leaves, as said (it said "interrupted" alone, the file written without the check)."""
    from abcscale.usecases.tune import save_constants
    from abcscale.usecases.tune_verify import check_widths, parse_widths, verify, verify_constants

    try:
        widths = parse_widths(widths_text, tuned.base_width)
        check_widths(tuned.training, tuned.base_width, widths)
    except ValueError as exc:
        fail(f"--verify-widths: {str(exc).removeprefix('verify_widths: ')}")

    def line(c: TransferCheck) -> None:
        err_console.print(f"width {c.width}: tuned {c.tuned_loss:.4f}  default {c.default_loss:.4f}  "
                          f"({c.elapsed_s:.1f} s)", highlight=False)
    try:
        with sigterm_stops():
            tuned = verify(tuned, widths, lrs=lrs, step=1.0, seeds=seeds, on_width=None if quiet else line)
            if constants:
                tuned = verify_constants(tuned, widths, out.with_name(out.name + ".constants-sweep"), seeds=seeds,
                                         progress=not quiet)
    except ValueError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted(f"interrupted during the transfer check; {stopped or 'rerun the same command to check it'}")
    if training is not None:  # the file's own record of its training, not the paths found for this check
        tuned = tuned.model_copy(update={"training": training})
    try:
        save_constants(tuned, out)
    except ValueError as exc:
        fail(f"{flag}: {str(exc).removeprefix('out: ')}")
    if as_json:
        emit_json(tuned)
        return
    print_transfer(tuned, out)
    if tuned.constants_check is not None:
        print_constants_check(tuned)


def print_constants_check(tuned: TunedConstants) -> None:
    """Per tuned constant: the fitter's optimum at the base width and its drift with width (theory: 0)."""
    c = tuned.constants_check
    assert c is not None
    t = Table(title=f"constants check (the fitter's): optimum of each tuned constant across widths {c.widths}")
    for col in ("constant", "tuned", "fitted optimum at base [95%]", "drift exponent [95%]", "width-independent"):
        t.add_column(col, justify="right")
    fits = {f.name: f for f in c.fits}
    for name, ok in c.width_independent.items():
        f, value = fits.get(name), tuned.constants.gamma[name.removeprefix("gamma_")]
        opt = "-" if f is None else f"{f.optimum.estimate:.3g} [{f.optimum.ci.low:.3g}, {f.optimum.ci.high:.3g}]"
        d = None if f is None else f.drift_exponent
        drift = "-" if d is None else f"{d.estimate:+.2f} [{d.ci.low:+.2f}, {d.ci.high:+.2f}]"
        verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: "-" if d is None else "unclear"}[ok]
        t.add_row(name, f"{value:.3g}", opt, drift, verdict)
    console.print(t)
    for n in c.notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False, soft_wrap=True)


def print_transfer(tuned: TunedConstants, out: Path) -> None:
    """Per width: each one's best loss (and beta), the difference with its interval, and the verdict."""
    t = Table(title=f"transfer check: tuned (width {tuned.base_width}) against the starting constants")
    for col in ("width", "tuned loss", "at beta", "default loss", "at beta", "default - tuned", "interval",
                "tuned wins"):
        t.add_column(col, justify="right")
    for c in tuned.transfer:
        edge = {True: "*", False: ""}
        verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: "unclear"}[c.tuned_wins]
        t.add_row(f"{c.width} ({c.ratio:g}x)", f"{c.tuned_loss:.4f}", f"{c.tuned_beta:.3g}{edge[c.tuned_at_edge]}",
                  f"{c.default_loss:.4f}", f"{c.default_beta:.3g}{edge[c.default_at_edge]}", f"{c.difference:+.4f}",
                  f"[{c.interval[0]:+.4f}, {c.interval[1]:+.4f}]", verdict)
    console.print(t)
    console.print(f"{tuned.transfer[0].seeds} seeds per beta, {len(tuned.transfer[0].log2_lr)} betas an octave apart "
                  f"around the transferred one; interval {tuned.transfer[0].confidence:.0%} Student t over the "
                  "per-seed differences; * best at the grid's edge (a win over it is unclear: it may do better past "
                  f"the edge; widen the grid with --verify-lrs) -> {out}", highlight=False)


def _studies(storage: str | None) -> set[str] | None:
    """The names of the tune studies a database holds (None where it cannot be read: the search says why)."""
    import optuna
    from sqlalchemy.engine import make_url

    try:
        url = make_url(storage or "")
        if url.drivername.startswith("sqlite") and url.database and not Path(url.database).exists():
            return set()  # none yet: reading would create the file before the search has checked its setup
        return {n for n in optuna.get_all_study_names(storage or "") if n.startswith("abcscale-tune-")}
    except Exception:  # sqlalchemy's, optuna's: a bad URL, an unreachable database
        return None


def _shown(storage: str | None) -> str:
    """A storage URL as it may be printed: its password hidden (a CI log keeps what a command says)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage or "").render_as_string(hide_password=True)
    except ArgumentError:
        return str(storage)


class _Progress:
    """A line per trial on stderr, counted from the trials a resumed study held (``before``): Optuna's trial number
    also counts failed and retried trials, which read as 'trial 11/10' after a resume."""

    def __init__(self, settings: TuneSettings) -> None:
        self.total = "" if settings.trials is None else f"/{settings.trials}"
        self.before = self.count = 0

    def __call__(self, t: TrialRecord) -> None:
        self.count += 1
        params = "  ".join(f"{k}={v:.3g}" for k, v in t.params.items())
        # a failed trial (Ctrl-C stops the search instead) is one whose mean loss was NaN: Optuna's own two lines
        # saying so are left out (abcscale.usecases.tune._NoInterrupt)
        loss = ("nan" if t.state == "FAIL" else "-") if t.loss is None else f"{t.loss:.4f}"
        err_console.print(f"trial {self.before + self.count}{self.total}  {t.state.lower():8} loss {loss}  {params}",
                          highlight=False, soft_wrap=True)  # one line each, whatever the terminal (a CI log)


def print_tuned(tuned: TunedConstants, out: Path, resumed: int = 0) -> None:
    """The winner's values with their near-best range, its re-evaluated loss and the budget used (``resumed`` of its
    trials a stored study held: they are not in this run's seconds)."""
    c = tuned.constants
    t = Table(title=f"tuned at width {tuned.base_width}: {tuned.parameterization} + {tuned.optimizer_variant}, "
                    f"{tuned.lr_mode.value} LR, alignment {tuned.alignment}")
    for col in ("constant", "value", "near-best range"):
        t.add_column(col, justify="left" if col == "constant" else "right")
    values = {"beta": tuned.beta, **{f"gamma_{k}": v for k, v in c.gamma.model_dump().items()},
              **{f"init_scale_{k}": v for k, v in c.init_scale.model_dump().items()},
              **{f"multiplier_{k}": v for k, v in c.multiplier.model_dump().items()}, "epsilon": c.epsilon}
    for name, value in values.items():
        rng = tuned.near_best.get(name)
        t.add_row(name, f"{value:.4g}", "-" if rng is None else f"[{rng[0]:.3g}, {rng[1]:.3g}]")
    console.print(t)
    n = tuned.settings.reeval_seeds
    spread = (f"+- {tuned.loss_std:.4f} (std over {n} fresh seeds)" if n > 1 else
              "(1 fresh seed: no spread to give; --reeval-seeds 2 or more measures it)")
    trials = f"{tuned.trials_run} trial{'' if tuned.trials_run == 1 else 's'}" + (
        f" ({resumed} resumed)" if resumed else "")
    console.print(f"eval loss {tuned.loss:.4f} {spread}; {trials} in {tuned.elapsed_s:.1f} s -> {out}",
                  highlight=False)
