"""/v1/fits: batch fits from JSON rows or a CSV/parquet upload, stored with their rows; plots drawn
by a worker process on first request (service/plots.py).

``POST`` takes an ``Idempotency-Key`` header (draft "The Idempotency-Key HTTP Header Field"): a retry with the
same key and the same request content answers the stored fit again (201, same id, ``Idempotent-Replayed:
true``) and stores nothing; the same key with other content is a 422 naming the header. The key is stored in
the fit's transaction, so two requests racing with one key store one fit and both answer it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, get_args

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from abcscale.schemas.api import FitCreate, FitOptions, FitPredict, FitPublic, FitsPublic, FitSummary
from abcscale.schemas.errors import error_text
from abcscale.schemas.fit import FitPrediction, FitResult
from abcscale.service import crud
from abcscale.service import pages as page_views
from abcscale.service.config import Settings
from abcscale.service.db import Fit
from abcscale.service.deps import IDEMPOTENCY_HEADER, FitDep, FitId, IdempotencyKeyDep, SessionDep, WriterDep, not_found
from abcscale.service.http import (
    EMPTY_BODY,
    StrictJSONRoute,
    error,
    loads_strict,
    refuse_encoded,
    unprocessable,
    value_error,
)
from abcscale.service.plots import PlotRenderer, RenderFailed, plot_pages, plot_urls
from abcscale.usecases import fit_sweep
from abcscale.usecases.fits import SetupGiven, predict_at, unreliable
from abcscale.usecases.recommend import SELECT_HINT, GroupSelectError

if TYPE_CHECKING:
    import pandas as pd

    from abcscale.fitting import TableError
    from abcscale.fitting.reading import TableTooLarge

router = APIRouter(prefix="/fits", tags=["fits"], route_class=StrictJSONRoute)

PlotName = Literal["loss_vs_lr", "lr_vs_width", "loss_vs_width"]
PLOT_NAMES: tuple[str, ...] = get_args(PlotName)
RETRY_AFTER_S = 2  # a render takes about a second
log = logging.getLogger("abcscale.service")

# The multipart form carries FitOptions as text fields (lists comma-separated, empty = null).
#: how a form field spells what the JSON body's field takes as an object (`at`)
_FORM_SPELLING = {"at": "covariate values to predict at with target_width, as NAME=VALUE pairs: 'D=1e10,batch_size=64' "
                        "(covariates left out sit at their bases)",
                  "alignment": "alignment used for the theory exponent: 'full', 'none' or ALPHA,OMEGA,U "
                               "('0.75,0.5,0.75')"}
_FORM_FIELDS = {
    name: {"type": "string", "description": _FORM_SPELLING.get(name) or field.description or name}
    for name, field in FitOptions.model_fields.items() if name not in ("group_cols", "constant_cols")
}
#: the JSON body /docs' "Try it out" sends, and schemathesis's examples phase: a table that really fits, so that the
#: fuzzing reaches a stored fit (GET, DELETE, rows, plots of its id) and not only 404s. 4 widths spanning 8x, 5 LRs,
#: 2 seeds: each curve a parabola in log2 LR around an optimum that halves as the width doubles (LR* ~ 1/width, muP
#: with Adam), each run off it by a fixed scatter of at most 0.02, which makes a fit without warnings.
CREATE_EXAMPLE = {
    "name": "example sweep",
    "rows": [{"width": 64 * 2**i, "beta": 2.0 ** (k - 6 - i), "seed": s,
              "final_loss": round(3.0 - 0.2 * i + 0.05 * k * k + 0.01 * ((3 * i + 5 * k + 7 * s) % 5 - 2), 4)}
             for i in range(4) for k in range(-2, 3) for s in range(2)],
    "parameterization": "mup", "optimizer": "adam", "lr_mode": "global",
    "target_width": 4096,
}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/FitCreate"},
                "examples": {"sweep": {"summary": "4 widths x 5 learning rates x 2 seeds, predicted at width 4096",
                                       "value": CREATE_EXAMPLE}},
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "a CSV or parquet table"},
                        "group_cols": {"type": "string", "description": "comma-separated grouping columns (empty: the "
                                                       "default columns; [] for none)"},
                        "constant_cols": {"type": "string", "description": "comma-separated constant columns (empty: "
                                                          "the default; [] for none)"},
                        **_FORM_FIELDS,
                    },
                }
            },
        },
    }
}


def _public(record: Fit, result: FitResult | None = None) -> FitPublic:
    result = result or crud.fit_result(record)
    return FitPublic(
        **FitSummary.model_validate(record, from_attributes=True).model_dump(),
        plots=plot_urls(record.id, len(result.groups)),  # every page of every plot
        result=result,
    )


def _table_problems(exc: TableError, where: str, options: FitOptions | None = None) -> NoReturn:
    """A 422 per problem, at the field the request named the column with (``lr_col``), else the table's."""
    def field(problem: str) -> str:
        named = page_views.problem_field(problem, options, roles_only=True) if options is not None else "file"
        return named if options is not None and named in options.model_fields_set else where

    unprocessable([{"type": "value_error", "loc": ("body", field(p)), "msg": p, "input": None} for p in exc.problems])


