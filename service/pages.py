"""The web pages: the recommend calculator (``/``), the fit registry (``/fits``) and a report per fit
(``/fits/{id}``).

Server-rendered Jinja2 templates (service/templates) with a little JavaScript (service/static), every asset in
the package and a Content-Security-Policy of ``'self'``: a page fetches nothing from the network. Each page
calls the use case of its ``/v1`` route (``usecases.recommend``, ``usecases.fit_sweep``), so a page and the API
give the same numbers.

Errors are pages: a bad form field re-renders the form with the field marked and its message (422), an
unknown fit is a 404 page, never a stack trace. Access follows the API's model: with protected reads every
page is a 401 page (a browser sends no bearer token; use the API). An upload is a write: it passes the same
Fetch-Metadata check as ``POST /v1/fits`` (a same-origin form post passes) and, with ``ABCSCALE_API_TOKEN``
set, needs that token in the form's token field.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from abcscale import usecases
from abcscale.schemas.api import AnalyticRecommend, FitOptions, RecommendRequest
from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization, WeightDecayMode, mup_wrapper
from abcscale.schemas.errors import error_text, validation_message
from abcscale.schemas.fit import FitResult, GroupFit, max_size, value_text
from abcscale.schemas.groups import Form, Role
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.service import crud
from abcscale.service.config import Settings
from abcscale.service.deps import cross_origin
from abcscale.service.http import describe
from abcscale.service.plots import PAGE, plot_pages, plot_url
from abcscale.usecases.fits import MAX_COVARIATE_VALUE, SetupGiven, unreliable
from abcscale.usecases.recommend import group_text, groups_of

if TYPE_CHECKING:
    import pandas as pd

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
#: each plot's caption; "width" is the fit's size word (a parameter-count fit's plots are against its size)
PLOTS = {"loss_vs_lr": "Final loss against learning rate, one curve per width, with each width's fitted optimum",
         "lr_vs_width": "Optimal learning rate against width on log axes: the fitted power law, its band and "
                        "theory's slope",
         "loss_vs_width": "Best loss against width with the fitted loss law"}
# nothing but this origin: no script, style, font or image from the network, no inline script, no framing
CSP = ("default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
CHOICES = {"parameterization": [p.value for p in Parameterization], "optimizer": [o.value for o in Optimizer],
           "lr_mode": [m.value for m in LrMode], "form": [f.value for f in Form],
           "epsilon_mode": [m.value for m in EpsilonMode], "weight_decay_mode": [m.value for m in WeightDecayMode]}
#: what a group's per-layer split needs and a table may not have: the report's predict form asks for them
HINTS = ("parameterization", "optimizer", "lr_mode")
#: what the calculator shows before anything is typed: the README's curl example
DEFAULTS = {"source": "theory", "parameterization": "mup", "optimizer": "adam", "alignment": "full",
            "lr_mode": "per_layer", "base_width": "256", "base_lr": "0.003", "width": "4096", "form": "abc",
            "epsilon_mode": "", "weight_decay_mode": ""}  # "": not given (the default, or a fit's runs' mode)
CALC_FIELDS = (*DEFAULTS, "gamma", "init_scale", "multiplier", "epsilon", "weight_decay", "fit_id", "group")
GENERAL = "general"  # the key of an error that no one field caused
UPLOAD_FIELDS = ("name", "size_col", "lr_col", "loss_col", "seed_col", "group_cols", "target_width", "n_boot",
                 # "more options": the rest of POST /v1/fits' mapping and settings, as its form fields spell them
                 "diverged_col", "covariates", "at", "constant_cols", "derive", "size_kind", "confidence_level",
                 "blowup", "base_width",
                 # the theory setup of a table without those columns, the bootstrap's seed and strict
                 "parameterization", "optimizer", "lr_mode", "alignment", "seed", "strict", "drop_cut_short")
#: the upload form's integer options
INT_OPTIONS = ("target_width", "base_width", "n_boot", "seed")
#: the upload form's "More options", opened when one of them was given or is in error
MORE_OPTIONS = UPLOAD_FIELDS[UPLOAD_FIELDS.index("diverged_col"):]


#: the form fields that take names, comma-separated ('D,batch_size'), and the one of NAME=VALUE pairs
NAME_LISTS = ("group_cols", "constant_cols", "covariates", "derive")


def form_value(key: str, value: str) -> Any:
    """A form field's text as FitOptions takes it, or the JSON body's value where the text is one: a list of names
    for a list field (``["D","batch_size"]`` was read as two columns named '["D"' and '"batch_size"]', a review),
    an object for ``at``. ValueError saying both spellings for JSON that is not such a value."""
    from abcscale.service.http import loads_strict

    text = value.strip()
    if key in NAME_LISTS and text.startswith("["):
        try:
            names = loads_strict(text, max_depth=2)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("expected names, comma-separated ('D,batch_size'), or a JSON list of column names "
                             "([\"D\", \"batch_size\"])")
        return names
    if key == "at" and text.startswith("{"):
        try:
            pairs = loads_strict(text, max_depth=2)
        except ValueError:
            pairs = None
        if not isinstance(pairs, dict):
            raise ValueError("expected NAME=VALUE pairs ('D=1e10,batch_size=64') or a JSON object ({\"D\": 1e10})")
        return pairs
    return value


def _fmt(x: Any, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}g}" if isinstance(x, float) else str(x)


templates.env.filters["g"] = _fmt
templates.env.filters["group_text"] = group_text  # a report's link to its group in the calculator
templates.env.globals["vector_role"] = Role.vector  # a mup setup's fixed group: the vector group's where not its own
templates.env.globals["mup_wrapper"] = mup_wrapper  # the mup note's optimizer: MuAdam, MuSGD, ... (as the CLI's)


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    return response


def error_page(request: Request, status: int, title: str, message: str, links: bool = True,
               refresh: int | None = None) -> Response:
    """An error as a page; ``links`` back to the pages (not where every page is closed too); ``refresh``: seconds
    after which the browser asks again (a plot still being drawn)."""
    return render(request, "error.html", status, title=title, message=message, links=links, refresh=refresh)


def wants_page(request: Request) -> bool:
    """Whether a browser navigated here (its Accept names HTML): a link followed from a page, not an API call."""
    return "text/html" in request.headers.get("accept", "")


def _closed(request: Request) -> Response | None:
    """The 401 page when reads are protected: a page cannot send the bearer token every /v1 read needs."""
    settings: Settings = request.app.state.settings
    if not settings.reads_protected:
        return None
    return error_page(request, 401, "Reads are protected", "This service protects its reads with a token "
                      "(ABCSCALE_READ_TOKEN or ABCSCALE_PROTECT_READS), which a web page cannot send. Use the "
                      "API at /v1 with 'Authorization: Bearer <token>' (see /docs).", links=False)


def _session(request: Request) -> Session:
    return request.app.state.sessionmaker()


# --- the calculator ------------------------------------------------------------------------------------------

def _field_of(loc: tuple[Any, ...]) -> str:
    """The calculator's field for an error's ``loc`` (``("base", "beta")`` is the base LR field)."""
    parts = [str(p) for p in loc if isinstance(p, str)]
    if len(parts) > 1 and parts[0] in ("base", "constants"):
        parts = parts[1:] if parts[1] not in ("width", "beta") else [f"base_{parts[1]}"]
    name = {"beta": "base_lr", "base_beta": "base_lr"}.get(parts[0], parts[0]) if parts else GENERAL
    return name if name in CALC_FIELDS else GENERAL


def _errors_of(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors(include_url=False):
        out.setdefault(_field_of(e["loc"]), error_text(e))
    return out


#: what the calculator reads as a number: ASCII, without Python's digit separators (int() reads "1_000" and
#: full-width digits; the report's width box and the API do not)
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)
#: the longest number the calculator reads (a width of 2**40 has 13 digits; int() refuses 4,300)
_MAX_NUMBER_CHARS = 64


def whole_text(text: str) -> str:
    """``text`` as an integer's digits where it writes a whole number as a float ("4096.0", "4e3", "2.56e2"), as the
    CLI and the JSON API read an integer option; else ``text`` unchanged (a review: the calculator refused "4096.0"
    as "not a whole number" and the upload form "4e3"). Read exactly (``Decimal``, not a float's 53 bits), however
    large: "1e30" is a whole number past the field's bound, which its check then names (a review: it was called
    "not a whole number" / "not a valid integer"); one of more than ``_MAX_WHOLE_DIGITS`` digits ("1e5000", whose
    float is inf) reads as a number of that many, past every bound, not as its thousands of digits."""
    t = text.strip()
    if len(t) > _MAX_NUMBER_CHARS or _INT.fullmatch(t) or not _FLOAT.fullmatch(t):
        return text
    try:
        d = Decimal(t)
    except InvalidOperation:
        return text
    if not d.is_finite():
        return text
    if d.is_zero():  # "0e400": its adjusted() is 400, read as 10^400 (a code review)
        return "0"
    if d.adjusted() >= _MAX_WHOLE_DIGITS:  # a literal of <= 64 characters this large is a whole number
        return ("-" if d < 0 else "") + "1" + "0" * _MAX_WHOLE_DIGITS
    return str(int(d)) if d == d.to_integral_value() else text


#: the digits a whole number read from a float's spelling keeps (more than any bound, fewer than int()'s 4,300)
_MAX_WHOLE_DIGITS = 400


def _number(values: Mapping[str, str], name: str, kind: type, errors: dict[str, str]) -> Any:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    text = whole_text(raw) if kind is int and len(raw) <= _MAX_NUMBER_CHARS else raw
    if len(raw) > _MAX_NUMBER_CHARS or not (_INT if kind is int else _FLOAT).fullmatch(text):
        errors[name] = f"expected {'a whole number' if kind is int else 'a number'}, got {raw[:40]!r}"
        return None
    value = kind(text)
    if isinstance(value, float) and not math.isfinite(value):
        errors[name] = f"expected a finite number, got {raw[:40]!r}"
        return None
    return value


def _constants(values: Mapping[str, str], errors: dict[str, str]) -> tuple[Constants | None, bool]:
    """The constants the form gives, and whether any was typed (a fit fills the others)."""
    given: dict[str, Any] = {}
    for name in ("gamma", "init_scale", "multiplier"):
        if text := values.get(name, "").strip():
            try:
                given[name] = PerLayer.parse(text)
            except ValidationError as exc:  # a number out of range: one line, the bound short (1e-30)
                errors[name] = f"'embedding,hidden,readout' or one number ({validation_message(exc)})"
            except ValueError as exc:
                errors[name] = f"'embedding,hidden,readout' or one number ({exc})"
    for name in ("epsilon", "weight_decay"):
        if (value := _number(values, name, float, errors)) is not None:
            given[name] = value
    for name in ("epsilon_mode", "weight_decay_mode"):
        # the selects' first option, "", gives none: a fit's runs' mode holds (a select that always sent per_layer set
        # it over a constant-mode fit's once anything was typed, every epsilon 16-256x off: a code review); a mode
        # chosen is given, alone too (a review: one chosen alone was dropped on a fit's answer)
        if text := values.get(name, "").strip():
            given[name] = text
    typed = bool(given)
    try:
        return Constants.model_validate(given), typed
    except ValidationError as exc:
        errors.update({k: v for k, v in _errors_of(exc).items() if k not in errors})
        return None, typed


def calculator_request(values: Mapping[str, str], fit_setup: Mapping[str, str] | None = None
                       ) -> tuple[RecommendRequest | None, dict[str, str]]:
    """The typed request for the calculator's fields (as ``usecases.recommend_request`` builds the CLI's), or the
    errors by field. From a fit, the group field and ``fit_setup`` (the parameterization, optimizer and LR mode the
    user chose for it, never the theory form's defaults) select the group and give a table without those columns
    its setup, as the same fields of ``POST /v1/recommend`` do."""
    errors: dict[str, str] = {}
    source = values.get("source", "theory").strip().lower() or "theory"
    from_fit = source == "fit"
    if source not in ("theory", "fit"):  # answered as theory before, silently (a review: /?source=bogus)
        errors["source"] = f"theory or fit, got {values.get('source', '')[:40]!r}"
    width = _number(values, "width", int, errors)
    constants, typed = _constants(values, errors)
    if from_fit and not values.get("fit_id", "").strip():
        errors["fit_id"] = "choose a stored fit"
    analytic: dict[str, Any] = {k: (fit_setup or {}).get(k, "").strip() or None for k in HINTS} if from_fit else {
        "parameterization": values.get("parameterization") or None, "optimizer": values.get("optimizer") or None,
        "alignment": values.get("alignment", "").strip() or None, "lr_mode": values.get("lr_mode") or None,
        "base_width": _number(values, "base_width", int, errors), "beta": _number(values, "base_lr", float, errors)}
    if width is None and "width" not in errors:
        errors["width"] = "required: the width to recommend for"
    # a number that did not read stands in as a valid one, so the request's checks name every other bad field
    # (with beta missing the request was read as a fit's and said nothing of the width)
    for key, field, stand_in in (("base_width", "base_width", 1), ("beta", "base_lr", 1.0)):
        if not from_fit and analytic[key] is None and field in errors:
            analytic[key] = stand_in
    asked: dict[str, Any] = {
        "width": 1 if width is None else width, "form": values.get("form") or None,
        "constants": constants if typed or not from_fit else None,
        "fit_id": (values.get("fit_id", "").strip() or "-") if from_fit else None,
        "group": (values.get("group", "").strip() or None) if from_fit else None, **analytic}
    # every field's error at once, not those of the typed numbers first and the request's on the next try
    req, more = _recommend_request(asked)
    # the use case reads the alignment and the group before the request's model: a bad one was all the page said,
    # hiding a bad parameterization, optimizer, widths or form (a review); asked again without it for the others
    if early := [k for k in ("alignment", "group") if k in more and asked.get(k) is not None]:
        more = {**_recommend_request({**asked, **dict.fromkeys(early)})[1], **more}
    if more:
        if from_fit:  # the fit's setup fields are the fit fieldset's own
            more = {f"fit_{k}" if k in HINTS else k: v for k, v in more.items()}
        errors |= {k: v for k, v in more.items() if k not in errors}  # a number not read: its own error
        return None, errors
    if errors:
        return None, errors
    return req, {}


def _recommend_request(asked: Mapping[str, Any]) -> tuple[RecommendRequest | None, dict[str, str]]:
    """``usecases.recommend_request`` on the calculator's fields, or its errors by field."""
    try:
        return usecases.recommend_request(**asked), {}
    except ValidationError as exc:
        return None, _errors_of(exc)


def _needs(text: str) -> list[str]:
    """The setup keys (``HINTS``) a use case's message asks for: a fit's table lacks those columns."""
    if "has no lr_mode column" in text:
        return ["lr_mode"]
    if "per-layer settings need" in text:
        asked = text.partition("need the group's ")[2].partition(":")[0]
        return [k for k in HINTS if k in asked]
    return []


def _answer(request: Request, req: RecommendRequest) -> tuple[Recommendation | None, dict[str, str]]:
    """``usecases.recommend``'s answer, as ``POST /v1/recommend`` gives it, or the errors by field."""
    fit = None
    if not isinstance(req, AnalyticRecommend):
        with _session(request) as session:
            record = crud.get_fit(session, fit_id=req.fit_id)
            if record is None:
                return None, {"fit_id": f"no stored fit has the id {req.fit_id!r}"}
            fit = crud.fit_result(record)
    try:
        return usecases.recommend(req, fit), {}
    except ValueError as exc:  # a message "weight_decay: ..." names its field
        text = describe(exc)
        lacking = [k for k in HINTS if getattr(req, k, None) is None and all(k not in g.group for g in fit.groups)
                   ] if fit is not None and _needs(text) else []
        if lacking:  # the fit fieldset's choice of the setup: all it lacks at once
            return None, {f"fit_{k}": "the fit's table has no such column: choose it (the per-layer settings need "
                          "it)" for k in lacking}
        named, _, rest = text.partition(": ")
        if named in CALC_FIELDS and rest:
            return None, {f"fit_{named}" if fit is not None and named in HINTS else named: rest}
        return None, {GENERAL if fit is None else "group" if "group" in text else "fit_id": text}


def exports(req: RecommendRequest, rec: Recommendation) -> dict[str, str]:
    """The copy-paste forms of the answer: the groups multiplier-free and for microsoft/mup (the JSON of
    ``--form``), and the PyTorch and optax snippets of ``abcscale recommend --format torch|optax``."""
    from abcscale.usecases.snippets import snippet  # imported here: a page without exports does not load it

    assert rec.groups is not None  # every answer of the use case carries its groups
    mode = rec.epsilon_mode or (req.base.epsilon_mode if isinstance(req, AnalyticRecommend)
                                else (req.constants or Constants()).epsilon_mode)  # a fit's runs' where not given
    # the base config where the answer has one: the fixed and vector roles' numbers exact, as rec.groups shows them
    # beside the downloads (7.499999999999999e-10 against 7.5e-10, a code review); a fit's answer has none
    base = req.base if isinstance(req, AnalyticRecommend) else None
    return {"Multiplier-free groups (JSON)": groups_of(rec, Form.multiplier_free, req.rules, mode,
                                                       base).model_dump_json(indent=2),
            "microsoft/mup groups (JSON)": groups_of(rec, Form.mup, req.rules, mode, base).model_dump_json(indent=2),
            "PyTorch snippet": snippet(rec.groups, "torch", rec.warnings),
            "optax snippet": snippet(rec.groups, "optax", rec.warnings)}


def _fits_menu(request: Request, current: str | None = None) -> list[tuple[str, str]]:
    """The newest 100 fits, and the one the page is about (a shared link's older fit stays selectable)."""
    with _session(request) as session:
        page, _ = crud.list_fits(session, skip=0, limit=100)
        if current and all(r.id != current for r in page) and (record := crud.get_fit(session, fit_id=current)):
            page = [*page, record]
        return [(r.id, f"{r.name or 'unnamed'} ({r.created_at:%Y-%m-%d %H:%M}, {r.id[:8]})") for r in page]


def _query(request: Request) -> tuple[dict[str, str], dict[str, str]]:
    """The calculator's fields as the query gives them, and the fit's setup (``HINTS``). Both fieldsets name
    them alike; the script disables the one of the other source, and without it both are sent, the theory
    form's first: a fit takes the last of each, the theory form the first."""
    params = request.query_params
    query = {k: params.getlist(k)[0] for k in params.keys() if k in CALC_FIELDS}
    if "source" in query:  # " fit" or "Fit" answered from the fit but drew the theory radio checked (a code review)
        query["source"] = query["source"].strip().lower()
    setup = {k: params.getlist(k)[-1] for k in HINTS if k in params}
    if query.get("source") != "fit":
        return query, {}
    # sent once with a fit, a setup field is the fit fieldset's (the script disabled the theory one): it is not the
    # theory form's, whose lists came back with nothing selected, so the browser showed standard + sgd + global and
    # the next theory answer was for a setup nobody chose (a review)
    return {k: v for k, v in query.items() if not (k in HINTS and len(params.getlist(k)) == 1)}, setup


#: the calculator's lists and the enum that reads each (aliases, any letter case)
_LISTS = {"parameterization": Parameterization, "optimizer": Optimizer, "lr_mode": LrMode, "form": Form,
          "epsilon_mode": EpsilonMode, "weight_decay_mode": WeightDecayMode}


def _canonical(values: dict[str, str]) -> dict[str, str]:
    """The lists' values by their canonical names (``mf`` as mean_field, ``Lion`` as lion, ``plain`` as
    multiplier_free): the answer read the alias, but the form drawn under it selected no option, so a browser showed
    the first (standard, sgd) and the next submit answered a setup nobody chose (a review). A value no enum reads
    stays as typed, for its error."""
    out = dict(values)
    for key, enum in _LISTS.items():
        if (text := out.get(key)) and text not in CHOICES[key]:
            try:
                out[key] = enum.parse(text.strip()).value
            except ValueError:
                pass
    return out


@router.get("/")
async def calculator(request: Request) -> Response:
    if (closed := _closed(request)) is not None:
        return closed
    query, setup = _query(request)
    values = _canonical({**DEFAULTS, **query} if query else dict(DEFAULTS))
    if not values.get("alignment", "").strip():  # answered as full: the form says so (it came back empty, a review)
        values["alignment"] = DEFAULTS["alignment"]
    setup = _canonical(setup)
    req, errors = calculator_request(values, setup)
    rec = None
    if req is not None:
        rec, errors = await run_in_threadpool(_answer, request, req)
    fits = await run_in_threadpool(_fits_menu, request, values.get("fit_id", "").strip() or None)
    return render(request, "calculator.html", 422 if errors else 200, values=values, errors=errors, rec=rec,
                  exports=exports(req, rec) if req is not None and rec is not None else {}, choices=CHOICES,
                  fits=fits, setup=setup, hints=HINTS)


# --- the registry and the upload -----------------------------------------------------------------------------

def group_label(g: GroupFit) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in g.group.items()) or "all rows"


