"""Reading a training config: YAML, JSON or TOML files, and maps into a team's own nested config.

A map (``abcscale check --map`` / ``--map-file``) says where a config keeps each of the check schema's keys,
as dotted paths (list items by index); what the map finds is then validated by
:func:`abcscale.usecases.check.load_config`. Every bad input is a :class:`ConfigError` naming its key, with a
"did you mean" when a close name exists.
"""

from __future__ import annotations

import codecs
import difflib
import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from abcscale.schemas.textfile import UnreadableText, read_text


class ConfigError(ValueError):
    """A bad config or map. ``problems`` holds every one found, each ``(key, reason)``; the message joins them."""

    def __init__(self, key: str, reason: str, more: Sequence[tuple[str, str]] = ()):
        self.key = key
        self.problems: tuple[tuple[str, str], ...] = ((key, reason), *more)
        super().__init__("; ".join(self.lines))

    @property
    def lines(self) -> list[str]:
        """One line per problem, ``key: reason``: what the CLI prints."""
        return [f"{k}: {r}" for k, r in self.problems]


class DuplicateKey(ValueError):
    """A mapping of a config names one key twice (TOML refuses that itself)."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object hook: a key given twice is an error, not the later value silently."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"the key {key!r} appears twice in one mapping (the later value would silently win); "
                               "keep one")
        out[key] = value
    return out


def _check_unique(node: yaml.Node, seen: set[int]) -> None:
    """Every mapping of a composed YAML document, before any merge is applied: a key given twice is a
    :class:`DuplicateKey` (YAML 1.2 forbids it; PyYAML keeps the last). Keys a merge (``<<: *base``) brings in may
    be overridden, as YAML intends; an alias is visited once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in keys:
                    raise DuplicateKey(f"the key {key.value!r} appears twice in one mapping (line "
                                       f"{key.start_mark.line + 1}; the later value would silently win); keep one")
                keys.add(key.value)
            _check_unique(value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_unique(item, seen)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading exponent numbers as YAML 1.2 (and JSON, TOML, Python) do: ``1e-3``,
    ``4.096e3`` and ``3E+2`` are floats. PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent,
    and read those as strings: ``width: 4.096e3`` was refused as "not an integer", ``beta: 1e-3`` passed only
    because pydantic parses the string (a review)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate keys (:class:`DuplicateKey`) and reads ``1e-3`` as a number."""
    node = yaml.compose(text, Loader=_Loader)
    if node is not None:
        _check_unique(node, set())
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)


def load_json(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys (:class:`DuplicateKey`)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def _stdin_text() -> str:
    """Standard input's text (``check -``), a byte-order mark dropped; a ConfigError naming ``-`` where there is
    none to read: closed (``<&-``, a service manager's job: Python's ``sys.stdin`` is then None, and reading it was
    an AttributeError's traceback), unreadable, or not UTF-8 (said as a file's is, not as YAML's "unacceptable
    character #xdcff")."""
    import sys

    stream = sys.stdin
    if stream is None:
        raise ConfigError("-", "standard input is closed: pipe the config into it (abcscale check - < run.yaml), "
                               "or give the file's path")
    try:
        terminal = stream.isatty()
    except (OSError, ValueError):  # a closed stream: said below, by reading it
        terminal = False
    if terminal:  # it waited, silent, for a Ctrl-D (as `fit -` refuses it)
        raise ConfigError("-", "standard input is a terminal here: pipe the config into it (abcscale check - < "
                               "run.yaml), or give the file's path")
    buffer = getattr(stream, "buffer", None)
    try:
        data = buffer.read() if buffer is not None else stream.read()
    except UnicodeDecodeError:  # a text stream without a buffer
        raise ConfigError("-", "standard input is not UTF-8: save the config as UTF-8") from None
    except (OSError, ValueError) as exc:  # a closed descriptor (EBADF), a stream closed under us
        raise ConfigError("-", f"standard input cannot be read ({exc.__class__.__name__}: {exc}): pipe the config "
                               "into it, or give the file's path") from None
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # exc.start counts from after a UTF-8 mark, which utf-8-sig drops first
        at = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise ConfigError("-", f"standard input is not UTF-8 (byte 0x{data[at]:02x} at offset {at}): save the "
                               "config as UTF-8") from None


def read_document(path: str | Path) -> dict[str, Any]:
    """A YAML, JSON or TOML file (by suffix) as a mapping; a ConfigError names the file. A key given twice in one
    mapping is an error (the later value would otherwise win silently)."""
    if str(path) == "-":  # standard input: YAML, which reads JSON too
        text = _stdin_text()
        try:
            data = load_yaml(text)
        except DuplicateKey as exc:
            raise ConfigError("-", str(exc)) from None
        except yaml.YAMLError as exc:
            raise ConfigError("-", f"standard input is not valid YAML or JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError("-", "the config must be a mapping of keys to values")
        return data
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except UnreadableText as exc:
        raise ConfigError(str(path), str(exc)) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ConfigError(str(path), f"cannot read ({exc.__class__.__name__})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = load_json(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif not suffix and text.lstrip()[:1] in ("{", "[") and _parses_as_json(text):
            data = load_json(text)  # no suffix (a pipe, `<(...)`): JSON when it parses so (tab-indented is no YAML)
        elif suffix in (".yaml", ".yml") or not suffix:  # else YAML
            suffix = suffix or ".yaml"
            data = load_yaml(text)
        else:
            raise ConfigError(str(path), "unknown format; use .yaml, .yml, .json or .toml")
    except DuplicateKey as exc:
        raise ConfigError(str(path), str(exc)) from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "the config must be a mapping of keys to values")
    return data


# --- a map: how to read a team's own (nested) training config -------------------------------------------


class ConfigMap(BaseModel):
    """Where a training config keeps each of the schema's keys.

    ``paths``: schema key (``width``, or dotted into a table: ``lr.hidden``) -> dotted path into the config,
    list items by index (``optim.param_groups.0.lr``). ``values``: schema keys the config does not state
    (``parameterization = "mup"``). A schema key in neither is read from the config's top level under its
    own name; every other key of the config is left alone (a real config has many unrelated keys).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: dict[str, str] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)

    def merged(self, other: ConfigMap) -> ConfigMap:
        """This map with ``other``'s entries added, ``other`` winning (``--map`` over ``--map-file``)."""
        return ConfigMap(paths={**self.paths, **other.paths}, values={**self.values, **other.values})


def parse_map(text: str, flag: str = "--map") -> ConfigMap:
    """``width=model.d_model,lr=optim.lr`` as a ConfigMap; a bad entry is a ConfigError naming ``flag``."""
    paths: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        key, sep, path = (s.strip() for s in entry.partition("="))
        if not (sep and key and path):
            raise ConfigError(flag, f"'{entry}' is not KEY=PATH (e.g. width=model.d_model)")
        if key in paths:  # the later path silently won (`width=width,width=base_width`: a width of 256, a FAIL)
            raise ConfigError(flag, f"{key}: given twice (mapped to '{paths[key]}' and to '{path}'); map each key "
                                    "once")
        paths[key] = path
    if not paths:
        raise ConfigError(flag, "no KEY=PATH entries (e.g. width=model.d_model,lr=optim.lr)")
    return ConfigMap(paths=paths)


def load_map(path: str | Path) -> ConfigMap:
    """A map file: a ``map`` table (schema key = "dotted.path") and an optional ``values`` table."""
    data = read_document(path)
    problems = [(f"{path}: {k}", "unknown table" + suggest(k, ["map", "values"])) for k in data
                if k not in ("map", "values")]
    tables = {k: data.get(k, {}) for k in ("map", "values")}
    problems += [(f"{path}: {k}", "must be a table") for k, v in tables.items() if not isinstance(v, dict)]
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    # TOML's `lr.hidden = "..."` (and a nested YAML map) is a table: flatten it back to dotted keys.
    twice: list[str] = []
    paths = _dotted(tables["map"], twice=twice)
    problems = [(f"{path}: map.{k}", "given twice (as a dotted key and inside a table); map each key once")
                for k in twice]
    problems += [(f"{path}: map.{k}", "must be a dotted path (a string)") for k, v in paths.items()
                 if not isinstance(v, str) or not v]
    # a key both mapped and given a value: the map's path silently won
    problems += [(f"{path}: values.{k}", f"also in the map (map.{k}); give it in one of them")
                 for k in _dotted(tables["values"]) if k in paths]
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    return ConfigMap(paths=paths, values=tables["values"])


def _dotted(table: dict[str, Any], prefix: str = "", twice: list[str] | None = None) -> dict[str, Any]:
    """``table`` with its sub-tables flattened to dotted keys; a key reached twice (YAML's ``lr.hidden: a`` beside
    ``lr: {hidden: b}``) is added to ``twice``, the first value kept."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        for key, value in (_dotted(v, f"{prefix}{k}.", twice) if isinstance(v, dict) else {f"{prefix}{k}": v}).items():
            if key in out:
                if twice is not None:
                    twice.append(key)
                continue
            out[key] = value
    return out


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (list items by index); a LookupError says which step is missing."""
    here: list[str] = []
    for part in path.split("."):
        if isinstance(data, dict):
            key: Any = part if part in data else int(part) if part.isdigit() and int(part) in data else None
            if key is None:
                where = f"'{'.'.join(here)}'" if here else "the top level"
                raise LookupError(f"{where} has no key '{part}'" + suggest(part, [str(k) for k in data]))
            data = data[key]
        elif isinstance(data, list):
            if not (part.isdigit() and int(part) < len(data)):
                raise LookupError(f"'{'.'.join(here)}' is a list of {len(data)}; '{part}' is not an index in it")
            data = data[int(part)]
        else:
            raise LookupError(f"'{'.'.join(here)}' is a value ({type(data).__name__}), not a table or a list")
        here.append(part)
    return data


def mapped_name(key: str, cmap: ConfigMap) -> str:
    """``lr.hidden (optim.param_groups.1.lr)``: a key with the path it was read from, when it was mapped."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        path = cmap.paths.get(".".join(parts[:i]))
        if path is not None:
            return f"{key} ({'.'.join([path, *parts[i:]])})"
    return key


# --- did you mean ----------------------------------------------------------------------------------------

CLOSE = 0.7  # difflib's 0.6 takes `model` for `lr_mode`; a one-letter slip (`widht`, `hiden`) scores >= 0.8


def suggest(word: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``word``, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=CLOSE)
    return f" (did you mean '{close[0]}'?)" if close else ""


__all__ = ["ConfigError", "ConfigMap", "read_document", "parse_map", "load_map", "lookup", "mapped_name", "suggest",
           "CLOSE"]


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