def _too_large(exc: TableTooLarge) -> NoReturn:
    raise HTTPException(413, detail=f"{exc}; the cap is set by ABCSCALE_{exc.cap.upper()}")


# What a request asked for, the table it sent and, computed only for a request with an idempotency key, a
# hash of its content (not its bytes: a multipart boundary differs on every retry).
_Input = tuple[FitOptions, "pd.DataFrame", Callable[[], str]]


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)  # length-prefixed: no two splits hash alike
    return digest.hexdigest()


def _sent(options: FitOptions) -> bytes:
    # the fields as sent, not with defaults filled in: an omitted column key means the contract's name
    # (``seed``), an explicit null means no such column, and the two must not match. Keys sorted (a row's and the
    # body's): a retry whose client serialized a row's keys in another order is the same request
    return json.dumps(options.model_dump(mode="json", exclude_unset=True), sort_keys=True,
                      separators=(",", ":")).encode()


#: file parts a multipart fit may hold before Starlette refuses it unread (one is the table)
MAX_FILE_PARTS = 4


async def _read_form(request: Request) -> _Input:
    from abcscale.fitting import TableError, read_table
    from abcscale.fitting.reading import TableTooLarge, table_format

    # a few files are read (the body's cap bounds them) so that a second table, or a file sent in a text field,
    # is named at its field rather than as Starlette's bare "Too many files"
    form = await request.form(max_files=MAX_FILE_PARTS, max_fields=32)
    if len(form.getlist("file")) > 1:
        value_error("given twice; send one table per fit", ("body", "file"))
    upload = form.get("file")
    if isinstance(upload, str):  # `curl -F 'file=<rows.csv'` sends the text as a field, not a file (a review)
        value_error("sent as a text field: send the table as a file part (curl -F file=@rows.csv)", ("body", "file"))
    if not isinstance(upload, UploadFile):
        value_error("Field required: a CSV or parquet `file` part", ("body", "file"))
    fields: dict[str, Any] = {}
    sent: dict[str, str] = {}  # the integer options as typed
    for key, value in form.multi_items():
        if key == "file":
            continue
        if not isinstance(value, str):
            value_error("expected a form field, got a file", ("body", key))
        if key in fields:  # as a duplicated JSON key: neither value silently wins
            value_error("given twice; send each field once", ("body", key))
        # A form cannot send null: an empty field is null, as on the page (no seed column; the column lists'
        # defaults: `-F group_cols=$GROUPS` with the variable unset pooled every setup into one group, a review);
        # `[]` asks for no columns. FitOptions splits the comma-separated column lists.
        fields[key] = value or None
        try:  # a list of names or `at` as JSON, the JSON body's spelling: taken too
            fields[key] = page_views.form_value(key, value) if value else fields[key]
        except ValueError as exc:
            value_error(str(exc), ("body", key))
        if key in page_views.INT_OPTIONS and value:  # 4e3 as 4000, and 1e30 as a number past the bound (said so,
            sent[key], fields[key] = value, page_views.whole_text(value)  # not "not a valid integer"), as the page
    try:
        options = FitOptions.model_validate(fields, context={"form": True})  # text fields: parsed
    except ValidationError as exc:  # an integer option's input as sent ("1e30", not its 31 digits)
        unprocessable([{"type": e["type"], "loc": ("body", *e["loc"]), "msg": error_text(e),
                        "input": sent.get(str(e["loc"][0]), e.get("input")) if e["loc"] else e.get("input")}
                       for e in exc.errors(include_url=False)])
    data = await upload.read()
    settings: Settings = request.app.state.settings
    fmt = table_format(upload.filename or "")  # None: sniffed from the bytes
    try:
        df = await run_in_threadpool(lambda: read_table(data, fmt, max_rows=settings.max_rows,
                                                        max_cells=settings.max_cells, name=upload.filename))
    except TableTooLarge as exc:
        _too_large(exc)
    except TableError as exc:
        if any(p.startswith("table:") for p in exc.problems):  # not a table at all
            raise HTTPException(400, detail="file: " + "; ".join(exc.problems)) from None
        _table_problems(exc, "file")  # e.g. a duplicated column: a 422 like any other column problem
    return options, df, lambda: _sha256(b"file", _sent(options), str(fmt).encode(), data)