def verdict(g: GroupFit) -> str:
    """The theory check in words, its numbers as the report's exponent line rounds them (``+.3f``: the same
    interval read [-0.0123, ...] there and [-0.012, ...] here, a review)."""
    e, t = g.exponent, g.theory_exponent
    if e is None:
        return "not fitted across widths"
    if t is None or g.consistent is None:
        return "no theory exponent to compare with"
    level = f"{100 * e.ci.confidence_level:g}%"
    inside = "inside" if g.consistent else "outside"
    if g.theory_span is not None:  # a global LR: theory's exponent lies between its full- and no-alignment values
        lo, hi = min(g.theory_span), max(g.theory_span)
        reach = "reaches into" if g.consistent else "lies outside"
        return (f"{'consistent' if g.consistent else 'inconsistent'} with theory: the fitted {level} interval "
                f"[{e.ci.low:+.3f}, {e.ci.high:+.3f}] {reach} its exponents from {lo:+.3f} to {hi:+.3f} (full and "
                "no alignment)")
    return (f"{'consistent' if g.consistent else 'inconsistent'} with theory: its exponent {t:+.3f} lies {inside} "
            f"the fitted {level} interval [{e.ci.low:+.3f}, {e.ci.high:+.3f}]")


def _listing(request: Request, page: int) -> tuple[list[tuple[Any, FitResult | None]], int]:
    with _session(request) as session:
        records, count = crud.list_fits(session, skip=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        return [(r, _readable(r)) for r in records], count


def _readable(record: Any) -> FitResult | None:
    """The record's result, or None when it no longer reads: the registry lists it without its groups."""
    try:
        return crud.fit_result(record)
    except crud.UnreadableFit:
        return None


async def _registry(request: Request, status: int = 200, page: int = 1, values: Mapping[str, str] | None = None,
                    errors: Mapping[str, str] | None = None) -> Response:
    fits, count = await run_in_threadpool(_listing, request, page)
    if page > 1 and not fits:  # a stale link past the end: not "no fits stored yet"
        last = max(1, math.ceil(count / PAGE_SIZE))
        return error_page(request, 404, "No such page", f"The registry has {count} fit{'s' * (count != 1)} on "
                          f"{last} page{'s' * (last != 1)}; page {page} is past its end (see /fits?page={last}).")
    settings: Settings = request.app.state.settings
    return render(request, "fits.html", status, fits=fits, count=count, page=page,
                  pages=max(1, math.ceil(count / PAGE_SIZE)), values=values or {}, errors=errors or {},
                  needs_token=settings.api_token is not None, group_label=group_label, verdict=verdict,
                  choices=CHOICES, more_open=any((values or {}).get(k, "").strip() or k in (errors or {})
                                                 for k in MORE_OPTIONS))


@router.get("/fits")
async def registry(request: Request) -> Response:
    if (closed := _closed(request)) is not None:
        return closed
    if len(pages := request.query_params.getlist("page")) > 1:  # neither silently wins, as in the API (a review)
        return error_page(request, 400, "No such page", f"page given {len(pages)} times; give it once")
    text = request.query_params.get("page", "1")
    page = _whole(text)
    if page is None or not 1 <= page <= MAX_PAGE:
        return error_page(request, 400, "No such page", f"page must be a whole number from 1 to {MAX_PAGE}, got "
                          f"{text[:40]!r}")
    return await _registry(request, page=page)


#: The last page a registry URL may ask for (the API's ``skip`` stops at 2**31 rows too).
MAX_PAGE = 2**31 // PAGE_SIZE


def _whole(text: str) -> int | None:
    """A query value of ASCII digits (at most 15: "²" is a digit to ``str.isdigit``, and a 5,000-digit one
    is past ``int``'s limit) as an int, else None."""
    return int(text) if re.fullmatch(r"[0-9]{1,15}", text) else None


def _token_error(settings: Settings, given: str) -> tuple[int, str] | None:
    """The status and message when the write token is configured and not (rightly) given, as the API's 401/403."""
    if settings.api_token is None:
        return None
    if not given:
        return 401, "this service needs its write token to store a fit: type it here"
    if not secrets.compare_digest(given.encode(), settings.api_token.get_secret_value().encode()):
        return 403, "not this service's write token"
    return None


def _fit_upload(settings: Settings, data: bytes, filename: str,
                options: FitOptions) -> tuple[FitResult, pd.DataFrame] | dict[str, str]:
    """``usecases.fit_sweep`` on the uploaded table, as ``POST /v1/fits`` runs it (the fit and its rows), or the
    errors by field."""
    from abcscale.fitting import TableError, read_table
    from abcscale.fitting.reading import TableTooLarge, table_format

    try:
        df = read_table(data, table_format(filename), max_rows=settings.max_rows, max_cells=settings.max_cells,
                        name=filename)
        fit = usecases.fit_sweep(df, options)
        if options.strict and (bad := unreliable(fit)):  # refused, so not stored, as POST /v1/fits
            return {"strict": "unreliable prediction: " + "; ".join(f"{group}: {why.removeprefix('unreliable: ')}"
                                                                 for group, why in bad)}
        return fit, df
    except TableTooLarge as exc:
        return {"file": f"{exc}; the cap is set by ABCSCALE_{exc.cap.upper()}"}
    except TableError as exc:
        errors: dict[str, str] = {}
        for problem in exc.problems:
            field = problem_field(problem, options)
            errors[field] = f"{errors[field]}; {problem}" if field in errors else problem
        # rows are counted as pandas counts them, from 0 after the header: said where a message names one, as a
        # reader of the file counts its lines from 1 (a review: "row 3" was the file's line 5)
        return {k: f"{v} {ROWS_COUNTED}" if re.search(r"\brows?(\(s\))? \d", v) else v for k, v in errors.items()}
    except SetupGiven as exc:  # each setup option the table has as a column, at its field
        return dict(exc.fields)
    except ValueError as exc:  # "at: needs a target size ...": at the option it names (a review: it marked none)
        field, rest = option_of(str(exc))
        return {field: rest} if field in UPLOAD_FIELDS else {GENERAL: str(exc)}


def option_of(message: str) -> tuple[str, str]:
    """The fit option a use case's message names first ("at: needs a target size ..."), and the rest of it."""
    field, sep, rest = message.partition(": ")
    return (field, rest) if sep and field in FitOptions.model_fields else ("", message)


#: how the upload page says a table's row numbers count
ROWS_COUNTED = "(rows count from 0 as pandas reads the table: row 0 is the first data row, after a CSV's header)"


#: the upload form's fields that name a column of the table
_COLUMN_FIELDS = ("size_col", "lr_col", "loss_col", "seed_col", "diverged_col")
_LIST_FIELDS = ("covariates", "group_cols", "constant_cols", "derive")
#: the roles a "cannot be both" problem names, in its words (a field's own name, or a list option's kind)
_BOTH_ROLES = {"a covariate": ("covariates",), "a group column": ("group_cols",),
               "a swept constant": ("constant_cols",), "the size/LR/loss column": ("size_col", "lr_col", "loss_col")}
_BOTH_WORDS = re.compile("|".join([*map(re.escape, _BOTH_ROLES), *_COLUMN_FIELDS]))
#: a problem of a derived column's spec (fitting.table.derive_columns), the option named first
_DERIVE_PROBLEM = re.compile(r"`?derive`?(?:: | ')")


def problem_field(problem: str, options: FitOptions, *, roles_only: bool = False) -> str:
    """The form field a table problem belongs to: the column role it names ("(the lr_col column)") or whose
    column it is about ("lr: not a number ..."); else the file. ``POST /v1/fits`` puts a missing column's error at
    its field too (``roles_only``), and the column's data problems at the table's."""
    if (m := re.search(r"\(the (\w+) column\)", problem)) and m.group(1) in _COLUMN_FIELDS:
        return m.group(1)
    # one column given two roles ("seed: cannot be both a covariate and the seed_col column"): at the first of the
    # two the request set, not the table's (a review: `covariates: ["seed"]` was said at `rows`)
    if " cannot be both " in problem:
        named = [f for word in _BOTH_WORDS.findall(problem.partition(" cannot be both ")[2])
                 for f in _BOTH_ROLES.get(word, (word,))]
        if given := [f for f in named if f in options.model_fields_set]:
            return given[0]
    # a column a list option names (covariates, group_cols, ...) that the table lacks: at that option, not the
    # table's (a review: a missing covariate's 422 pointed at `rows`)
    if (m := re.search(r"\(named in `?(\w+)", problem)) and m.group(1) in _LIST_FIELDS:
        return m.group(1)
    # a derived column's own problem ("derive: 'a=b/c:x' is not NAME=A/B ...", "derive: width is already a column"):
    # at the option, not the table's (a review), unless a role's column is named derive and it is that column's
    if _DERIVE_PROBLEM.match(problem) and options.derive and "derive" not in (
            getattr(options.mapping(), f, None) for f in _COLUMN_FIELDS):
        return "derive"
    if roles_only:  # the API: a problem with the column's data ("not a number in row 3") is the table's
        return "file"
    column = problem.partition(": ")[0]
    mapping = options.mapping()
    for field in _COLUMN_FIELDS:
        if getattr(mapping, field, None) == column:
            return field
    return "file"


@router.post("/fits")
async def upload(request: Request) -> Response:
    """Fit and store an uploaded table, then show its report (303); a bad field re-renders the form."""
    if (closed := _closed(request)) is not None:
        return closed
    settings: Settings = request.app.state.settings
    if (why := cross_origin(request, settings.cors_origins)) is not None:
        return error_page(request, 403, "Cross-origin write refused", f"A page of another site tried to store a "
                          f"fit here ({why}); only this service's own pages, or origins listed in "
                          "ABCSCALE_CORS_ORIGINS, may write.")
    try:
        form = await request.form(max_files=1, max_fields=32)
    except MultiPartException as exc:
        return error_page(request, 400, "Unreadable upload", f"The form could not be read: {exc}")
    values: dict[str, str] = {}
    for k, v in form.multi_items():  # a field given twice (covariates=D, covariates=B) is a list: joined, not the last
        if k in UPLOAD_FIELDS and isinstance(v, str):
            values[k] = f"{values[k]},{v}" if k in values and v.strip() else values.get(k) or v
    if unknown := sorted({k for k in form.keys() if k not in (*UPLOAD_FIELDS, "file", "token")}):
        # as POST /v1/fits answers 422 extra_forbidden: a misspelt option must not be dropped unread
        return await _registry(request, 422, values=values, errors={
            GENERAL: f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:5])}: the form takes "
                     f"{', '.join(UPLOAD_FIELDS)}"})
    token = form.get("token")
    if (refused := _token_error(settings, token if isinstance(token, str) else "")) is not None:
        return await _registry(request, refused[0], values=values, errors={"token": refused[1]})
    given: dict[str, Any] = {}
    for k, v in values.items():  # a list field's or `at`'s JSON, as POST /v1/fits takes it
        if v.strip():
            try:
                given[k] = form_value(k, v)
            except ValueError as exc:
                return await _registry(request, 422, values=values, errors={k: str(exc)})
    try:  # an empty field keeps the sweep-table contract's default; an integer option takes 4e3 as the API does
        options = FitOptions.model_validate({k: whole_text(v) if k in INT_OPTIONS else v
                                             for k, v in given.items()}, context={"form": True})
    except ValidationError as exc:
        # a check across fields (`at` naming no covariate) has no location: the form's general error
        errors = {str(e["loc"][0]) if e["loc"] else GENERAL: error_text(e) for e in exc.errors(include_url=False)}
        return await _registry(request, 422, values=values, errors=errors)
    if (why := crud.name_problem(options.name)) is not None:  # before the fit: it could not be stored
        return await _registry(request, 422, values=values, errors={"name": why})
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _registry(request, 422, values=values, errors={"file": "choose a CSV or parquet file"})
    data = await upload.read()
    got = await run_in_threadpool(_fit_upload, settings, data, upload.filename, options)
    if isinstance(got, dict):
        return await _registry(request, 422, values=values, errors=got)
    fit, df = got
    with _session(request) as session:
        fit_id = await run_in_threadpool(crud.create_fit, session, fit, df, name=options.name)
    return RedirectResponse(f"/fits/{fit_id}", status_code=303)


