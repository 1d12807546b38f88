"""``abcscale recommend``: per-layer settings at a target width, from theory or from a fit.

``--format`` chooses what is printed: ``table`` (the default), ``json`` (the REST answer), or a Python snippet
that applies the answer's parameter groups in PyTorch (``torch``) or JAX/optax (``optax``) code.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from abcscale.cli._common import (
    OUT_OF_MEMORY,
    TOO_DEEP,
    Table,
    build,
    console,
    emit_json,
    err_console,
    fail,
    fail_gate,
    parse_flag,
    python_limit,
    read_fit,
    to_jsonable,
    validation_message,
    verdict,
)
from abcscale.cli.options import (
    EpsilonModeGiven,
    EpsilonOpt,
    FormOpt,
    GammaOpt,
    InitScaleOpt,
    MultiplierOpt,
    OptimizerOpt,
    ParamOpt,
    WeightDecayModeGiven,
    WeightDecayOpt,
    Width,
)
from abcscale.cli.theory import frac
from abcscale.schemas.enums import Layer, LrMode, mup_wrapper
from abcscale.schemas.fit import Prediction
from abcscale.schemas.groups import Form, GroupSpec, Role
from abcscale.schemas.recommend import LrBand, Recommendation
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.usecases.snippets import snippet

if TYPE_CHECKING:
    from abcscale.usecases.recommend import ConstantsDocument

#: request fields -> the flags that set them, so validation errors name what the user typed
FLAGS = {"beta": "--base-lr", "base.beta": "--base-lr", "base_width": "--base-width", "base.width": "--base-width",
         "width": "--width", "fit_id": "--fit", "rules": "--rules"}


class Format(StrEnum):
    table = "table"
    json = "json"
    torch = "torch"
    optax = "optax"

PerLayerOpt = Annotated[str | None, typer.Option(help="'e,h,r' or one number", show_default="1,1,1")]


def recommend(
    width: Width,
    parameterization: ParamOpt = None,
    optimizer: OptimizerOpt = None,
    base_width: Annotated[int | None, typer.Option("--base-width", help="width beta was tuned at (not with --fit)",
                                                   show_default=False)] = None,
    base_lr: Annotated[float | None, typer.Option("--base-lr", help="beta, the LR tuned at the base width (not "
                                                  "with --fit)", show_default=False)] = None,
    alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full | none | ALPHA,OMEGA,U; with "
                                                  "--fit it also selects the group", show_default="full")] = None,
    lr_mode: Annotated[LrMode | None, typer.Option(
        "--lr-mode", parser=LrMode.parse, show_default="per_layer",
        help="global: one LR for every layer (in the abc form; the other forms fold each multiplier into it); "
             "per_layer: each layer's own exponent. With --fit it selects the group, and says the mode of a table "
             "without an lr_mode column")] = None,
    gamma: GammaOpt = None,
    init_scale: InitScaleOpt = None,
    multiplier: MultiplierOpt = None,
    epsilon: EpsilonOpt = None,
    epsilon_mode: EpsilonModeGiven = None,
    weight_decay: WeightDecayOpt = None,
    weight_decay_mode: WeightDecayModeGiven = None,
    fit: Annotated[Path | None, typer.Option("--fit", help="a fit.json from `abcscale fit` (instead of "
                                             "--base-width/--base-lr)", show_default=False)] = None,
    constants_file: Annotated[Path | None, typer.Option("--constants", help="a constants file from `abcscale tune`: "
                                                        "its constants, and the -p, -o, -a, --lr-mode, --base-width "
                                                        "and --base-lr not given; a hand-written one (gamma, "
                                                        "init_scale, multiplier, epsilon, ... in JSON, YAML or TOML; "
                                                        "with width and beta beside them, the base width and LR "
                                                        "they hold at); or the JSON of `abcscale mup import --json` "
                                                        "(its constants, base width, beta, -p mup and -o)",
                                                        show_default=False)] = None,
    group: Annotated[str | None, typer.Option(help="with --fit: pick a group, 'key=value,...' or a JSON object",
                                              show_default=False)] = None,
    form: FormOpt = Form.abc,
    rules: Annotated[Path | None, typer.Option("--rules", help="name rules tried before the defaults: a JSON, "
                                               "YAML or TOML list of {pattern, role}", show_default=False)] = None,
    output: Annotated[Format | None, typer.Option("--format", help="table | json | torch (a PyTorch snippet) | "
                                                  "optax (a JAX/optax snippet)", show_default="table",
                                                  case_sensitive=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the same as --format json")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="with --fit: exit 1 when the prediction is unreliable "
                                         "(a huge expected loss penalty, or extrapolation from 2 widths)")] = False,
) -> None:
    """Per-layer multiplier, init std, LR, epsilon and (AdamW) weight decay at a target width, and the same as
    parameter groups (embedding, hidden, readout, vector-like) in the --form a model uses.

    Analytic (theory) from -p, -o, --base-width and --base-lr; or from a fit with --fit, whose group
    -p, -o, --lr-mode global, -a and --group select.
    """
    from abcscale import usecases
    from abcscale.usecases.recommend import document_beta_note, read_rules

    if strict and fit is None:  # an analytic answer has no band to be unreliable: the gate would always pass
        fail("--strict: it checks a fitted prediction; give --fit")
    if as_json and output is not None and output is not Format.json:
        fail(f"--json: it is --format json; drop it or --format {output.value}")
    output = Format.json if as_json else output or Format.table
    user_rules = parse_flag(read_rules, None if rules is None else str(rules), "--rules")

    constants = typed = build(Constants, {}, gamma=parse_flag(PerLayer.parse, gamma, "--gamma"),
                      init_scale=parse_flag(PerLayer.parse, init_scale, "--init-scale"),
                      multiplier=parse_flag(PerLayer.parse, multiplier, "--multiplier"), epsilon=epsilon,
                      epsilon_mode=epsilon_mode, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode)
    typed_beta = base_lr  # before a constants file's beta fills it in
    # a hand-written constants file or `mup import --json`'s document (None: a tune file, or no file)
    doc = None if constants_file is None else _bare(constants_file)
    if constants_file is not None:
        constants, (parameterization, optimizer, alignment, base_width, base_lr, lr_mode) = _tuned(
            constants_file, doc, constants, fit is not None, parameterization, optimizer, alignment, base_width,
            base_lr, lr_mode)
    try:  # one rule for which flags go with which source, shared with the Python API and the REST body
        req = usecases.recommend_request(
            width=width, parameterization=parameterization, optimizer=optimizer, alignment=alignment,
            lr_mode=lr_mode, base_width=base_width, beta=base_lr, constants=constants,
            fit_id=None if fit is None else usecases.LOCAL_FIT, group=group, form=form, rules=user_rules)
    except ValidationError as exc:
        fail(validation_message(exc, FLAGS))
    try:
        rec = usecases.recommend(req, None if fit is None else read_fit(fit))
    except ValueError as exc:  # "weight_decay: adam has none": the field named as its flag
        from abcscale.fitting.predict import GroupSetupError, NoLaw

        if isinstance(exc, GroupSetupError):  # the fit's own column holds what theory cannot read
            fail(f"--fit: {exc}")
        if isinstance(exc, NoLaw):  # the sweep's shortfall: a gate fails it as fit --strict does (exit 1)
            if strict:
                fail_gate(reason := f"--strict: unreliable: no prediction: {exc}", [reason])
            fail(f"--fit: {exc}")
        if (said := _group_said(exc, group)) is not None:
            fail(said)
        field, sep, why = str(exc).partition(": ")
        if sep and field in ("alignment", "lr_mode") and group and (alignment, lr_mode)[field == "lr_mode"] is None:
            from abcscale.usecases.recommend import selector_from

            if field in selector_from(group):  # --group gave it (the sweep's own exponents refused it)
                fail(f"--group {field}: {why}")
        if sep and constants_file is not None and field in Constants.model_fields \
                and field not in typed.model_fields_set:  # the file's value, not a flag's
            fail(f"--constants: {constants_file}: constants.{field}: {why}")
        flag = FLAGS.get(field) or _GROUP_FLAGS.get(field) or (
            f"--{field.replace('_', '-')}" if field in Constants.model_fields else None)
        head, give, keys = str(exc).rpartition("no such column; give ")
        if give:  # the group's theory settings the fit's table lacks: the flags that give them
            fail(head + give + " and ".join(f"{_GROUP_FLAGS[k]} ({k})" for k in keys.split(" and ")))
        fail(f"{flag}: {why}" if sep and flag else str(exc))
    if constants_file is not None and doc is not None and fit is not None:
        _agrees_with_fit(constants_file, doc, rec)
        if doc.base is not None:  # as the Python API says a BaseConfig's with a fit
            rec = rec.model_copy(update={"warnings": [*rec.warnings, f"--constants: the beta {doc.base.beta:g} in "
                                                      f"{constants_file} is not used; the LR is the fit's"]})
    if constants_file is not None and doc is not None and doc.base is not None and fit is None and (
            note := document_beta_note(doc.base.beta, typed_beta, name="--base-lr", path=constants_file)):
        # --base-lr over the file's beta: taken (another lr for the same setup is a choice), said as a tune file's
        # override is (a code review: silent here, refused by the Python API; session 63: both say it)
        rec = rec.model_copy(update={"warnings": [*rec.warnings, note]})
    if constants_file is not None and doc is None:  # a tune file, read once already
        from abcscale.usecases.tune import (
            beta_override_note,
            decay_override,
            epsilon_mode_note,
            load_constants,
            with_variant_notes,
        )

        tuned = load_constants(constants_file)
        if fit is not None and tuned.base_width != rec.base_width:  # its constants hold at its base width
            fail(f"--constants: {constants_file} was tuned at width {tuned.base_width}, the fit's base width is "
                 f"{rec.base_width}: give constants tuned at {rec.base_width}, or drop --fit")
        rec = with_variant_notes(rec, tuned)  # with --fit too: the file's epsilon is used
        if fit is None and (note := beta_override_note(tuned.beta, typed_beta, name="--base-lr",
                                                       path=constants_file)) is not None:
            rec = rec.model_copy(update={"warnings": [*rec.warnings, note]})  # its gammas go with its own beta
        # a --weight-decay over the file's tuned one, said as the Python API's weight_decay= says it (with --fit
        # too: the file's gammas, tuned with its decay, are used)
        _, decay_note = decay_override(tuned, typed, names=("--weight-decay", "--weight-decay-mode"),
                                       path=constants_file)
        if decay_note is not None:
            rec = rec.model_copy(update={"warnings": [*rec.warnings, decay_note]})
        # an --epsilon-mode other than the file's: taken (the tuned epsilon is the same number at the base width in
        # either mode), said with what it moves at this width (it was silent)
        if (eps_note := epsilon_mode_note(tuned, rec, typed, name="--epsilon-mode", path=constants_file)) is not None:
            rec = rec.model_copy(update={"warnings": [*rec.warnings, eps_note]})
    if fit is None:  # the analytic answer says a far width (a zero too many?); a constants file's path too
        from abcscale.usecases.recommend import far_width_note

        if (far := far_width_note(rec.width, rec.base_width)) is not None and far not in rec.warnings:
            rec = rec.model_copy(update={"warnings": [*rec.warnings, far]})
    failed = [f"--strict: unreliable: {why}" for why in rec.band.unreliable] if strict and rec.band else []
    if output is Format.json:
        # with --strict, a gate: its verdict as `check --json` gives it (ok, exit_code, failed) before the answer;
        # without it the JSON stays the REST answer
        emit_json({**verdict(failed), **to_jsonable(rec)} if strict else rec)
    elif output is Format.table:
        print_recommendation(rec)
    else:
        assert rec.groups is not None  # every answer of the use case carries its groups
        if output is Format.torch:  # a snippet that raises when run: said now, not in the user's training job
            from abcscale.usecases.snippets import check_torch_decay

            try:
                check_torch_decay(rec.groups)
            except ValueError as exc:
                why = str(exc).partition(": ")[2].replace("weight_decay_mode=coupled", "--weight-decay-mode coupled")
                fail(f"--format torch: {why} (--format optax writes it)")
        print(snippet(rec.groups, output.value, rec.warnings))
    if failed:  # the band's reasons, not its warnings' text
        for why in rec.band.unreliable if rec.band is not None else []:
            err_console.print(f"[bold red]--strict:[/] unreliable: {why}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


#: the fit's group columns that a flag of recommend selects
_GROUP_FLAGS = {"parameterization": "-p", "optimizer": "-o", "alignment": "-a", "lr_mode": "--lr-mode"}


def _group_said(exc: ValueError, group: str | None) -> str | None:
    """A fit's group-selection message (usecases.select_group) in the flags that made the selection (-p ntk, not
    {'parameterization': 'ntk'}; --group for what --group gave); None for any other message."""
    from abcscale.usecases.fits import selector_text
    from abcscale.usecases.recommend import SELECT_HINT, GroupSelectError, group_text, selector_from

    message = str(exc)
    if isinstance(exc, GroupSelectError) and exc.filters:
        by_group = selector_from(group) if group else {}  # it parsed once already: the selection came from it
        flags = [f"{_GROUP_FLAGS[k]} {v}" for k, v in exc.filters.items() if k in _GROUP_FLAGS and k not in by_group]
        rest = {k: v for k, v in exc.filters.items() if k not in _GROUP_FLAGS or k in by_group}
        said = " ".join(flags + ([f"--group {group_text(rest)}"] if rest else []))
        message = message.replace(selector_text(exc.filters), said, 1)
    if SELECT_HINT in message:
        return message.replace(SELECT_HINT, "select one with -p, -o, -a, --lr-mode or --group key=value,...")
    if message.startswith("group key "):  # only --group can name a key that is not a column (-p, -o... are)
        return "--group: key " + message.removeprefix("group key ")
    if message.startswith("group: "):  # --group's own text: not key=value pairs, not a JSON object
        return "--" + message
    if (hit := re.match(r"^(\w+): '(.*)' contradicts the group's (.*); give it once$", message)) \
            and hit.group(1) in _GROUP_FLAGS:
        return f"{_GROUP_FLAGS[hit.group(1)]} {hit.group(2)} contradicts --group's {hit.group(3)}; give it once"
    return None


def _unreliable_warnings(band: LrBand | None) -> set[str]:
    """The warnings that repeat the band's unreliable reasons (printed in bold); only a fit's band has them."""
    if band is None or not band.unreliable:
        return set()
    from abcscale.fitting.predict import UNRELIABLE  # loaded already: the band came from a fit

    return {UNRELIABLE + why for why in band.unreliable}


def band_method(band: LrBand) -> str:
    """What made the bands, in words: theory's prior on the exponent, or the fitted widths alone. One method makes
    every band of :func:`band_line` (the fit's level, 68% and 95%: one variance, the law's quantiles); the line
    names the fit's own level, the band its user asked for (it said 95% for a fit at 0.8, a review), and the fixed
    ones beside it."""
    span = band.prior_span
    level = 100 * band.ci.confidence_level
    fixed = [f"{x}%" for x in (68, 95) if not math.isclose(level, x)]
    head = (f"{level:g}% band" if math.isclose(level, 95) else
            f"{level:g}% band (the fit's level; the {' and '.join(fixed)} band{'s' if len(fixed) > 1 else ''} too)")
    if band.method == "theory_prior":
        centre = ("" if band.prior_exponent is None else f"centred on {band.prior_exponent:g}, " if span is None
                  else f"spread over {min(span):g} to {max(span):g}, full to no alignment, ")
        sd = "" if band.prior_sd is None else f"sd {band.prior_sd:g}"
        return f"{head} from theory prior on the exponent ({centre}{sd}) and the fitted widths"
    if band.method == "free":  # with a prior exponent: the data conflicted with theory's (the warnings say how)
        why = ("no theory prior" if band.prior_exponent is None else f"theory's {band.prior_exponent:g} not used"
               if span is None else f"theory's {min(span):g} to {max(span):g} not used")
        return f"{head} from a free exponent (the fitted widths alone, {why})"
    return f"{head}: method not recorded"


def _bare(path: Path) -> ConstantsDocument | None:
    """``--constants FILE`` as a hand-written constants file (gamma, init_scale, ...; no setup; width and beta
    beside them) or `abcscale mup import --json`'s document: None where it is neither (a tune file); a bad value in
    one is exit 2 naming the file and the field."""
    from abcscale.usecases.recommend import read_constants_document

    try:
        return read_constants_document(path)
    except ValueError as exc:
        fail(f"--constants: {python_limit(exc, path)}")
    except RecursionError:  # its parser's, on lists nested thousands deep: a traceback, exit 1 (a review)
        fail(f"--constants: {path}: {TOO_DEEP}")
    except MemoryError:  # a file that never ends, read whole under a memory limit
        fail(f"--constants: {path}: {OUT_OF_MEMORY}")


def _tuned(path: Path, doc: ConstantsDocument | None, flags: Constants, with_fit: bool,
           *given: Any) -> tuple[Constants, tuple[Any, ...]]:
    """``--constants FILE``: the file's constants (a constant flag with it is an error naming the flag) and the
    given -p, -o, -a, --base-width, --base-lr, --lr-mode with the file's values where not given (with --fit, only
    constants)."""
    from abcscale.usecases.tune import decay_override, file_constants, load_for_transfer, setting_name

    if doc is not None:  # a hand-written constants file, as REST's `constants` block (session 51), or mup import's
        bare = doc.constants
        both = [f for f in Constants.model_fields if f in flags.model_fields_set and f in bare.model_fields_set]
        if both:
            how = ""
            if doc.mup_import is not None and both[0] == "epsilon_mode":
                # mup import always wrote constant: the flag was a dead end, with no way to the per_layer rule
                # but a hand edit (a review, session 63)
                how = (f" (the import's is {bare.epsilon_mode.value}: for another, import again with `abcscale mup "
                       f"import ... --epsilon-mode {flags.epsilon_mode.value}`, or edit constants.epsilon_mode in "
                       "the file)")
            elif doc.mup_import is not None:
                how = " (import again with the value you want, or edit it in the file's constants)"
            fail(f"--{both[0].replace('_', '-')}: given by the flag and in --constants {path}; drop one{how}")
        if doc.base is not None:  # the base width and beta go to --base-width and --base-lr, not into the constants
            bare = Constants.model_validate(bare.model_dump(exclude={"width", "beta"}, exclude_unset=True))
        constants = bare.model_copy(update={k: getattr(flags, k) for k in flags.model_fields_set})
        return constants, given if with_fit else _base_given(path, doc, given)
    twice = [f for f in ("gamma", "init_scale", "multiplier", "epsilon") if f in flags.model_fields_set]
    if twice:
        fail(f"--{twice[0].replace('_', '-')}: the constants come from --constants {path}; drop one")
    try:
        tuned = load_for_transfer(path)
    except ValueError as exc:
        fail(f"--constants: {exc}")
    # the file's epsilon and weight-decay modes hold unless typed. A --weight-decay replaces the tuned one (said
    # after the answer, as the Python API says it); a --weight-decay-mode alone, other than the file's, is refused:
    # the tuned number is another decay in the other mode (it was taken in silence, ~300x per step; a review)
    try:
        update, _ = decay_override(tuned, flags, names=("--weight-decay", "--weight-decay-mode"), path=path)
    except ValueError as exc:
        fail(str(exc))
    if "epsilon_mode" in flags.model_fields_set:  # taken, said after the answer (usecases.tune.epsilon_mode_note)
        update["epsilon_mode"] = flags.epsilon_mode
    constants = file_constants(tuned).model_copy(update=update)
    file = (tuned.parameterization, tuned.optimizer, tuned.alignment, tuned.base_width, tuned.beta, tuned.lr_mode)
    # constants are tied to the setup and the base width they were tuned at: another one was silently used
    # (a file tuned at 16 with --base-width 32 doubled the hidden LR); a different --base-lr is a choice
    for flag, g, f in zip(("-p", "-o", "-a", "--base-width"), given[:4], file[:4], strict=True):
        if g is not None and setting_name(g) != setting_name(f):
            fail(f"{flag}: the constants in {path} were tuned for {setting_name(f)}, not {setting_name(g)}; drop "
                 f"{flag} (the file gives it) or tune for this setup")
    return constants, given if with_fit else tuple(f if g is None else g for g, f in zip(given, file, strict=True))


def _base_given(path: Path, doc: ConstantsDocument, given: tuple[Any, ...]) -> tuple[Any, ...]:
    """The given -p, -o, -a, --base-width, --base-lr, --lr-mode with what a hand-written constants file or `mup
    import`'s document says where not given, as a tune file's: its base width and beta (the base width must be
    its own: the constants hold there), and an import's -p mup and -o. A different --base-lr is a choice."""
    from abcscale.usecases.tune import setting_name

    p, o, a, base_width, base_lr, lr_mode = given
    if doc.mup_import is not None:  # microsoft/mup's setup of one optimizer, as muP constants
        setup = doc.mup_import.setup
        for flag, g, f in (("-p", p, doc.mup_import.recommend.parameterization), ("-o", o, setup.optimizer)):
            if g is not None and setting_name(g) != setting_name(f):
                fail(f"{flag}: the constants in {path} are microsoft/mup's {setup.optimizer.value} setup as "
                     f"{setting_name(doc.mup_import.recommend.parameterization)} (`abcscale mup import`), not "
                     f"{setting_name(g)}; drop {flag} (the file gives it) or import the setup you train")
        p = doc.mup_import.recommend.parameterization if p is None else p
        o = setup.optimizer if o is None else o
    if (base := doc.base) is not None:
        if base_width is not None and base_width != base.width:
            fail(f"--base-width: the constants in {path} hold at base width {base.width} (its width), not "
                 f"{base_width}; drop --base-width (the file gives it) or give constants for base width {base_width}")
        base_width = base.width
        base_lr = base.beta if base_lr is None else base_lr
    return p, o, a, base_width, base_lr, lr_mode


