"""/v1/fits: batch fits from JSON rows or a CSV/parquet upload, stored with their rows; plots on demand."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, get_args

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from abcscale.schemas.api import FitCreate, FitOptions, FitPublic, FitsPublic, FitSummary
from abcscale.schemas.fit import FitResult
from abcscale.service import crud
from abcscale.service.config import Settings
from abcscale.service.db import Fit
from abcscale.service.deps import FitDep, FitId, SessionDep, WriterDep
from abcscale.service.http import StrictJSONRoute, loads_strict, unprocessable, value_error
from abcscale.usecases import fit_sweep, plot_fit

if TYPE_CHECKING:
    from abcscale.fitting import TableError
    from abcscale.fitting.reading import TableTooLarge

router = APIRouter(prefix="/fits", tags=["fits"], route_class=StrictJSONRoute)

PlotName = Literal["loss_vs_lr", "lr_vs_width", "loss_vs_width"]
PLOT_NAMES: tuple[str, ...] = get_args(PlotName)

# pyplot keeps global state: one rendering at a time.
_PLOT_LOCK = threading.Lock()

# The multipart form carries FitOptions as text fields (lists comma-separated, empty = null).
_FORM_FIELDS = {
    name: {"type": "string", "description": field.description or name}
    for name, field in FitOptions.model_fields.items() if name not in ("group_cols", "constant_cols")
}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/FitCreate"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "a CSV or parquet table"},
                        "group_cols": {"type": "string", "description": "comma-separated grouping columns"},
                        "constant_cols": {"type": "string", "description": "comma-separated constant columns"},
                        **_FORM_FIELDS,
                    },
                }
            },
        },
    }
}


def _public(record: Fit, result: FitResult | None = None) -> FitPublic:
    return FitPublic(
        **FitSummary.model_validate(record, from_attributes=True).model_dump(),
        plots={n: f"/v1/fits/{record.id}/plots/{n}.png" for n in PLOT_NAMES},
        result=result or crud.fit_result(record),
    )


def _table_problems(exc: TableError, where: str) -> NoReturn:
    unprocessable([{"type": "value_error", "loc": ("body", where), "msg": p, "input": None} for p in exc.problems])


def _too_large(exc: TableTooLarge) -> NoReturn:
    raise HTTPException(413, detail=f"{exc}; the cap is set by ABCSCALE_{exc.cap.upper()}")


async def _read_form(request: Request) -> tuple[FitOptions, pd.DataFrame]:
    from abcscale.fitting import TableError, read_table
    from abcscale.fitting.reading import TableTooLarge, table_format

    form = await request.form(max_files=1, max_fields=32)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        value_error("Field required: a CSV or parquet `file` part", ("body", "file"))
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key == "file":
            continue
        if not isinstance(value, str):
            value_error("expected a form field, got a file", ("body", key))
        # A form cannot send null: an empty field means "none" (e.g. no seed column); FitOptions splits the
        # comma-separated column lists, where "" is an empty list.
        fields[key] = value if key in ("group_cols", "constant_cols") else value or None
    try:
        options = FitOptions.model_validate(fields)
    except ValidationError as exc:
        unprocessable(exc)
    data = await upload.read()
    settings: Settings = request.app.state.settings
    try:
        df = await run_in_threadpool(lambda: read_table(data, table_format(upload.filename or ""),
                                                        max_rows=settings.max_rows, max_cells=settings.max_cells))
    except TableTooLarge as exc:
        _too_large(exc)
    except TableError as exc:
        if any(p.startswith("table:") for p in exc.problems):  # not a table at all
            raise HTTPException(400, detail="file: " + "; ".join(exc.problems)) from None
        _table_problems(exc, "file")  # e.g. a duplicated column: a 422 like any other column problem
    return options, df


async def _read_json(request: Request) -> tuple[FitOptions, pd.DataFrame]:
    from abcscale.fitting.reading import TableTooLarge, check_size

    body = await request.body()
    if not body.strip():
        value_error("Field required", ("body",))
    settings: Settings = request.app.state.settings
    try:
        payload = await run_in_threadpool(loads_strict, body, settings.max_json_depth)  # up to 50 MB: off the loop
    except ValueError as exc:
        unprocessable([{"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {exc}", "input": None}])
    try:
        req = FitCreate.model_validate(payload)
    except ValidationError as exc:
        unprocessable(exc)
    try:
        # a table has every key of every row as a column: n rows with n distinct keys would be n * n cells
        columns = set().union(*req.rows)
        check_size(len(req.rows), len(req.rows) * len(columns), settings.max_rows, settings.max_cells)
    except TableTooLarge as exc:
        _too_large(exc)
    return req, pd.DataFrame.from_records(req.rows)


def _fit(options: FitOptions, df: pd.DataFrame, where: str) -> FitResult:
    from abcscale.fitting import TableError

    try:
        return fit_sweep(df, options)
    except TableError as exc:
        _table_problems(exc, where)
    except ValueError as exc:
        value_error(str(exc), ("body",))


@router.post("", status_code=201, response_model=FitPublic, dependencies=[WriterDep], openapi_extra=_CREATE_BODY,
             responses={400: {"description": "unreadable file"},
                        413: {"description": "body over the size cap, or a table over the row/cell cap"},
                        415: {"description": "neither JSON nor multipart"}})
async def create_fit(request: Request, session: SessionDep) -> FitPublic:
    """Batch-fit a sweep table (JSON rows or a CSV/parquet upload) and store it with its rows."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        options, df = await _read_form(request)
        where = "file"
    elif ctype in ("", "application/json") or ctype.endswith("+json"):
        options, df = await _read_json(request)
        where = "rows"
    else:
        raise HTTPException(415, detail="send application/json rows or a multipart/form-data `file`")
    fit = await run_in_threadpool(_fit, options, df, where)
    record = await run_in_threadpool(
        lambda: crud.get_fit(session, fit_id=crud.create_fit(session, fit, df, name=options.name)))
    if record is None:  # deleted by a concurrent DELETE between storing it and reading it back
        raise HTTPException(404, detail="Fit not found")
    return _public(record, fit)