# --- the report ----------------------------------------------------------------------------------------------

def plot_figures(fit_id: str, fit: FitResult) -> list[dict[str, str]]:
    """One figure per page of each plot (a fit of many groups has several), with its URL, id and caption."""
    n, size = len(fit.groups), _size_word(fit)
    pages = plot_pages(n)
    figures = []
    for name, alt in PLOTS.items():
        alt = alt.replace("width", size)
        for k in range(1, pages + 1):
            part = "" if pages == 1 else f" (page {k} of {pages}: groups {(k - 1) * PAGE + 1}-{min(k * PAGE, n)})"
            figures.append({"url": plot_url(fit_id, name, k), "id": f"plot-{name}" + ("" if k == 1 else f"-{k}"),
                            "alt": alt + part})
    return figures


def _band(lr: float, safe_lr: float | None, ci: Any, ci68: Any, ci95: Any, warnings: list[str], label: str,
          layers: list[tuple[str, float]] | None = None, lr_layer: str | None = None) -> dict[str, Any]:
    """What the report shows of a prediction, whichever kind made it; ``label`` says where it is, ``what`` what its
    LR is (the swept LR, or one layer's own where the fit measured that layer's LR column). ``ci``: the band at the
    fit's own level, shown beside the 68% and 95% ones where it is neither (the page showed those two alone where
    the calculator gave the fit's 90%: a review)."""
    what = "the swept LR" if lr_layer is None else f"the {lr_layer} layer's own LR"
    return {"lr": lr, "safe_lr": safe_lr, "ci": ci, "ci68": ci68, "ci95": ci95, "warnings": warnings,
            "label": label, "layers": layers, "what": what}