def _agrees_with_fit(path: Path, doc: ConstantsDocument, rec: Recommendation) -> None:
    """With --fit: a constants document's base width (the width its constants hold at) must be the fit's, as a tune
    file's must, and `mup import`'s setup the fit's group's (its constants are that optimizer's muP)."""
    from abcscale.usecases.tune import setting_name

    if (base := doc.base) is not None and base.width != rec.base_width:
        fail(f"--constants: {path} holds constants for base width {base.width} (its width), the fit's base width "
             f"is {rec.base_width}: give constants for {rec.base_width}, or drop --fit")
    if (imported := doc.mup_import) is not None:
        theirs = (setting_name(imported.recommend.parameterization), setting_name(imported.setup.optimizer))
        ours = (setting_name(rec.parameterization), setting_name(rec.optimizer))
        if theirs != ours:
            fail(f"--constants: {path} holds microsoft/mup's {theirs[1]} setup as {theirs[0]} constants (`abcscale "
                 f"mup import -o {theirs[1]}`); the fit's group is {ours[0]} + {ours[1]}: import the setup the "
                 "sweep ran, or select its group with -p and -o")


def band_line(band: LrBand | Prediction, noun: str = "width") -> str:
    """A fitted LR with its interval at the fit's level, the fixed 68% and 95% bands, the safe side and the
    expected loss penalty (``abcscale recommend --fit`` and ``abcscale fit --target-width`` print it)."""
    ci = band.ci
    level = 100 * ci.confidence_level
    own = "" if any(math.isclose(level, x) for x in (68, 95)) else f"{level:g}% [{ci.low:.4g}, {ci.high:.4g}]  "
    safe_penalty = band.safe_expected_loss_penalty
    safe = "" if safe_penalty is None else f" ({100 * safe_penalty:.3g}% at the safe side)"
    return (f"{band.lr:.4g}  {own}68% [{band.ci68[0]:.4g}, {band.ci68[1]:.4g}]  "
            f"95% [{band.ci95[0]:.4g}, {band.ci95[1]:.4g}]  safe-side {band.safe_lr:.4g}  "
            f"expected loss penalty {100 * band.expected_loss_penalty:.3g}%{safe}  "
            + _reach(band.extrapolation_factor, noun))


