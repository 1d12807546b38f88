"""The transfer checks of a tuned constants file: do the constants found at the base width still win at larger
widths (:func:`verify`, a paired LR sweep with tuned vs starting constants), and does the fitter's
constants-consistency test see their optimum drift with width (:func:`verify_constants`)?

Split from :mod:`abcscale.usecases.tune` (the search and the file); both train through the runner, imported lazily
so the service and ``import abcscale`` stay free of JAX.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abcscale.schemas.enums import LrMode
from abcscale.schemas.theory import MAX_WIDTH, PerLayer
from abcscale.schemas.tune import ConstantsCheck, TransferCheck, TunedConstants
from abcscale.usecases.tune import same_inputs


def parse_widths(text: str, base: int) -> list[int]:
    """``"2x,4x"`` (multiples of the base width) and/or ``"64,128"`` -> widths above ``base``, in order given."""
    widths = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        try:
            width = base * float(item[:-1]) if item.lower().endswith("x") else float(item)
        except ValueError:
            raise ValueError(f"verify_widths: expected widths like 2x,4x or 64,128, got {item!r}") from None
        if not math.isfinite(width) or width != int(width) or width <= base:
            raise ValueError(f"verify_widths: {item} is not a whole width above the base width {base}")
        if width > MAX_WIDTH:
            raise ValueError(f"verify_widths: {item} is above the largest width, {MAX_WIDTH} (2**40)")
        widths.append(int(width))
    if not widths:
        raise ValueError("verify_widths: no width given")
    return widths


def check_widths(training: dict[str, Any], base: int, widths: list[int]) -> None:
    """Refuse, before any training, a verify width the sweep would refuse (``head_dim`` not dividing it, a matrix
    over the size limits): found after the search, it was pydantic's multi-line dump of the sweep's spec, naming no
    flag (a review). ``training``: the search's sweep spec (a file's ``training``)."""
    from pydantic import ValidationError

    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.errors import error_text

    for width in widths:
        try:
            SweepSpec.model_validate({**training, "widths": [width], "base_width": base})
        except ValidationError as exc:
            said = "; ".join(error_text(e).removeprefix("widths: ") for e in exc.errors(include_url=False))
            raise ValueError(f"verify_widths: {width}: {said}") from None


def transfer_grid(tuned: TunedConstants, width: int, lrs: int, step: float) -> list[float]:
    """``lrs`` log2 betas ``step`` apart around the tuned beta transferred to ``width``: the same beta in
    per-layer mode (the LR factors carry the width), moved by theory's global c in global mode (beta is the
    shared LR there)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.theory.solver import solve_exponents

    center = math.log2(tuned.beta)
    if tuned.lr_mode is LrMode.global_:
        table = SweepSpec.model_validate(tuned.training).parameterization(tuned.parameterization)
        c = solve_exponents(table, tuned.optimizer, tuned.alignment).global_c
        center -= c * math.log2(width / tuned.base_width)
    return [round(center + step * (i - (lrs - 1) / 2), 10) for i in range(lrs)]


def compare_losses(tuned: Any, default: Any, log2_lr: list[float], width: int, base: int, elapsed_s: float = 0.0,
                   confidence: float = 0.95) -> TransferCheck:
    """Each one's best LR (lowest mean over seeds) and the paired per-seed difference there, with a Student-t
    interval; ``tuned`` and ``default`` are eval losses [LR, seed] over the same grid and seeds."""
    import numpy as np
    from scipy import stats

    t, d = np.asarray(tuned, dtype=float), np.asarray(default, dtype=float)
    it, id_ = int(np.argmin(t.mean(axis=1))), int(np.argmin(d.mean(axis=1)))
    diff = d[id_] - t[it]
    n = len(diff)
    if n < 2:
        raise ValueError("verify_seeds: the interval needs at least 2 seeds")
    mean, half = float(diff.mean()), float(stats.t.ppf((1 + confidence) / 2, n - 1) * diff.std(ddof=1) / n ** 0.5)
    lo, hi = mean - half, mean + half
    t_edge, d_edge = it in (0, len(log2_lr) - 1), id_ in (0, len(log2_lr) - 1)
    # a loser whose best sits on the grid's edge may do better past it: no win over it is shown (the grid,
    # centred on the tuned beta, left the defaults' optimum outside and "tuned wins" was claimed)
    wins = True if lo > 0 and not d_edge else False if hi < 0 and not t_edge else None
    return TransferCheck(
        width=width, ratio=width / base, log2_lr=list(log2_lr), seeds=n, tuned_loss=float(t[it].mean()),
        tuned_beta=2.0 ** log2_lr[it], tuned_at_edge=t_edge, default_loss=float(d[id_].mean()),
        default_beta=2.0 ** log2_lr[id_], default_at_edge=d_edge, difference=mean, interval=(lo, hi),
        confidence=confidence, tuned_wins=wins, elapsed_s=elapsed_s)