def prediction_law(g: GroupFit, size_word: str = "width") -> dict[str, Any] | None:
    """The law the report's predictions use (``g.law``: the predict box, the upload's, the calculator's), where it
    is not the headline's free fit of the widths: its exponent, its constant C (LR* at the base size) and how it was
    fitted. The headline showed the free fit alone, so one width had two LR*s on one page, neither said to be which
    (a review: 0.0083 by the headline's formula at 4096, 0.0022 in the box). None where the predictions use the
    free fit itself, or there is no law (no prediction at all)."""
    law = g.law
    if law is None or g.exponent is None:
        return None
    constant = 2.0 ** law.log2_constant
    if law.method == "free" and law.exponent == g.exponent.estimate and g.constant is not None and math.isclose(
            constant, g.constant, rel_tol=1e-9):
        return None
    if law.method == "theory_prior":
        how = (f"fitted with theory's exponent ({g.theory_text('+.3f')}) as a prior: with few {size_word}s it "
               "steadies the exponent, where the free fit follows their scatter")
    else:
        how = f"fitted as {law.method}"
    return {"exponent": law.exponent, "constant": constant, "base_width": law.base_width, "how": how}


templates.env.globals["prediction_law"] = prediction_law


def _size_word(fit: FitResult) -> str:
    return "width" if fit.mapping.size_kind == "width" else "parameter count"