def _reach(factor: float, noun: str = "width") -> str:
    """Where the target sits against the fitted sizes (the factor is the target over the largest): below the
    largest it may still lie below the smallest too, which a warning says by the smallest, so no more is claimed."""
    return f"(extrapolation x{factor:.3g})" if factor > 1 else f"(x{factor:.3g} of the largest fitted {noun})"


def print_recommendation(rec: Recommendation) -> None:
    """The table of the answer's form (abc: per layer type with exponents, and the vector-like row; other forms:
    per role), the fitted LR band when there is one, the parameter-group notes and the warnings."""
    spec = rec.groups
    if spec is None or spec.form is Form.abc:
        console.print(_abc_table(rec))
    else:
        console.print(_groups_table(rec, spec))
    if rec.band is not None and rec.lr_mode is LrMode.global_:
        # a global sweep's fitted LR is every layer's at the target width; beta is that LR carried back to the base
        # width by theory's c, what --base-lr with --base-width takes for the same LRs (it was the target's: 32x off)
        console.print(f"fitted global LR at width {rec.width}: {band_line(rec.band)}", highlight=False)
        # the same alignment and constants too: the hint alone gave a carried gamma 0.5's readout 2x (a code review)
        al = rec.alignment.name
        console.print(f"beta {rec.beta:.4g}: that LR at the base width {rec.base_width} under theory's c = "
                      f"{rec.global_c:g} (--base-width {rec.base_width} --base-lr {rec.beta:.4g} --lr-mode global"
                      + ("" if al == "full" else f" -a {al}") + ", or a check config's base_width and beta"
                      + ("" if al == "full" else f" and alignment {al}") + ", with the constants this answer used "
                      "(the warnings say those it carried from the fit's runs), give these LRs)", highlight=False)
        console.print(_beta_spread(rec, spec).replace("from that beta", "from that LR", 1), highlight=False)
        console.print(band_method(rec.band), highlight=False)
    elif rec.band is not None:  # the fitted LR is beta, the base LR: each layer's LR is beta times its factors
        console.print(f"fitted swept LR beta at width {rec.width}: {band_line(rec.band)}", highlight=False)
        console.print(_beta_spread(rec, spec), highlight=False)
        console.print(band_method(rec.band), highlight=False)
    for line in [] if spec is None else group_notes(spec, rec.lr_mode is LrMode.global_):
        console.print(line, highlight=False)
    bad = _unreliable_warnings(rec.band)
    for w in dict.fromkeys([*rec.warnings, *(spec.warnings if spec is not None else [])]):
        bold = w in bad
        console.print(f"[bold red]warning: {w}[/]" if bold else f"[yellow]warning:[/] {w}", highlight=False)


