"""The parameter-group spec as optax code for any JAX parameter tree (needs the ``runner`` extra: JAX, optax).

::

    from abcscale import optax as abcoptax
    params = abcoptax.init(spec, params, jax.random.key(0))     # init stds of the spec, gains/biases kept
    tx = abcoptax.transform(spec, params)                        # optax.GradientTransformation, LR per role
    abcoptax.labels(spec, params)                                # the role of each leaf, to check the rules

Each function also takes a constants file from ``abcscale tune`` (its path or ``TunedConstants``), or ``abcscale mup
import --json``'s document (its path, or ``abcscale.from_mup(...)``'s answer), in place of the spec, with the target
``width`` (and ``form``, default ``multiplier_free``): the file's groups at that width, as
``abcscale.recommend(constants=FILE, width=..., form=...).groups``::

    tx = abcoptax.transform("tuned.json", params, width=1024)

``schedule(steps, warmup)`` is the sweep's own LR multiplier (warmup, then cosine), to train as a runner run did::

    tx = abcoptax.transform(spec, params, schedule=abcoptax.schedule(10_000, warmup=0.1))

The code lives in :mod:`abcscale.runner.export` (JAX is confined to the runner layer); this module only names it
and reads the file.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from abcscale.runner import export
except ImportError as exc:  # a bare "No module named 'optax'" said nothing of the extra (abcscale.sweep says it)
    if (exc.name or "").split(".")[0] not in ("jax", "jaxlib", "optax"):
        raise
    raise ImportError(f"abcscale.optax needs the runner extra (JAX, optax): pip install 'abcscale[runner]' "
                      f"({exc.name} is missing)") from exc
from abcscale.schemas.api import MupImport
from abcscale.schemas.groups import Form, GroupSpec, Role
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.tune import TunedConstants
from abcscale.theory.groups import DEFAULT_RULES, unmatched_note, unmatched_rules
from abcscale.usecases.mup import export_spec, wide_fan_in_note
from abcscale.usecases.recommend import parse_rules

#: a parameter-group spec, or a constants file (path or model: a tune file, `mup import`'s document, from_mup's
#: answer) to take one from at a given width
SpecLike = GroupSpec | Recommendation | TunedConstants | MupImport | str | Path


def transform(spec: SpecLike, params: Any, *, width: int | None = None, form: Form | str | None = None,
              **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.transform` (``schedule``, ``b1``, ``b2``, ``momentum``, ``muon_beta``,
    ``rules``, ``layout``, ``fan_in``) for a spec or a constants file at ``width``.

    ``schedule(step)`` multiplies every role's LR, so it is a multiplier, 1 at its peak: an optax LR schedule
    (peak = an LR) divided by its peak, e.g. ``optax.warmup_cosine_decay_schedule(0.0, 1.0, 1000, 100_000)``; one
    whose largest value is far from 1 is warned of. :func:`schedule` is the sweep's own, to train as a runner run
    did."""
    _check_schedule(kwargs.get("schedule"))
    return _run(export.transform, _applied(spec, width, form, 'transform'), params, **kwargs)


