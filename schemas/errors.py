"""Bad input as one line naming each field: how the CLI, the Python API and the use cases report it.

A pydantic ``ValidationError`` prints several lines with documentation URLs; :func:`validation_message`
turns it into ``field: reason; field: reason``, naming each field as the caller's user typed it (a CLI flag,
a keyword argument). :func:`field_errors` builds one from checks that are not a model's own (an input that
does not belong to the chosen mode), so every caller handles one kind of error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import InitErrorDetails, ValidationError


def validation_message(
    exc: ValidationError,
    names: Mapping[str, str] | None = None,
    *,
    within: str | None = None,
    unnamed: Callable[[str], str] = str,
) -> str:
    """One line naming each bad field.

    With ``names`` (field path -> name, e.g. ``{"base.width": "--base-width"}``) a field is named by the
    longest mapped prefix of the error's location, else ``unnamed(field)``. With ``within`` every error
    belongs to that one name (its location is inside that input's value). What is left of the location
    follows the name as an index or a key: ``--widths[1]: ...``, ``--init-scale (embedding): ...``; the same
    message for several keys of one name is said once (``--init-scale (embedding, hidden): ...``). Without
    either, the location is printed as a dotted path.
    """
    named: dict[tuple[str, str], list[str]] = {}  # (name, message) -> keys inside the value, in order
    for e in _union_errors_said_once(exc.errors()):
        loc = [x for x in e.get("loc", ()) if x != "__root__" and not _union_tag(x)]
        msg = error_text(e)
        if e.get("type") in _BOUNDS and _not_finite(e.get("input")):  # NaN fails "<= 1e30" for another reason
            msg = "Input should be a finite number"
        if within is not None:
            name, rest = within, loc
        elif names is not None and loc:
            name, rest = _name_of(loc, names, unnamed)
        else:
            name, rest = ".".join(map(str, loc)), []
        while rest and isinstance(rest[0], int):  # an item of the input's list: --widths[1]
            name, rest = f"{name}[{rest[0]}]", rest[1:]
        keys = named.setdefault((name, msg), [])
        if rest:  # a key inside the value: --init-scale (embedding)
            keys.append("".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in rest).removeprefix("."))
    return "; ".join((name + (f" ({', '.join(keys)})" if keys else "") + ": " if name else "") + msg
                     for (name, msg), keys in named.items())


def error_text(e: Mapping[str, Any]) -> str:
    """One pydantic error's message as every caller says it (the CLI, REST, the pages, ``check``): without
    "Value error, ", bounds in short form, and a scale's floor of 1e-30 said as what it means when the input
    is zero or negative ("positive"), not as its value."""
    if e.get("type") == "greater_than_equal" and _at_most_zero(e.get("input")) \
            and 0 < float((e.get("ctx") or {}).get("ge", 1)) <= 1e-30:
        return "Input should be positive (at least 1e-30)"
    msg = plain_numbers(str(e.get("msg")).removeprefix("Value error, "))
    if e.get("type") == "enum" and (aliases := _enum_aliases(str((e.get("ctx") or {}).get("expected", "")))):
        # the names it takes besides its values (sp, mf, ...), as the CLI's message lists them (a review: REST
        # refused "mupp" listing the four values while "sp" and "MuP" were taken)
        msg += f" (aliases: {aliases}; any letter case)"
    return msg


def _enum_aliases(expected: str) -> str:
    """The aliases of the enum whose values pydantic listed in ``expected`` ("'standard', 'ntk', ... or 'x'")."""
    from abcscale.schemas.enums import _AliasedEnum

    values = set(re.findall(r"'([^']*)'", expected))
    todo = list(_AliasedEnum.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if values and {m.value for m in cls} == values and (extra := cls._aliases()):
            return ", ".join(f"{k}={v}" for k, v in extra.items())
    return ""


def _at_most_zero(x: object) -> bool:
    try:
        return float(x) <= 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


#: a bound pydantic wrote out in full: "greater than or equal to 0.000000000000000000000000000001" (1e-30); only
#: after "than", so a user's own long number quoted in a message stays as it was
_LONG_BOUND = re.compile(r"(than (?:or equal to )?)(0\.0{5,}\d+|\d{16,}(?:\.\d+)?)(?![\w.])")


def plain_numbers(msg: str) -> str:
    """``msg`` with the bounds pydantic writes out in full (1e-30, as its 31 digits) in short form."""
    return _LONG_BOUND.sub(lambda m: f"{m.group(1)}{float(m.group(2)):g}", msg)


#: the error types of an input that is not the kind a union member takes (a number given to the dict member)
_WRONG_KIND = frozenset({"dict_type", "float_type", "float_parsing", "int_type", "int_parsing", "list_type",
                         "model_type", "model_attributes_type", "string_type"})


def _union_tag(x: object) -> bool:
    """A union member's name in an error's location (``constrained-float``, ``dict[str-enum[Role],...]``, a model's
    class name such as ``Alignment``: the fields are snake_case)."""
    return isinstance(x, str) and ("[" in x or x.startswith("constrained-") or x in ("float", "int", "str")
                                   or (x[:1].isupper() and x.isidentifier()))


def _union_errors_said_once(errors: list[Any]) -> list[Any]:
    """Errors without those of union members the input is not even the kind of, where another member says
    what is wrong with it: ``--lr nan`` is "a finite number", not also "a valid dictionary"."""
    def field(e: Any) -> tuple[Any, ...]:
        return tuple(x for x in e.get("loc", ()) if not _union_tag(x))[:1]

    tagged = [any(_union_tag(x) for x in e.get("loc", ())) for e in errors]
    keep = []
    for e, t in zip(errors, tagged, strict=True):
        others = [o for o, ot in zip(errors, tagged, strict=True) if ot and o is not e and field(o) == field(e)
                  and o.get("type") not in _WRONG_KIND]
        if not (t and e.get("type") in _WRONG_KIND and others):
            keep.append(e)
    return keep


#: pydantic's range checks: a NaN or infinity fails them, and saying so names the wrong reason
_BOUNDS = frozenset({"less_than", "less_than_equal", "greater_than", "greater_than_equal"})


def _not_finite(value: object) -> bool:
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def _name_of(loc: list[int | str], names: Mapping[str, str],
             unnamed: Callable[[str], str]) -> tuple[str, list[int | str]]:
    """The name of the longest mapped prefix of ``loc`` (else ``unnamed(field)``) and what is left of ``loc``."""
    for i in range(len(loc), 0, -1):
        mapped = names.get(".".join(map(str, loc[:i])))
        if mapped is not None:
            return mapped, loc[i:]
    return unnamed(str(loc[0])), loc[1:]


def field_errors(title: str, errors: Mapping[str, str], inputs: Mapping[str, object] | None = None) -> ValidationError:
    """A ValidationError with one ``value_error`` per field of ``errors`` (field -> reason)."""
    inputs = inputs or {}
    details = [InitErrorDetails(type="value_error", loc=(field,), input=inputs.get(field),
                                ctx={"error": ValueError(reason)}) for field, reason in errors.items()]
    return ValidationError.from_exception_data(title, details)


__all__ = ["validation_message", "field_errors"]


def python_limit(exc: ValueError, path: object = None) -> str:
    """``exc``'s message, with Python's refusal of a number of over 4300 digits (``int()`` on a JSON or YAML
    document's) said in the file's terms, not as advice to call ``sys.set_int_max_str_digits()``."""
    said = str(exc)
    if "integer string conversion" not in said:
        return said
    digits = said.partition("value has ")[2].partition(" digits")[0]
    where = f"{path}: " if path is not None and str(path) not in said else ""
    return f"{where}a number of {digits or 'over 4300'} digits, more than any setting has (4300 at most)"