def _beta_spread(rec: Recommendation, spec: GroupSpec | None) -> str:
    """The fitted beta spread over the layers, in the table's form. It was always the abc form's (``layers``, and
    ``band.layer_lrs`` in --json), under a mup-form table whose MuAdam lrs differ (a review: embedding 0.0002605
    beside the table's 0.002084, a number a mup user would copy)."""
    if spec is None or spec.form is Form.abc:
        return "per-layer LRs from that beta: " + ", ".join(f"{s.layer.value} {s.lr:.4g}" for s in rec.layers)
    roles = [s for s in spec.roles if s.role in (Role.embedding, Role.hidden, Role.readout)]
    abc = "--json's layers and band.layer_lrs are the abc form's"
    if spec.form is Form.mup and all(s.mup_lr is not None for s in roles):
        mu = mup_wrapper(spec.optimizer)
        return (f"per-group {mu} lrs from that beta (mup form, the table's {mu} lr): "
                + ", ".join(f"{s.role.value} {s.mup_lr:.4g}" for s in roles) + f" ({abc})")
    return (f"per-group LRs from that beta ({spec.form.value} form, the table's learning rate): "
            + ", ".join(f"{s.role.value} {s.lr:.4g}" for s in roles) + f" ({abc})")


def _title(rec: Recommendation, form: Form) -> str:
    return (f"{rec.parameterization} + {rec.optimizer.value}, {rec.lr_mode.value} LR, alignment "
            f"{rec.alignment.name}: width {rec.base_width} -> {rec.width} (source: {rec.source}, form {form.value})")


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _abc_table(rec: Recommendation) -> Table:
    """Per layer type with its exponents, and the vector-like role (a = b = 0, c_v = c_e + k a_e) under them."""
    from abcscale import theory

    t = Table(title=_title(rec, Form.abc))
    decay = rec.weight_decay_mode is not None  # a column only for an optimizer with decoupled decay (AdamW)
    for col in ("layer", "a", "b", "c", "multiplier", "init std", "learning rate", "epsilon",
                *([f"weight decay ({rec.weight_decay_mode})"] if decay else [])):
        t.add_column(col, justify="right" if col != "layer" else "left")
    for s in rec.layers:
        e = rec.exponents[s.layer.value]
        t.add_row(s.layer.value, frac(e.a), frac(e.b), frac(e.c), f"{s.multiplier:.4g}", f"{s.init_std:.4g}",
                  f"{s.lr:.4g}", _g(s.epsilon, 3), *([_g(s.weight_decay)] if decay else []))
    if rec.groups is not None:
        v, e = rec.groups[Role.vector], rec.exponents["embedding"]
        k_e = theory.layer_rules(rec.optimizer)[Layer.embedding].k  # vectors train like the embedding
        c_v = e.c + (0.0 if rec.lr_mode is LrMode.global_ else k_e * e.a)
        t.add_row("vector", "0", "-", frac(c_v), _g(v.multiplier), "keep", f"{v.lr:.4g}", _g(v.epsilon, 3),
                  *([_g(v.weight_decay)] if decay else []))
        # no width-sized axis (the readout's bias): the vector row's numbers at the base width, at every width
        f = rec.groups[Role.fixed]
        c_f = e.c if rec.lr_mode is LrMode.global_ else 0.0
        t.add_row("fixed", "0", "-", frac(c_f), _g(f.multiplier), "keep", f"{f.lr:.4g}", _g(f.epsilon, 3),
                  *([_g(f.weight_decay)] if decay else []))
    return t