def _joint_band(law: Any, p: Any) -> dict[str, Any]:
    where = ", ".join([f"{law.size_col} {p.size:g}", *(f"{n} {v:g}" for n, v in p.at.items())])
    return _band(p.lr, None, p.ci, p.ci68, p.ci95, p.warnings, where)  # a joint law has no safe side (no basin)


def stored_joint(law: Any) -> dict[str, Any] | None:
    """The joint prediction the upload asked for (its target size and ``at``), as the fit stored it."""
    return None if law.prediction is None else _joint_band(law, law.prediction)


def stored_band(fit: FitResult, g: GroupFit) -> dict[str, Any] | None:
    """The prediction the upload asked for (its target width), as the fit stored it."""
    p = g.prediction
    if p is None:
        return None
    layers = [(s.layer.value, s.lr) for s in p.layers] if p.layers else None
    return _band(p.lr, p.safe_lr, p.ci, p.ci68, p.ci95, p.warnings, f"{_size_word(fit)} {p.width}", layers,
                 p.lr_layer)


def _prediction(fit: FitResult, values: Mapping[str, str]
                ) -> tuple[int | None, dict[str, Any] | None, dict[str, str]]:
    """The group asked about, its prediction at the typed size, or the problems by field (``width`` or the
    setup a table without those columns must choose). A width fit's prediction carries the per-layer LRs
    (``usecases.recommend_from_fit``); a parameter-count fit's is the fitted LR alone (per-layer settings scale
    with the width)."""
    from abcscale.fitting import predict_group

    group, text = _whole(values.get("group", "")), values.get("width", "").strip()
    if group is None or group >= len(fit.groups):
        return None, None, {}
    size = _whole(whole_text(text))  # 4096.0 and 1.6e9 as the API reads them
    bound, said = max_size(fit.mapping.size_kind)  # a parameter count's is 1e18, a width's 2**40
    if size is None or not 0 < size <= bound:
        return group, None, {"width": f"expected a whole number from 1 to {said}, got {text[:40]!r}"}
    g = fit.groups[group]
    if fit.mapping.size_kind != "width" or g.lr_layer is not None:
        # one layer's own LR (lr_col lr_hidden) has no per-layer split either: its band alone (a service review: the
        # box refused every width)
        try:
            p = predict_group(g, size, size_kind=fit.mapping.size_kind)
        except ValueError as exc:
            return group, None, {"width": describe(exc).removeprefix("width: ")}
        return group, _band(p.lr, p.safe_lr, p.ci, p.ci68, p.ci95, p.warnings, f"{_size_word(fit)} {size}",
                            lr_layer=p.lr_layer), {}
    # a table without these columns: the form asks for them (what the per-layer split needs)
    selector = dict(g.group)
    for key in HINTS:
        if key not in selector and (value := values.get(key, "").strip()):
            selector[key] = value
    try:
        rec = usecases.recommend_from_fit(fit, size, selector=selector)
    except ValueError as exc:
        text = describe(exc)
        if _needs(text) and (lacking := [k for k in HINTS if k not in selector]):  # all at once, not in rounds
            return group, None, {k: "choose it: the fit's table has no such column, and the per-layer settings "
                                 "need it" for k in lacking}
        named = next((k for k in HINTS if text.startswith((f"{k}: ", f"unknown {k} "))), "width")
        return group, None, {named: text.removeprefix(f"{named}: ")}
    assert rec.band is not None  # a fit's answer carries its band
    b = rec.band
    return group, _band(b.lr, b.safe_lr, b.ci, b.ci68, b.ci95, rec.warnings, f"width {size}",
                        [(s.layer.value, s.lr) for s in rec.layers]), {}