async def _read_json(request: Request) -> _Input:
    from abcscale.fitting.reading import TableTooLarge, check_size

    body = await request.body()
    if not body.strip():
        value_error(f"{EMPTY_BODY} with `rows` (or a CSV or parquet `file` as multipart/form-data)", ("body",))
    settings: Settings = request.app.state.settings
    try:
        payload = await run_in_threadpool(loads_strict, body, settings.max_json_depth)  # up to 50 MB: off the loop
    except ValueError as exc:  # at FastAPI's place for it, ("body", the character's position: 0 where none)
        pos, why = (exc.pos, exc.msg) if isinstance(exc, json.JSONDecodeError) else (0, str(exc))
        unprocessable([{"type": "json_invalid", "loc": ("body", pos), "msg": f"JSON decode error: {why}",
                        "input": None}])
    try:
        req = FitCreate.model_validate(payload, context={"json": True})  # the schema's types (a list, not 'a,b')
    except ValidationError as exc:
        unprocessable(exc)
    try:
        # a table has every key of every row as a column: n rows with n distinct keys would be n * n cells
        columns = set().union(*req.rows)
        check_size(len(req.rows), len(req.rows) * len(columns), settings.max_rows, settings.max_cells)
    except TableTooLarge as exc:
        _too_large(exc)
    # a list or object cell as its JSON text, as an uploaded parquet's list column is read and stored
    from abcscale.fitting.table import records_frame, scalar_cells

    return req, scalar_cells(records_frame(req.rows)), lambda: _sha256(b"json", _sent(req))


def _fit(options: FitOptions, df: pd.DataFrame, where: str) -> FitResult:
    from abcscale.fitting import TableError

    try:
        fit = fit_sweep(df, options)
    except TableError as exc:
        _table_problems(exc, where, options)
    except SetupGiven as exc:  # each at its field
        unprocessable([{"type": "value_error", "loc": ("body", k), "msg": why, "input": None}
                       for k, why in exc.fields.items()])
    except ValueError as exc:  # "at: needs a target size ...": at the option it names, as the page marks it
        field = page_views.option_of(str(exc))[0]
        value_error(str(exc), ("body", field) if field else ("body",))
    if options.strict and (bad := unreliable(fit)):  # refused, so not stored
        unprocessable([{"type": "value_error", "loc": ("body", "strict"), "msg": f"unreliable prediction: {group}: "
                        f"{why.removeprefix('unreliable: ')}", "input": None} for group, why in bad])
    return fit