def _groups_table(rec: Recommendation, spec: GroupSpec) -> Table:
    """One row per role in a multiplier-free or mup form: what to set on each parameter group."""
    t = Table(title=_title(rec, spec.form))
    decay = spec.weight_decay_mode is not None
    mup = spec.form is Form.mup
    given_decay = spec.mup.weight_decay if spec.mup is not None and spec.mup.weight_decay is not None else None
    mixed = len({s.optimizer for s in spec.roles}) > 1  # e.g. Muon: muon on hidden matrices, adamw elsewhere
    cols = ["role", *(["optimizer"] * mixed), "init std", "learning rate", "epsilon",
            *([f"weight decay ({spec.weight_decay_mode})"] * decay),
            *(["multiplier", f"{mup_wrapper(spec.optimizer)} lr", "mup.init std (base)"] if mup else []),
            *([f"{mup_wrapper(spec.optimizer)} weight decay"] if given_decay else [])]
    base_std = spec.mup.init_std if spec.mup is not None else {}
    for col in cols:
        t.add_column(col, justify="right" if col != "role" else "left")
    for s in spec.roles:
        std = "keep" if s.init_std is None else f"{s.init_std:.4g}" + (
            f" x r^-{frac(s.init_exponent)}" if s.role is Role.hidden and s.init_exponent else "")
        t.add_row(s.role.value, *([s.optimizer or ""] * mixed), std, f"{s.lr:.4g}", _g(s.epsilon, 3),
                  *([_g(s.weight_decay)] * decay),
                  # a hidden matrix of fan-in r x width takes the hidden std x r^-1/2, as init_ draws it (one number
                  # read as every hidden matrix's: 2x init_'s on an MLP's 4D -> D projection, session 63)
                  *([_g(s.multiplier), _g(s.mup_lr), "keep" if s.role not in base_std else
                     f"{base_std[s.role]:.4g}" + (" x r^-1/2" if s.role is Role.hidden else "")] if mup else []),
                  # the readout's bias sits in the vector group unless the setup gives it its own
                  *([_g(given_decay.get(s.role, given_decay.get(Role.vector)))] if given_decay else []))
    return t


