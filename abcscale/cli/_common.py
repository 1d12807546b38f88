"""Shared CLI plumbing: one console, JSON output, and exit code 2 with one clear line on bad input."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

# Piped output (logs, CI) gets a fixed readable width instead of rich's 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, list):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False, default=str) + "\n")


def parse_or_fail(fn, value: Any, what: str) -> Any:
    """Run a parser; turn ValueError/ValidationError into a one-line exit-2 message naming ``what``."""
    try:
        return fn(value)
    except ValidationError as exc:
        fail(f"{what}: {validation_message(exc)}")
    except ValueError as exc:
        fail(f"{what}: {exc}")


def parse_int_list(value: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        fail(f"{what}: expected comma-separated integers, got {value!r}")
    if not out or any(x <= 0 for x in out):
        fail(f"{what}: expected positive integers, got {value!r}")
    return out