def _joint_prediction(fit: FitResult, values: Mapping[str, str]
                      ) -> tuple[int | None, dict[str, Any] | None, dict[str, str]]:
    """The joint law asked about (``joint``), its prediction at ``size`` and the covariates' ``at.NAME``
    values (one left empty sits at its base, said), or the problems by field: an ``at.NAME`` naming no covariate
    of the law (keyed by itself), a field given twice, a size out of its bound (a width fit's a whole number from 1
    to 2**40, as the group's width box reads it; a parameter count, like a covariate, a positive number up to
    1e30). A review: ``at.token`` for ``tokens`` was answered at the base with a 200, ``at.tokens`` given twice took
    the last, and a width fit predicted at 4096.5 and 1e30."""
    from abcscale.fitting.joint import predict_joint

    k = _whole(values.get("joint", ""))
    if k is None or k >= len(fit.joint):
        return None, None, {}
    law, problems, at = fit.joint[k], {}, {}
    covariates = law.names[1:]
    fields = {"size": law.size_col, **{f"at.{c}": c for c in covariates}}
    for field in values:
        if field.startswith("at.") and field not in fields:
            problems[field] = (f"{field[3:][:40]!r} is not a covariate of this law: its covariates are "
                               f"{', '.join(covariates) or 'none'}")
    size = math.nan
    for field, name in fields.items():
        text = values.get(field, "").strip()
        if (times := len(_all(values, field))) > 1:  # neither value silently wins (the last did)
            problems[field] = f"given {'twice' if times == 2 else f'{times} times'}; give it once"
            continue
        if not text and field != "size":
            continue
        if field == "size" and law.size_kind == "width":
            width = _whole(whole_text(text))  # 4096.0 and 4e3 as the group's width box reads them
            if width is None or not 0 < width <= MAX_SIZE:
                problems[field] = f"expected a whole number from 1 to 2**40, got {text[:40]!r}"
            else:
                size = float(width)
            continue
        # read as the calculator reads a number (no `1_000`, no full-width digits: float() takes both, a review)
        x = float(text) if len(text) <= _MAX_NUMBER_CHARS and _FLOAT.fullmatch(text) else math.nan
        if not x > 0:  # NaN too
            problems[field] = f"expected a positive number, got {text[:40]!r}"
        elif field == "size" and not (1 <= x <= (bound := max_size("params"))[0] and x.is_integer()):
            # a parameter count: a whole number up to the fit's bound, as the API and the CLI take it (session 63)
            problems[field] = f"expected a whole number from 1 to {bound[1]}, got {text[:40]!r}"
        elif not x <= MAX_JOINT_VALUE:  # 1e200, or 1e400 (inf)
            problems[field] = f"expected a positive number up to 1e30, got {text[:40]!r}"
        elif field == "size":
            size = x
        else:
            at[name] = x
    if problems:
        return k, None, problems
    try:
        p = predict_joint(law, size, at)
    except ValueError as exc:
        return k, None, {"size": describe(exc)}
    return k, _joint_band(law, p), {}