def group_notes(spec: GroupSpec, global_lr: bool = False) -> list[str]:
    """What the groups table leaves implicit: the fan-in rule, what vector-like means, microsoft/mup's inputs."""
    b = spec["hidden"].init_exponent
    notes = ["vector: biases and LayerNorm/RMSNorm gains (no multiplier; keep their init: gains 1, biases 0)",
             "fixed: the readout's bias and scalars (no width-sized axis): the vector row's base-width numbers at "
             "every width" if not global_lr else "fixed: the readout's bias and scalars (no width-sized axis): the one "
             "global LR, as every row, and the vector row's base-width epsilon at every width" if spec.form is Form.abc
             else "fixed: the readout's bias and scalars (no width-sized axis): the one global LR as the abc form "
             "writes it (the vector row's; this form folds each matrix's multiplier into its LR, so the rows differ), "
             "and the vector row's base-width epsilon at every width"]
    if b:
        notes.append(f"hidden: a matrix whose fan-in is r times the width (an MLP's 4D->D projection: r = 4) takes "
                     f"init std x r^-{frac(b)}")
    floors = [s for s in spec.roles if s.param_scale_floor is not None and s.param_scale_floor != 1e-3]
    if floors:
        notes.append("adafactor scales a step by max(rms(W), floor), floor 1e-3 by default; in this form give "
                     + ", ".join(f"{s.role.value} {s.param_scale_floor:.4g}" for s in floors)
                     + " (optax.scale_by_param_block_rms(min_scale), torch.optim.Adafactor(eps=(1e-15, floor)); "
                     "abcscale.optax and abcscale.torch set it)")
    if spec.mup is not None:
        m = spec.mup
        notes.append(f"microsoft/mup: set_base_shapes at base width {m.base_width}, "
                     f"{mup_wrapper(spec.optimizer, long=True)} with each group's lr"
                     f"{' and weight decay' if m.weight_decay is not None else ''} above, "
                     f"MuReadout(output_mult={m.output_mult:g}), mup.init with each group's base-width std (the "
                     "init std column is the target width's, what a model without mup sets; a hidden matrix of "
                     "fan-in r x width takes the hidden one x r^-1/2, spec.mup.init_std[group['name']])"
                     + ("" if not m.epsilon else f"; each group's epsilon above as its eps ("
                                                  f"{mup_wrapper(spec.optimizer)} passes it on unscaled)"))
    return notes