def verify(tuned: TunedConstants, widths: list[int], *, lrs: int = 5, step: float = 1.0, seeds: int = 3,
           on_width: Callable[[TransferCheck], None] | None = None) -> TunedConstants:
    """The transfer check: at each width, sweep ``lrs`` betas x ``seeds`` seeds with the tuned constants and with
    the ones the search started from (the spec's, by default abcscale's defaults); the file with ``transfer``
    holding one :class:`TransferCheck` per width (replacing earlier checks at those widths)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.tune import lr_sweep

    if lrs < 2 or seeds < 2:
        raise ValueError(f"{'verify_lrs' if lrs < 2 else 'verify_seeds'}: at least 2")
    check_widths(tuned.training, tuned.base_width, widths)
    spec = SweepSpec.model_validate({**tuned.training, "widths": [tuned.base_width],
                                     "base_width": tuned.base_width})
    same_inputs(tuned, spec)
    checks = {c.width: c for c in tuned.transfer}
    for width in widths:
        t0 = time.perf_counter()
        grid = transfer_grid(tuned, width, lrs, step)
        ours = lr_sweep(spec, tuned.constants, width, grid, seeds)
        theirs = lr_sweep(spec, spec.constants, width, grid, seeds)
        check = compare_losses(ours, theirs, grid, width, tuned.base_width, time.perf_counter() - t0)
        checks[width] = check
        if on_width is not None:
            on_width(check)
    return tuned.model_copy(update={"transfer": [checks[w] for w in sorted(checks)]})


#: --verify-constants: each tuned LR constant times these, around its tuned value
CONSTANT_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def verify_constants(tuned: TunedConstants, widths: list[int], folder: str | Path, *, lrs: int = 3,
                     step: float = 1.0, seeds: int = 2, factors: tuple[float, ...] = CONSTANT_FACTORS,
                     n_boot: int = 200, progress: bool = False) -> TunedConstants:
    """The fitter's constants-consistency test (:class:`ConstantsCheck`) at the base width and ``widths``: the
    file with ``constants_check`` set. One sweep per width into ``folder`` (resumed if rerun): each tuned LR
    constant times ``factors`` (the others at their tuned values) x ``lrs`` betas x ``seeds`` seeds."""
    import pandas as pd

    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    if 1.0 not in factors or len(factors) < 3:
        raise ValueError("factors: at least 3, including 1 (the tuned value)")
    names = [k for k in tuned.settings.space() if k.startswith("gamma_")]
    tuned_g = tuned.constants.gamma
    variants = [tuned_g] + [tuned_g.model_copy(update={n.removeprefix("gamma_"): tuned_g[n.removeprefix("gamma_")]
                                                       * f}) for n in names for f in factors if f != 1.0]
    same_inputs(tuned, SweepSpec.model_validate({**tuned.training, "widths": [tuned.base_width],
                                                 "base_width": tuned.base_width}))
    t0 = time.perf_counter()
    frames = []
    for width in [tuned.base_width, *widths]:
        spec = SweepSpec.model_validate({**tuned.training, "widths": [width], "base_width": tuned.base_width,
                                         "constants": tuned.constants.model_dump(), "seeds": seeds,
                                         "gammas": [g.model_dump() for g in variants],
                                         "log2_lr": transfer_grid(tuned, width, lrs, step)})
        frames.append(run_sweep(spec, Path(folder), progress=progress))
    check = constants_consistency(pd.concat(frames, ignore_index=True), tuned_g, names, tuned.base_width, n_boot)
    check = check.model_copy(update={"factors": list(factors), "seeds": seeds, "elapsed_s": time.perf_counter() - t0})
    return tuned.model_copy(update={"constants_check": check})


#: a drift interval wider than this cannot tell a width-independent constant from one that drifts as width^+-0.5
MAX_DRIFT_INTERVAL = 1.0


def constants_consistency(rows: Any, tuned: PerLayer, names: list[str], base_width: int,
                          n_boot: int = 200) -> ConstantsCheck:
    """The fitter's verdict per constant in ``names`` (``gamma_embedding``, ...) on sweep rows: the rows where
    every other constant is at its ``tuned`` value form one table per constant, fitted with that constant as
    its ``constant_cols``; width-independent when the drift exponent's interval holds 0."""
    import numpy as np

    from abcscale.fitting import fit_table
    from abcscale.schemas.fit import ColumnMapping

    fits, notes = [], []
    verdict: dict[str, bool | None] = {}
    for name in names:
        others = [n for n in names if n != name]
        at = np.ones(len(rows), dtype=bool)
        for n in others:
            at &= np.isclose(rows[n].to_numpy(dtype=float), tuned[n.removeprefix("gamma_")])
        res = fit_table(rows[at].drop(columns=others),
                        ColumnMapping(loss_col="eval_loss", group_cols=[], constant_cols=[name]),
                        base_width=base_width, n_boot=n_boot)
        group = res.groups[0]
        found = [c for c in group.constants if c.name == name]
        fits += found
        notes += [w for w in group.warnings if w.startswith(f"{name}:")]
        drift = found[0].drift_exponent if found else None
        if drift is not None and drift.ci.high - drift.ci.low > MAX_DRIFT_INTERVAL:
            # holding 0 says nothing when it holds +-0.5 too: [-5.9, +6.8] was called width-independent
            notes.append(f"{name}: the drift's interval [{drift.ci.low:+.2f}, {drift.ci.high:+.2f}] is wider than "
                         f"{MAX_DRIFT_INTERVAL:g}: too wide to tell; more seeds, widths or factors")
            verdict[name] = None
        else:
            verdict[name] = None if drift is None else drift.ci.contains(0.0)
    return ConstantsCheck(widths=sorted({int(w) for w in rows["width"]}), factors=[], seeds=0, fits=fits,
                          width_independent=verdict, notes=notes, elapsed_s=0.0)