#: the largest width the report predicts at (the API's bound)
MAX_SIZE = 2**40
#: the largest parameter count or covariate value the report's joint box takes (a covariate's: the API's too)
MAX_JOINT_VALUE = MAX_COVARIATE_VALUE


def _all(values: Mapping[str, str], key: str) -> list[str]:
    """Every value a query gives ``key`` (a plain mapping holds one)."""
    getlist = getattr(values, "getlist", None)
    return list(getlist(key)) if getlist is not None else [values[key]] if key in values else []


def joint_formula(law: Any) -> str:
    """``LR* = C · (width / 64)^e · (tokens / 4e+08)^f`` for a joint law."""
    terms = " · ".join(f"({n} / {law.bases[n]:.4g})^{law.exponents[n].estimate:+.3f}" for n in law.names)
    return f"LR* = {law.constant:.3g} · {terms}"


def link_problems(fit: FitResult, values: Mapping[str, str]) -> dict[str, str]:
    """What a report link's ``group`` or ``joint`` names that the fit lacks. A hand-edited or stale link
    (``?group=7&width=4096`` on a fit of two groups) drew the report with no prediction and a 200, as if nothing
    had been asked (a review)."""
    problems = {}
    for key, count, what in (("group", len(fit.groups), "group"), ("joint", len(fit.joint), "joint law")):
        text = values.get(key)
        if text is None or not text.strip():
            continue
        index = _whole(text)
        if index is None or index >= count:
            have = f"its {what}s are numbered 0 to {count - 1}" if count > 1 else (
                f"it has one {what}, number 0" if count == 1 else f"it has no {what}")
            problems[key] = f"no {what} {text.strip()[:40]!r} in this fit: {have}"
    return problems