_REPLAYED = "Idempotent-Replayed"
#: OpenAPI links from a stored fit's id to each operation on it (/docs lists them under the 201; schemathesis's
#: stateful phase follows them from a fit it stored). Operation ids are app._operation_id's, tag-function.
_FIT_LINKS = {
    link: {"operationId": f"fits-{function}", "parameters": {"fit_id": "$response.body#/id"}, "description": why}
    for link, function, why in (
        ("ReadFit", "read_fit", "the stored fit with its result"),
        ("Predict", "predict", "LR* at another size from the stored fit"),
        ("ReadRows", "read_rows", "the rows the fit was made from, as CSV"),
        ("ReadPlot", "read_plot", "a PNG plot of the fit"),
        ("DeleteFit", "delete_fit", "delete the fit, its rows and its plots"),
    )
}


@router.post("", status_code=201, response_model=FitPublic, dependencies=[WriterDep], openapi_extra=_CREATE_BODY,
             responses={201: {"headers": {_REPLAYED: {
                            "description": "true when the answer is a stored fit replayed for a retried "
                                          "Idempotency-Key", "schema": {"type": "string", "enum": ["true"]}},
                                          "Location": {"description": "the stored fit's URL",
                                                       "schema": {"type": "string"}}},
                              "links": _FIT_LINKS},
                        400: error("unreadable file, or a form over its part limits"),
                        409: error("the Idempotency-Key's fit was deleted while this request stored it"),
                        413: error("body over the size cap, or a table over the row/cell cap"),
                        415: error("neither JSON nor multipart, or a compressed body")})
