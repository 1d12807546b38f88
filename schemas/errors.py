"""Bad input as one line naming each field: how the CLI, the Python API and the use cases report it.

A pydantic ``ValidationError`` prints several lines with documentation URLs; :func:`validation_message`
turns it into ``field: reason; field: reason``, naming each field as the caller's user typed it (a CLI flag,
a keyword argument). :func:`field_errors` builds one from checks that are not a model's own (an input that
does not belong to the chosen mode), so every caller handles one kind of error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
    for e in exc.errors():
        loc = [x for x in e.get("loc", ()) if x != "__root__"]
        msg = str(e.get("msg")).removeprefix("Value error, ")
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
