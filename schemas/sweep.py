"""The sweep-table contract: one row per training run.

The runner writes it (``results.parquet``), the fitter reads it, and users may bring their own table
in the same shape (or map their column names onto it with ``--size-col`` and friends). A diverged run
is a row, never a missing one: ``diverged=True`` and a NaN/inf ``final_loss`` are both read as divergence.

Learning-rate columns: ``beta`` is the swept base learning rate. In ``per_layer`` mode the effective
rate of layer l is ``lr_l = beta * gamma_l * (width / base_width) ** -c_l``; in ``global`` mode every
``lr_l`` equals ``beta`` times its gamma. The fitter treats ``beta`` as the LR axis by default.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from abcscale.schemas.enums import LrMode, Optimizer


class SweepRow(BaseModel):
    """One training run (one row of ``results.parquet``)."""

    model_config = ConfigDict(extra="allow")

    parameterization: str = Field(description="standard | ntk | mup | mean_field, or a custom table's name")
    optimizer: Optimizer = Field(description="sgd | adam | adamw | adafactor | lion | muon")
    optimizer_variant: str | None = Field(None, description="the runner's optimizer variant (e.g. adam_scaled); a "
                                          "group column where it differs from optimizer")
    alignment: str = Field("full", description="full | none | 'ALPHA,OMEGA,U' used for the exponents")
    lr_mode: LrMode = Field(LrMode.per_layer, description="global | per_layer")
    width: int = Field(gt=0, description="model dim D")
    depth: int = Field(1, gt=0, description="number of hidden blocks")
    n_params: int = Field(0, ge=0, description="trainable parameter count")
    base_width: int = Field(gt=0, description="width at which gamma/beta are referenced (n / base_width)")
    beta: float = Field(gt=0, allow_inf_nan=False, description="swept base learning rate")
    gamma_embedding: float = Field(1.0, gt=0, description="per-layer LR constant, embedding")
    gamma_hidden: float = Field(1.0, gt=0, description="per-layer LR constant, hidden")
    gamma_readout: float = Field(1.0, gt=0, description="per-layer LR constant, readout")
    init_scale_embedding: float = Field(1.0, gt=0, description="per-layer init constant, embedding")
    init_scale_hidden: float = Field(1.0, gt=0, description="per-layer init constant, hidden")
    init_scale_readout: float = Field(1.0, gt=0, description="per-layer init constant, readout")
    lr_embedding: float = Field(gt=0, description="effective LR of the embedding at this width")
    lr_hidden: float = Field(gt=0, description="effective LR of hidden layers at this width")
    lr_readout: float = Field(gt=0, description="effective LR of the readout at this width")
    seed: int = Field(0, ge=0, description="random seed (init and data order)")
    steps: int = Field(gt=0, description="optimizer steps")
    tokens: int = Field(0, ge=0, description="training tokens seen (steps * batch * seq_len)")
    final_loss: float = Field(description="final training loss (mean of the last steps); NaN/inf = diverged")
    eval_loss: float = Field(math.nan, description="held-out loss at the end; NaN when diverged")
    loss_at_init: float = Field(math.nan, description="loss before the first update")
    diverged: bool = Field(False, description="NaN/inf or loss far above its start (final loss inf, eval loss NaN)")


#: column name -> description, in the table's order (generated from SweepRow, the one source).
SWEEP_COLUMNS: dict[str, str] = {
    name: (field.description or "") for name, field in SweepRow.model_fields.items()
}

#: columns that identify a group (one exponent fit each) when present; ``optimizer_variant`` keeps the
#: runner's adam_atan2 / adam_scaled runs apart from plain Adam / Adafactor.
GROUP_COLUMNS = ("parameterization", "optimizer", "optimizer_variant", "alignment", "lr_mode")

#: per-run measurements of the runner's table: they differ between the seeds of one cell by nature. Every other
#: column is a setting, swept (the group columns, width, beta, seed, gamma_*) or derived from the swept ones
#: (lr_*, log2_lr, n_params, tokens, and the effective per-width multiplier_*, init_std_*, epsilon_*,
#: weight_decay_*: one value per width, so never a swept constant). The runner writes and the fitter reads this.
RUN_MEASUREMENTS = ("final_loss", "eval_loss", "loss_at_init", "diverged", "compile_s", "run_s", "runs_per_call")

#: the loss the sweep's summary ranks learning rates by and the fitter fits by default, where a table has it:
#: the held-out loss (else ``final_loss``).
DEFAULT_LOSS = "eval_loss"

__all__ = ["SweepRow", "SWEEP_COLUMNS", "GROUP_COLUMNS", "RUN_MEASUREMENTS", "DEFAULT_LOSS"]