def init(spec: SpecLike, params: Any, key: Any, *, width: int | None = None,
         form: Form | str | None = None, **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.init` (``rules``, ``layout``, ``fan_in``) for a spec or a constants file at
    ``width``.
    ``key`` is a JAX PRNG key (``jax.random.key(0)``)."""
    resolved, imported = _resolved(spec, width, form)
    _warn_unapplied(resolved, form, "abcoptax.init")
    out = _run(export.init, resolved, params, key, **kwargs)
    _warn_wide_fan_in(imported, resolved, params, "abcoptax.init", kwargs)
    return out


def labels(spec: SpecLike, params: Any, *, width: int | None = None, form: Form | str | None = None,
           **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.labels`: each leaf's role."""
    return _run(export.labels, _spec(spec, width, form), params, **kwargs)


def lr_tree(spec: SpecLike, params: Any, *, width: int | None = None, form: Form | str | None = None,
            **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.lr_tree`: each leaf's LR."""
    return _run(export.lr_tree, _applied(spec, width, form, 'lr_tree'), params, **kwargs)


def init_std_tree(spec: SpecLike, params: Any, *, width: int | None = None,
                  form: Form | str | None = None, **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.init_std_tree`: each leaf's init std."""
    resolved, imported = _resolved(spec, width, form)
    _warn_unapplied(resolved, form, "abcoptax.init_std_tree")
    out = _run(export.init_std_tree, resolved, params, **kwargs)
    _warn_wide_fan_in(imported, resolved, params, "abcoptax.init_std_tree", kwargs)
    return out


def multiplier_tree(spec: SpecLike, params: Any, *, width: int | None = None, form: Form | str | None = None,
                    **kwargs: Any) -> Any:
    """:func:`abcscale.runner.export.multiplier_tree`: each leaf's forward multiplier (1.0 where none)."""
    return _run(export.multiplier_tree, _spec(spec, width, form), params, **kwargs)


def schedule(steps: int, warmup: float = 0.1, kind: str = "cosine") -> Any:
    """The LR multiplier ``abcscale sweep``, ``coord-check`` and ``tune`` train with (``runner.optim.schedule``), as
    ``transform(..., schedule=)`` takes it: ``n = round(warmup * steps)`` steps of linear warmup from 1 / (n + 1)
    (step 0 trains at 1 / (n + 1), not 0), then a cosine decay to 0 over the other ``steps - n`` (``kind="cosine"``)
    or 1 (``"constant"``). With a warmup it is ``optax.warmup_cosine_decay_schedule(1 / (n + 1), 1.0, n, steps)``;
    the ``(0.0, 1.0, n, steps)`` one trains its first steps at 0, 1/n, ... (a user review: 0.25 apart in loss from
    a runner run at step 1). ``steps`` and ``warmup`` are the sweep's ``--steps`` and ``--warmup`` (spec fields
    ``steps``, ``warmup``), ``kind`` its ``schedule``."""
    if kind not in ("cosine", "constant"):
        raise ValueError(f"kind: cosine or constant (the sweep's schedule), got {kind!r}")
    # a NumPy integer too (results.parquet's steps and warmup columns are NumPy scalars: a code review)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps: a positive integer, got {steps!r}")
    if steps > 2**31 - 1:  # optax's step counter is int32: 10**12 built and overflowed when called (a review)
        raise ValueError(f"steps: at most 2**31 - 1 (optax counts steps in int32), got {steps!r}")
    steps = operator.index(steps)
    try:  # a string or None was a bare TypeError from the comparison
        fraction = float(warmup)
    except (TypeError, ValueError):
        fraction = math.nan
    if isinstance(warmup, (str, bytes)) or not 0 <= fraction < 1:
        raise ValueError(f"warmup: the warmup's fraction of the steps, in [0, 1), got {warmup!r}")
    warmup = fraction
    from abcscale.runner.optim import schedule as runner_schedule

    return runner_schedule(kind, steps, warmup)


#: the steps a schedule is sampled at, and the range its largest value may fall in before it is warned of
_SCHEDULE_STEPS = (0, 1, 10, 100, 1_000, 10_000, 100_000)
_SCHEDULE_PEAK = (0.1, 10.0)


def _check_schedule(schedule: Any) -> None:
    """Warn when ``schedule`` looks like an LR schedule, not a multiplier: its peak is an LR (3e-3), which every
    role's LR would be multiplied by, all of them ~300x too small in silence (a review)."""
    if not callable(schedule):
        return  # None, or export.transform's error
    try:
        peak = max(float(schedule(step)) for step in _SCHEDULE_STEPS)
    except Exception:  # a schedule that cannot be sampled outside a trace is trained with as given, unchecked
        return
    if math.isfinite(peak) and not _SCHEDULE_PEAK[0] <= peak <= _SCHEDULE_PEAK[1]:
        warnings.warn(f"schedule: its largest value over steps 0 to {_SCHEDULE_STEPS[-1]} is {peak:.3g}, and it "
                      "multiplies every role's LR (a multiplier, 1 at its peak); for an LR schedule, divide it by "
                      f"its peak (schedule=lambda step: lr_schedule(step) / {peak:.3g})", UserWarning, stacklevel=3)


def _spec(spec: SpecLike, width: int | None, form: Form | str | None) -> GroupSpec:
    return _resolved(spec, width, form)[0]


def _resolved(spec: SpecLike, width: int | None, form: Form | str | None) -> tuple[GroupSpec, MupImport | None]:
    """The spec, and the `abcscale mup import --json` document it was read from, if it was: the constants files
    ``recommend --constants`` takes (:func:`abcscale.usecases.mup.export_spec`)."""
    return export_spec(spec, width=width, form=form)


def _warn_wide_fan_in(imported: MupImport | None, spec: GroupSpec, params: Any, call: str,
                      kwargs: dict[str, Any]) -> None:
    """Where the spec is `mup import`'s: the hidden leaves of another fan-in than the width, drawn at its hidden
    std x r^-1/2 (:func:`abcscale.usecases.mup.wide_fan_in_note`)."""
    hidden = spec[Role.hidden].init_std
    if imported is None or hidden is None:
        return
    with warnings.catch_warnings():  # the leaves again: what they had to say was said by the call itself
        warnings.simplefilter("ignore")
        leaves, _ = export._leaves(spec, params, _kw(kwargs).get("rules"), kwargs.get("layout", "jax"),
                                   kwargs.get("fan_in"))
    wide = {name: (hidden / std) ** 2 for name, _, role, std in leaves
            if role is Role.hidden and std is not None and not math.isclose(std, hidden, rel_tol=1e-9)}
    if note := wide_fan_in_note(imported, spec, wide, call):
        export._warn(note)


def _applied(spec: SpecLike, width: int | None, form: Form | str | None, where: str) -> GroupSpec:
    """The spec, warning when an abc- or mup-form one sets numbers that assume multipliers the caller did not say it
    applies (:func:`_warn_unapplied`)."""
    resolved = _spec(spec, width, form)
    _warn_unapplied(resolved, form, f"abcoptax.{where}")
    return resolved


def _warn_unapplied(spec: GroupSpec, form: Form | str | None, where: str) -> None:
    """:func:`abcscale.usecases.tune.warn_unapplied_multipliers` in this export's words: the multipliers per leaf
    are ``abcoptax.multiplier_tree``'s, and a JAX model's apply function multiplies the mup form's readout itself.
    The shared warning named ``abctorch.multipliers`` and microsoft/mup's ``MuReadout`` (PyTorch's) to a JAX user,
    at abcscale's own line (a review, session 63)."""
    if form is not None or spec.form is Form.multiplier_free:
        return
    scaled = {s.role.value: s.multiplier for s in spec.roles if s.multiplier not in (None, 1.0)}
    if not scaled:
        return
    said = ", ".join(f"{role} {m:.4g}" for role, m in scaled.items())
    how = ("" if spec.form is Form.abc else " (the readout's is microsoft/mup's MuReadout's output_mult / width_mult: "
           "your apply function multiplies the logits by it)")
    export._warn(f"{where}: the spec is in the {spec.form.value} form, whose LRs and init stds assume the forward "
                 f"multiplies each layer's output by its multiplier ({said}: spec[role].multiplier; "
                 f"abcoptax.multiplier_tree gives them per leaf){how}. For a model without multipliers recommend "
                 f"with form='multiplier_free'; form='{spec.form.value}' here says the forward applies them")


def _run(fn: Callable[..., Any], spec: GroupSpec, params: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(spec, params, *args, **kwargs)``, saying the rules of the caller's that match no leaf: the spec's own
    (``recommend(rules=...)``) as the export says the call's, and both in an error that asks for a rule (a typo
    was silent there, and the error said only "no rule names its role": a review)."""
    kwargs = _kw(kwargs)
    given = list(kwargs.get("rules") or [])
    own = [r for r in dict.fromkeys(spec.rules) if r not in DEFAULT_RULES and r not in given]
    # the leaves as the export names them, through its own jax (JAX is imported in the runner layer only)
    names = export._leaf_names([path for path, _ in export.jax.tree_util.tree_flatten_with_path(params)[0]])
    if note := unmatched_note(names, own, "leaf"):
        warnings.warn(note, stacklevel=3)
    try:
        return fn(spec, params, *args, **kwargs)
    except ValueError as exc:
        if "rule" not in str(exc) or not (missed := unmatched_rules(names, [*given, *own])):
            raise
        raise ValueError(f"{exc}; your rules {', '.join(repr(r.pattern) for r in missed)} matched no leaf: is one "
                         "of them misspelt?") from None


def _kw(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``rules`` in any form ``recommend(rules=...)`` takes (GroupRules, ``{pattern, role}`` dicts, ``(pattern,
    role)`` pairs, a ``{pattern: role}`` mapping), as GroupRules."""
    return kwargs | {"rules": list(parse_rules(kwargs["rules"]))} if kwargs.get("rules") is not None else kwargs


__all__ = ["SpecLike", "init", "init_std_tree", "labels", "lr_tree", "multiplier_tree", "schedule", "transform"]