@router.get("", response_model=FitsPublic)
def list_fits(
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FitsPublic:
    """Stored fits, newest first (without their results)."""
    page, count = crud.list_fits(session, skip=skip, limit=limit)
    return FitsPublic(data=[FitSummary.model_validate(r, from_attributes=True) for r in page], count=count)


@router.get("/{fit_id}", response_model=FitPublic, responses={404: {"description": "Fit not found"}})
def read_fit(record: FitDep) -> FitPublic:
    """One stored fit with its FitResult."""
    return _public(record)


@router.delete("/{fit_id}", status_code=204, dependencies=[WriterDep],
               responses={404: {"description": "Fit not found"}})
def delete_fit(fit_id: FitId, session: SessionDep) -> Response:
    """Delete a fit, its rows and its plots."""
    if not crud.delete_fit(session, fit_id=fit_id):
        raise HTTPException(404, detail="Fit not found")
    return Response(status_code=204)


@router.get("/{fit_id}/plots/{name}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "Fit not found"}})
def read_plot(record: FitDep, name: PlotName, session: SessionDep) -> Response:
    """A PNG plot of the fit, rendered on first request and kept."""
    png = crud.get_plot(session, fit_id=record.id, name=name)
    if png is None:
        plots = _render(record, crud.get_rows(session, fit_id=record.id))
        crud.save_plots(session, fit_id=record.id, plots=plots)
        png = plots.get(name)
        if png is None:
            raise HTTPException(404, detail="Plot not available for this fit")
    return Response(png, media_type="image/png")


def _render(record: Fit, rows: pd.DataFrame | None) -> dict[str, bytes]:
    if rows is None:
        raise HTTPException(404, detail="Fit has no stored rows")
    fit = crud.fit_result(record)
    with _PLOT_LOCK, tempfile.TemporaryDirectory(prefix="abcscale-plots-") as tmp:
        try:
            paths = plot_fit(fit, rows, tmp)
        except ValueError as exc:  # e.g. nothing identified to draw
            raise HTTPException(404, detail=f"Plot not available for this fit: {exc}") from None
        return {n: Path(p).read_bytes() for n, p in paths.items() if n in PLOT_NAMES}
