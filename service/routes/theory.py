"""/v1/theory: the exponent table and conversions between parameterizations (the CLI's ``theory`` commands)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import StringConstraints

from abcscale.schemas.api import (
    AnalyticRecommend,
    ConvertRequest,
    ConvertResponse,
    MupExport,
    MupImport,
    MupImportRequest,
)
from abcscale.schemas.enums import Optimizer, Parameterization
from abcscale.schemas.theory import Alignment, ExponentRow
from abcscale.service.http import StrictJSONRoute, describe, value_error
from abcscale.usecases import convert_setting, theory_table
from abcscale.usecases.mup import mup_export, mup_import

router = APIRouter(prefix="/theory", tags=["theory"], route_class=StrictJSONRoute)

# What Alignment.parse reads, narrowed to what a JSON Schema pattern can state (so the OpenAPI tells the truth):
# a name in any letter case (as every enum of a body, and the CLI's -a NONE; spelt out, as a JSON Schema pattern
# has no flag for it), or three comma-separated decimals: alpha and u in [0, 2], omega in [0, 1/2] (Alignment's
# bounds).
_NAMES = r"[Ff][Uu][Ll][Ll]|[Nn][Oo][Nn][Ee]"
_UNIT = r"(?:[01](?:\.[0-9]+)?|2(?:\.0+)?|\.[0-9]+)"
_HALF = r"(?:0(?:\.(?:[0-4][0-9]*|50*))?|\.(?:[0-4][0-9]*|50*))"
ALIGNMENT_PATTERN = rf"^(?:{_NAMES}|{_UNIT},{_HALF},{_UNIT})$"


@router.get("/exponents", response_model=list[ExponentRow])
def exponents(
    parameterization: Annotated[list[Parameterization] | None, Query()] = None,
    optimizer: Annotated[list[Optimizer] | None, Query()] = None,
    alignment: Annotated[
        list[Annotated[str, StringConstraints(pattern=ALIGNMENT_PATTERN)]] | None,
        Query(description="'full', 'none' (any letter case) or 'ALPHA,OMEGA,U' (decimals: alpha and u in [0, 2], "
                    "omega in [0, 1/2])", max_length=8),
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
        return theory_table(parameterization or None, optimizer or None, aligns or None)
    except ValueError as exc:
        value_error(str(exc), ("query",))


@router.post("/convert", response_model=ConvertResponse, response_model_by_alias=True)
def convert(req: ConvertRequest) -> ConvertResponse:
    """The equivalent setting under another parameterization (``abcscale theory convert``)."""
    try:
        return convert_setting(req)
    except ValueError as exc:  # e.g. a width ratio so extreme that an LR under/overflows
        value_error(describe(exc))


@router.post("/from-mup", response_model=MupImport)
def from_mup(req: MupImportRequest) -> MupImport:
    """A microsoft/mup setup as abcscale's muP constants and the equivalent recommend request
    (``abcscale mup import``)."""
    try:
        return mup_import(req)
    except ValueError as exc:  # e.g. a width ratio so extreme that a constant under/overflows
        value_error(describe(exc))


@router.post("/to-mup", response_model=MupExport)
def to_mup(req: AnalyticRecommend) -> MupExport:
    """An analytic recommendation as microsoft/mup's setup (``abcscale mup export``)."""
    try:
        return mup_export(req)
    except ValueError as exc:  # the base's weight decay where theory names it, as /v1/recommend points
        msg = describe(exc)
        value_error(msg, ("body", "base", "weight_decay") if msg.startswith("weight_decay:") else ("body",))