async def create_fit(request: Request, response: Response, session: SessionDep,
                     key: IdempotencyKeyDep) -> FitPublic:
    """Batch-fit a sweep table (JSON rows or a CSV/parquet upload) and store it with its rows."""
    refuse_encoded(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        options, df, digest = await _read_form(request)
        where = "file"
    elif ctype in ("", "application/json") or ctype.endswith("+json"):
        options, df, digest = await _read_json(request)
        where = "rows"
    else:
        raise HTTPException(415, detail="send application/json rows or a multipart/form-data `file`")
    if (why := crud.name_problem(options.name)) is not None:  # before the fit: it could not be stored
        value_error(why, ("body", "name"))
    idempotency = None if key is None else (key, await run_in_threadpool(digest))
    if idempotency is not None and (stored := await run_in_threadpool(_stored, session, *idempotency)):
        response.headers[_REPLAYED] = "true"  # a retry: no fit computed, nothing stored
        return _located(request, response, _public(stored))
    fit = await run_in_threadpool(_fit, options, df, where)
    record, replayed = await run_in_threadpool(_store, session, fit, df, options.name, idempotency)
    if replayed:
        response.headers[_REPLAYED] = "true"
        return _located(request, response, _public(record))
    return _located(request, response, _public(record, fit))


def _located(request: Request, response: Response, fit: FitPublic) -> FitPublic:
    """A 201's ``Location``, the stored fit's URL (HTTP's way to name what was created; it was only in the body)."""
    response.headers["Location"] = f"{request.url.path.rstrip('/')}/{fit.id}"
    return fit


def _stored(session: Session, key: str, request_hash: str) -> Fit | None:
    """The fit stored for a retried key; None for a new key; a 422 for a key used with other content."""
    use = crud.find_key(session, key=key)
    if use is None:
        return None
    if use.request_hash != request_hash:  # says nothing of the fit: the key alone must not reveal it
        value_error("this key was already used with a different request body; send a new key for a new fit",
                    ("header", IDEMPOTENCY_HEADER))
    return crud.get_fit(session, fit_id=use.fit_id)


def _store(session: Session, fit: FitResult, df: pd.DataFrame, name: str | None,
           idempotency: tuple[str, str] | None) -> tuple[Fit, bool]:
    """Store the fit; when a concurrent request stored one with the same key first, that one instead.
    Returns the record and whether it is the other request's."""
    for _ in range(3):  # the winner's fit can be deleted before it is read back, freeing the key again
        try:
            fit_id = crud.create_fit(session, fit, df, name=name, idempotency=idempotency)
        except crud.KeyTaken:  # only raised for a request with a key
            if idempotency is not None and (record := _stored(session, *idempotency)) is not None:
                return record, True
            continue
        record = crud.get_fit(session, fit_id=fit_id)
        if record is None:  # deleted by a concurrent DELETE between storing it and reading it back
            raise not_found(fit_id)
        return record, False
    raise HTTPException(409, detail=f"{IDEMPOTENCY_HEADER}: its fit was deleted while this request stored it; retry")


@router.get("", response_model=FitsPublic)
def list_fits(
    request: Request,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FitsPublic:
    """Stored fits, newest first (without their results). A query parameter other than ``skip`` and ``limit`` is
    a 422 naming it (``deps.known_query``): ``?page=2`` (the web page's paging) silently answered the first page."""
    page, count = crud.list_fits(session, skip=skip, limit=limit)
    return FitsPublic(data=[FitSummary.model_validate(r, from_attributes=True) for r in page], count=count)


@router.get("/{fit_id}", response_model=FitPublic, responses={404: error("Fit not found"),
                                                              409: error("the stored fit no longer reads")})
def read_fit(record: FitDep) -> FitPublic:
    """One stored fit with its FitResult."""
    return _public(record)


@router.post("/{fit_id}/predict", response_model=FitPrediction,
             responses={404: error("Fit not found"), 409: error("the stored fit no longer reads")})
def predict(record: FitDep, body: FitPredict) -> FitPrediction:
    """LR* at ``size`` (and at the covariate values ``at``, from a fit with covariates) from the stored fit alone:
    what the fit would have answered with ``target_width`` (and ``at``), at any size without sending the table
    again (``abcscale predict``). Exactly one of ``prediction`` (one group's) and ``joint`` (a joint law's) is set.
    Nothing is stored, so no write token is needed."""
    from abcscale.fitting.predict import NoLaw

    result = crud.fit_result(record)
    try:
        answer = predict_at(result, body.size, at=body.at, group=body.group,
                            names={"at": "`at`", "group": "`group`", "covariates": "`covariates`"})
    except GroupSelectError as exc:  # none or several of the fit's groups match: `group` picks one
        value_error(str(exc).replace(SELECT_HINT, "select one with `group` (an object, column: value)"),
                    ("body", "group"))
    except ValueError as exc:  # a covariate the law lacks, a width of 16.5, a group without a law, ...
        if body.strict and isinstance(exc, NoLaw):  # the gate fails, as `predict --strict` exits 1 on it
            value_error(f"strict: unreliable prediction: no prediction: {exc}", ("body", "strict"))
        field = str(exc).partition(": ")[0]
        loc = {"width": "size", "at": "at", "group": "group"}.get(field)
        if str(exc).startswith("group key "):
            loc = "group"
        msg = str(exc).replace("width: ", "size: ", 1) if field == "width" else str(exc)
        value_error(msg, ("body", loc) if loc else ("body",))
    if body.strict and answer.unreliable:
        value_error("strict: unreliable prediction: " + "; ".join(answer.unreliable), ("body", "strict"))
    return answer


@router.get("/{fit_id}/rows.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "the rows the fit was made from"},
                       404: error("Fit not found")})
def read_rows(fit_id: FitId, session: SessionDep) -> Response:
    """The rows a fit was made from, as CSV: with protected reads the web page's ``/fits/{id}/rows.csv`` takes no
    token, and a fit whose result no longer reads (409) is refit from these."""
    df = crud.get_rows(session, fit_id=fit_id)
    if df is None:
        raise not_found(fit_id)
    return Response(df.to_csv(index=False), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="fit-{fit_id}-rows.csv"'})


@router.delete("/{fit_id}", status_code=204, dependencies=[WriterDep],
               responses={404: error("Fit not found")})
def delete_fit(request: Request, fit_id: FitId, session: SessionDep) -> Response:
    """Delete a fit, its rows and its plots (any holder of the write token may delete any fit)."""
    if not crud.delete_fit(session, fit_id=fit_id):
        request.app.state.plots.forget(fit_id)  # deleted by another server: its plots cached here go too
        raise not_found(fit_id)
    request.app.state.plots.discard(fit_id)  # only after the delete: fit_id is a stored fit's id
    return Response(status_code=204)


@router.get("/{fit_id}/plots/{name}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: error("Fit not found"),
                       202: {**error("the plot is still being drawn: retry after Retry-After seconds"),
                             "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}},
                       503: error("the plot worker failed (nothing cached): retry")})
async def read_plot(request: Request, record: FitDep, name: PlotName, session: SessionDep,
                    page: Annotated[int, Query(ge=1, le=2**20, description="page of a many-group fit")] = 1,
                    ) -> Response:
    """A PNG plot of the fit (``page`` k of a fit with many groups; FitPublic.plots lists every page): drawn
    once by a worker process into a cache folder on disk (never the database); a first request waits up to
    ABCSCALE_PLOT_WAIT_S for it, then answers 202 with Retry-After."""
    plots: PlotRenderer = request.app.state.plots
    fit_id = record.id
    if page > 1 and page > (pages := plot_pages(len((await run_in_threadpool(crud.fit_result, record)).groups))):
        value_error(f"this fit's plots have {pages} page(s), got page {page}", ("query", "page"))
    if await run_in_threadpool(plots.marked_deleted, fit_id) and \
            await run_in_threadpool(crud.fit_stored, session, fit_id=fit_id):
        # a delete's marker, and the row here after it: the fit was stored again (a backup restored)
        await run_in_threadpool(plots.revive, fit_id)
    try:
        got = await run_in_threadpool(plots.cached, fit_id, name, page)
    except RenderFailed as exc:
        _plot_failed(fit_id, exc)
    if got is None:
        try:
            future = plots.pending(fit_id)
            if future is None:  # the first request for this fit's plots: start its render
                # a fit this version cannot read (an older version's) is the 409 its GET gives, not a render whose
                # failure is the validation's whole dump (a review: 15 KB in a 404)
                await run_in_threadpool(crud.fit_result, record)
                plots.sweep_soon()  # a cache that grows: the plots of fits deleted elsewhere go (hourly at most)
                rows = await run_in_threadpool(crud.get_rows_blob, session, fit_id=fit_id)
                if rows is None:
                    raise HTTPException(404, detail="Fit has no stored rows")
                future = plots.submit(fit_id, record.result_json, rows)
            # no database connection is held while waiting: 24 waiting requests would empty the pool
            await run_in_threadpool(session.close)
            if not await plots.wait(future):
                if page_views.wants_page(request):  # the report's "Open the PNG" link: a page that reloads, not JSON
                    drawing = page_views.error_page(
                        request, 202, "Drawing the plot", f"This plot is being drawn; this page reloads every "
                        f"{RETRY_AFTER_S} s and shows it when it is ready.", refresh=RETRY_AFTER_S)
                    drawing.headers["Retry-After"] = str(RETRY_AFTER_S)
                    return drawing
                return JSONResponse({"detail": "the plot is being drawn; retry"}, 202,
                                    headers={"Retry-After": str(RETRY_AFTER_S)})
            got = plots.outcome(future) or await run_in_threadpool(plots.cached, fit_id, name, page)
        except RenderFailed as exc:
            _plot_failed(fit_id, exc)
    if got is None:  # deleted while it was drawn
        raise not_found(fit_id)
    if isinstance(got, str):
        raise HTTPException(404, detail=f"Plot not available for this fit: {got}")
    return Response(got, media_type="image/png")


def _plot_failed(fit_id: str, exc: RenderFailed) -> NoReturn:
    log.warning("503 for fit %s's plot: %s", fit_id, exc)  # the server's log says why, not only the client
    raise HTTPException(503, detail=f"the plot could not be drawn now ({exc}); retry",
                        headers={"Retry-After": str(RETRY_AFTER_S)}) from None