@router.get("/fits/{fit_id}")
async def report(request: Request, fit_id: str) -> Response:
    if (closed := _closed(request)) is not None:
        return closed
    with _session(request) as session:
        record = await run_in_threadpool(crud.get_fit, session, fit_id=fit_id)
        if record is None:
            return error_page(request, 404, "Fit not found", f"No stored fit has the id {fit_id!r}; see the "
                              "registry for the stored fits.")
        fit = crud.fit_result(record)
    asked, rec, problems = await run_in_threadpool(_prediction, fit, request.query_params)
    joint_asked, joint_rec, joint_problems = await run_in_threadpool(_joint_prediction, fit, request.query_params)
    size_word = _size_word(fit)
    bad_link = link_problems(fit, request.query_params)
    return render(request, "report.html", 422 if problems or joint_problems or bad_link else 200, record=record,
                  fit=fit, link_problems=bad_link,
                  hints=HINTS, choices=CHOICES, asked_values=request.query_params,
                  figures=plot_figures(record.id, fit),
                  asked=asked, asked_width=request.query_params.get("width", ""), prediction=rec, problems=problems,
                  joint_asked=joint_asked, joint_prediction=joint_rec, joint_problems=joint_problems,
                  size_word=size_word, size_symbol="w" if size_word == "width" else "N", stored_band=stored_band,
                  stored_joint=stored_joint,
                  joint_formula=joint_formula, group_label=group_label, verdict=verdict)


@router.get("/fits/{fit_id}/rows.csv")
async def rows_csv(request: Request, fit_id: str) -> Response:
    """The rows the fit was made from, as CSV (the JSON of the fit is GET /v1/fits/{id})."""
    if (closed := _closed(request)) is not None:
        return closed
    with _session(request) as session:
        df = await run_in_threadpool(crud.get_rows, session, fit_id=fit_id)
    if df is None:
        return error_page(request, 404, "Fit not found", f"No stored fit has the id {fit_id!r}.")
    return Response(df.to_csv(index=False), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="fit-{fit_id}-rows.csv"'})
