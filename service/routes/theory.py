"""/v1/theory: the exponent table and conversions between parameterizations (the CLI's ``theory`` commands)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from abcscale import theory
from abcscale.schemas.api import ConvertRequest, ConvertResponse, alignment_of
from abcscale.schemas.enums import LAYERS, Optimizer, Parameterization
from abcscale.schemas.theory import Alignment, BaseConfig, ExponentRow, LayerSetting, Setting
from abcscale.service.http import StrictJSONRoute, describe, value_error

router = APIRouter(prefix="/theory", tags=["theory"], route_class=StrictJSONRoute)


@router.get("/exponents", response_model=list[ExponentRow])
def exponents(
    parameterization: Annotated[list[Parameterization] | None, Query()] = None,
    optimizer: Annotated[list[Optimizer] | None, Query()] = None,
    alignment: Annotated[
        list[str] | None, Query(description="'full', 'none' or 'ALPHA,OMEGA,U' (each in [0, 2])", max_length=8)
    ] = None,
) -> list[ExponentRow]:
    """Per-layer exponents (a, b, c) from the stability constraints (``abcscale theory table``)."""
    aligns = []
    for i, a in enumerate(alignment or []):
        try:
            aligns.append(Alignment.parse(a))
        except ValueError as exc:
            value_error(str(exc), ("query", "alignment", i))
    try:
        return theory.theory_table(parameterization or None, optimizer or None, aligns or None)
    except ValueError as exc:
        value_error(str(exc), ("query",))


@router.post("/convert", response_model=ConvertResponse, response_model_by_alias=True)
def convert(req: ConvertRequest) -> ConvertResponse:
    """The equivalent setting under another parameterization (``abcscale theory convert``)."""
    al = alignment_of(req.alignment)
    try:
        base = BaseConfig(width=req.base_width or req.width, beta=req.base_lr,
                          epsilon=req.epsilon if req.epsilon is not None else 1e-8, epsilon_mode="constant")
        start = theory.transfer(req.source, req.optimizer, base, req.width, al, "per_layer")
        layers = []
        for s in start.layers:
            d = s.model_dump()
            for key in ("lr", "multiplier", "init_std"):
                actual = getattr(req, key)
                if actual is not None:
                    d[key] = actual[s.layer]
            if req.optimizer is not Optimizer.adam:
                d["epsilon"] = None
            layers.append(LayerSetting(**d))
        setting = Setting(parameterization=req.source, optimizer=req.optimizer, width=req.width, layers=layers)
        conv = theory.convert(setting, req.source, req.target, al)
    except ValueError as exc:  # e.g. a width ratio so extreme that an LR under/overflows
        value_error(describe(exc))
    return ConvertResponse(
        optimizer=req.optimizer, source_parameterization=req.source.value, target_parameterization=req.target.value,
        width=req.width, k=conv.k, symmetric=conv.symmetric, source=setting, converted=conv.setting,
        theta={l.value: conv.theta[l] for l in LAYERS}, c_from={l.value: conv.c_from[l] for l in LAYERS},
        c_to={l.value: conv.c_to[l] for l in LAYERS}, warnings=list(conv.warnings),
    )
