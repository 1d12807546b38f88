"""Fit a sweep table: optimum per width, the across-width law, theory verdict, constants, loss law.

``fit_table`` is what the CLI (``abcscale fit``) and the service call; it is deterministic for a seed
and returns a :class:`schemas.fit.FitResult` with no NaN or inf anywhere (None instead). It is
``prepare`` (validate, then split into typed groups) followed by one fit per group; the plots
(:func:`fitting.plots.write_plots`) draw from the same :class:`Prepared` table.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abcscale._version import version
from abcscale.fitting.group import NO_THEORY, fit_groups, theory_for_group
from abcscale.fitting.joint import best_losses, fit_joint, group_curves, predict_joint
from abcscale.fitting.losslaw import fit_loss_surface
from abcscale.fitting.parts import Settings, in_size_words
from abcscale.fitting.predict import UNRELIABLE, mixed_reason
from abcscale.fitting.reading import read_table
from abcscale.fitting.table import BLOWUP_FACTOR, Prepared, TableError, prepare
from abcscale.schemas.fit import ColumnMapping, FitResult, GroupFit, JointLaw, LossSurface, Provenance, value_text
from abcscale.schemas.theory import Alignment

__all__ = ["read_table", "prepare", "fit_table", "fit_file", "TableError", "theory_for_group"]

#: half-width of the local fit's window around the grid argmin, in octaves.
WINDOW_OCTAVES = 1.0
#: the joint loss law needs at least this many (size, D) points (fitting.losslaw.fit_loss_surface).
_SURFACE_POINTS = 5


def _settings(target_width: int | None, alignment: str | None, base_width: int | None, n_boot: int,
              confidence_level: float) -> Settings:
    """The checked settings; a ValueError names the first bad one."""
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level: must be in (0, 1), got {confidence_level}")
    if n_boot < 20:
        raise ValueError(f"n_boot: must be >= 20, got {n_boot}")
    for name, v in (("target_width", target_width), ("base_width", base_width)):
        if v is not None and (not isinstance(v, int | np.integer) or v <= 0):
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if alignment is not None:
        Alignment.parse(alignment)
    return Settings(n_boot=n_boot, confidence_level=confidence_level, window=WINDOW_OCTAVES,
                    target_width=None if target_width is None else int(target_width), alignment=alignment,
                    base_width=None if base_width is None else int(base_width))


def _fit(prep: Prepared, s: Settings, seed: int, blowup: float | None,
         at: dict[str, float] | None = None, drop_cut_short: bool = False) -> FitResult:
    covariates = prep.covariates
    s = dataclasses.replace(s, size_kind=prep.mapping.size_kind)
    # with covariates each group is one curve per size; the prediction is the joint law's, not the curves'
    per = dataclasses.replace(s, target_width=None) if covariates else s
    # each group draws from its own stream, so adding a group never changes another's intervals; the band's
    # priors widen when the table's own groups scatter more than the defaults allow (fitting.group.learn_priors)
    groups, prior_notes = fit_groups(list(prep.groups), per, seed)
    if prep.mapping.size_kind == "params":
        groups = [_in_size_words(g) for g in groups]
    joint: list[JointLaw] = []
    joint_notes: list[str] = []
    if covariates:
        groups = [g.model_copy(update={"warnings": [w for w in g.warnings if not _coverage(w)]}) for g in groups]
        joint, joint_notes = _joint(groups, prep, s, seed, at or {})
    prov = Provenance(
        input_hash=prep.input_hash, n_rows=prep.n_rows, n_rows_used=prep.n_rows - prep.n_diverged - prep.n_left_out,
        n_diverged=prep.n_diverged, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        abcscale_version=version(),
        settings={"target_width": s.target_width, "alignment": s.alignment, "base_width": s.base_width,
                  "n_boot": s.n_boot, "seed": seed, "confidence_level": s.confidence_level,
                  "window_octaves": WINDOW_OCTAVES, "group_cols": list(prep.group_cols),
                  "constant_cols": list(prep.constant_cols), "loss_col": prep.mapping.loss_col,
                  "blowup_factor": blowup, "covariates": list(covariates), "size_kind": prep.mapping.size_kind,
                  "at": at or None, "prior_sd": s.prior_sd, "tau_scale": s.tau_scale,
                  "drop_cut_short": drop_cut_short},
    )
    groups, table_notes = _said_once(groups, every=bool(covariates))
    return FitResult(groups=groups, provenance=prov, mapping=prep.mapping,
                     warnings=[*prep.warnings, *prior_notes, *joint_notes, *table_notes], joint=joint)


def _in_size_words(g: GroupFit) -> GroupFit:
    """A group's messages for a size counted in parameters: 'size' where they say 'width' (option names such
    as `target_width` are left alone)."""
    said = in_size_words
    per = [o.model_copy(update={"message": said([o.message])[0]}) if o.message else o for o in g.per_width]
    pred = None if g.prediction is None else g.prediction.model_copy(update={"warnings": said(g.prediction.warnings)})
    return g.model_copy(update={"warnings": said(g.warnings), "per_width": per, "prediction": pred})


def _coverage(w: str) -> bool:
    """A per-group note on how many widths it has: with covariates a group is one curve per size by design."""
    return (w.startswith(("one width (", "fewer than 2 widths", "one size (", "fewer than 2 sizes",
                          "2 widths: no residual", "2 sizes: no residual", "the widths span ", "the sizes span "))
            or " widths swept; " in w or " sizes swept; " in w)


def _joint(groups: list[GroupFit], prep: Prepared, s: Settings, seed: int,
           at: dict[str, float]) -> tuple[list[JointLaw], list[str]]:
    """One joint law per group key over its curve optima, with the prediction at the target and the joint
    loss law over the size and the first covariate (the data axis, D); and why a group has none."""
    m = prep.mapping
    out, missing = [], []
    for i, (key, curves, n_bad) in enumerate(group_curves(groups, prep.covariates)):
        law, notes = fit_joint(key, curves, prep.covariates, size_col=m.size_col, size_kind=m.size_kind,
                               base_size=s.base_width, level=s.confidence_level, n_unidentified=n_bad)
        if law is None:
            label = ", ".join(f"{k}={value_text(v)}" for k, v in key.items()) or "all rows"
            missing.append(f"{NO_JOINT_LAW}{label}: " + "; ".join(notes))
            continue
        rng = np.random.default_rng([seed, 2**31, i])  # a stream apart from the groups' (2**31: no group index)
        surface, surface_notes = _loss_surface(groups, key, prep.covariates[0], s, rng, m.size_col)
        update: dict[str, Any] = {"loss_surface": surface, "notes": [*notes, *surface_notes]}
        if s.target_width is not None and (dropped := [k for k in at if k not in law.names[1:]]):
            # the law kept no exponent for an axis the prediction names (its curves there had no optimum, or one
            # value was left): say so and keep the fit, rather than lose the whole of it to a ValueError
            update["notes"].append(f"{NO_JOINT_PREDICTION}{', '.join(dropped)} (at) has no exponent in this law, "
                                   f"which was fitted across {', '.join(law.names)} only (the notes say why): "
                                   "no LR to give there; sweep that axis where the optimum is bracketed")
        elif s.target_width is not None:
            update["prediction"] = pred = predict_joint(law, s.target_width, at)
            # the groups' runs of two configurations fitted as one are the law's too: its prediction passed
            # --strict where each group's was unreliable (a review: batch_size left out of the covariates)
            mixed = sorted({c for g in groups for c in g.mixed_columns
                            if all(g.group.get(k) == v for k, v in key.items())})
            if mixed:
                why = mixed_reason(mixed)
                update["prediction"] = pred.model_copy(update={"warnings": [*pred.warnings, f"{UNRELIABLE}{why}"],
                                                               "unreliable": [*pred.unreliable, why]})
        out.append(law.model_copy(update=update))
    return out, missing


#: how a joint law's note begins when the target's prediction could not be made (``--strict`` refuses it)
NO_JOINT_PREDICTION = "no prediction at the target: "
#: how the table's warning begins for a group key whose curves gave no joint law (``--strict`` refuses it too)
NO_JOINT_LAW = "no joint law for "


def _loss_surface(groups: list[GroupFit], key: dict[str, Any], d_name: str, s: Settings,
                  rng: np.random.Generator, size_name: str = "size") -> tuple[LossSurface | None, list[str]]:
    """L(N, D) = E + A N^-alpha + B D^-beta over each (size, D)'s best loss (D: the first covariate), kept
    only when identified (else a note)."""
    size, d, loss = best_losses(groups, key, d_name)
    if np.unique(size).size < 2 or np.unique(d).size < 2:
        return None, []
    if size.size < _SURFACE_POINTS:
        return None, [f"joint loss law L(N, {d_name}) not fitted: {size.size} ({size_name}, {d_name}) points, it needs "
                      f"{_SURFACE_POINTS}"]
    try:
        surface = fit_loss_surface(size, d, loss, n_boot=s.n_boot, rng=rng, confidence_level=s.confidence_level,
                                   axes=(size_name, d_name))
    except ValueError as exc:  # e.g. a loss column with values <= 0: no power law to fit
        return None, [f"joint loss law L(N, {d_name}) not fitted: {exc}"]
    if not surface.identified:
        why = "; ".join(surface.notes) or "the data do not pin it"
        return None, [f"joint loss law L(N, {d_name}) not identified ({why}): not reported"]
    return surface, []


def _said_once(groups: list[GroupFit], every: bool = False) -> tuple[list[GroupFit], list[str]]:
    """The theory warning every group gives alike (the table has no theory columns) is the table's: said once
    in the result's warnings, not once per group (64 groups would repeat it 64 times). With ``every`` (a
    covariate table: its groups are curves) any warning all groups share is said once."""
    if len(groups) < 2:
        return groups, []
    common = [w for w in groups[0].warnings if (every or w.startswith(NO_THEORY))
              and all(w in g.warnings for g in groups)]
    if not common:
        return groups, []
    return [g.model_copy(update={"warnings": [w for w in g.warnings if w not in common]}) for g in groups], common


def fit_table(
    df: pd.DataFrame,
    mapping: ColumnMapping | None = None,
    *,
    target_width: int | None = None,
    alignment: str | None = None,
    base_width: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
    blowup: float | None = BLOWUP_FACTOR,
    at: dict[str, float] | None = None,
    drop_cut_short: bool = False,
) -> FitResult:
    """Fit every group of a sweep table; raises TableError listing every problem with the input.

    Every interval in the result is at ``confidence_level`` and says so (``Interval.confidence_level``),
    as does the theory verdict ``consistent``; the prediction's ``ci68``/``ci95`` bands are fixed. The loss
    is the held-out ``eval_loss`` where the table has it unless ``mapping`` names one (``result.mapping``
    says which); ``blowup`` and ``drop_cut_short`` are :func:`prepare`'s.

    With ``mapping.covariates`` each group is split into curves (one per covariate combination) and
    ``result.joint`` holds one law per group across them (:mod:`fitting.joint`); ``target_width`` is then the
    target size and ``at`` the covariate values to predict at (those left out sit at their bases).
    """
    s = _settings(target_width, alignment, base_width, n_boot, confidence_level)
    covs = (mapping.covariates if mapping is not None else None) or []
    if at and (bad := [k for k in at if k not in covs]):
        raise ValueError(f"at: {', '.join(bad)} is not a covariate (covariates: {', '.join(covs) or 'none'})")
    if at and target_width is None:
        raise ValueError("at: needs a target size (target_width) to predict at")
    return _fit(prepare(df, mapping, blowup=blowup, drop_cut_short=drop_cut_short), s, seed, blowup, at,
                drop_cut_short)


def fit_file(path: str | Path, mapping: ColumnMapping | None = None, **kwargs: Any) -> FitResult:
    """``read_table`` then ``fit_table``."""
    return fit_table(read_table(path), mapping, **kwargs)
