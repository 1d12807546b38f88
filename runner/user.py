"""Your own JAX model in the runner: ``model = "pkg.module:factory"`` or ``"path/to/file.py:factory"``.

The factory contract (README "Sweeps"): ``factory(width, depth, *, vocab, seq_len)`` returns an object (a
:class:`UserModel`, or anything with these attributes, or a dict) with

- ``shapes``: parameter name -> shape, JAX layout (a dense kernel is [fan_in, fan_out]; ``()`` a scalar, fixed as
  ``(1,)`` is); a shape may be an array or a ``ShapeDtypeStruct``, and the dict nested (a flax/haiku tree): names
  are then its key paths joined by ``/`` and ``apply`` gets the nested tree;
- ``apply(params, tokens_BxT, record) -> logits_BxTxV``: a plain model, no multipliers; ``record(name, x)``
  returns ``x`` and, during a coordinate check, records its RMS (call it on any activation worth checking;
  the runner records the logits too);
- optional ``roles``: name -> embedding | hidden | readout | vector; a name left out is read by
  ``theory.groups.assign(name, shape, width, DEFAULT_RULES, layout="jax")``;
- optional ``init``: name -> normal | ones | zeros (default: normal for matrices, zeros for 1-D biases:
  a last name part ``bias`` or ``b``, or ending ``_bias``/``_b``, with or without a number: ``fc1_bias``,
  ``b1``; ones for other 1-D names), or for a vector-like or fixed parameter a positive number, the std of its own
  normal draw at every width (abcscale.optax keeps such a parameter as the model drew it). A depthwise conv's kernel
  ``[*kernel, 1, C]`` (ConvNeXt's ``dwconv``) is vector-like (fixed where C is no multiple of the width), as
  abcscale.optax reads it, drawn normal(0, taps^-1/2) (flax's and haiku's conv default) unless ``init`` says;
- optional ``fan_in``: name -> the axis, or axes, that ``apply`` contracts (a flax ``DenseGeneral`` kernel
  ``[D, heads, head_dim]`` has ``0``, its output kernel ``[heads, head_dim, D]`` has ``(0, 1)``); default the
  second last axis, which a hidden tensor of 3 or more axes must then have width-sized. A readout of 3 or more axes
  that is no conv (a ``DenseGeneral`` over [heads, head_dim, V]) sums over every axis but its last by default, as
  abcscale.optax reads it (``runner.export.readout_fan``).

Before training, ``check`` calls ``apply`` abstractly (``jax.eval_shape``) at every width: its logits must be
floats shaped [batch, seq_len, vocab], and an error inside it is a ValueError naming the width. A matrix that
no rule names is hidden by its shape only if both its axes grow with the width.

The runner trains it in the multiplier-free form (``theory.groups.group_spec(..., Form.multiplier_free)``),
which trains exactly like the abc form: each parameter's init std, LR and Adam epsilon come from its role, and
a hidden matrix whose fan-in is r times the width starts at the role's std times r**-(a+b); an embedding on a
dense leaf (a flax ``kernel``, a haiku ``w``: a dense input layer) at the embedding's std times its fan-in**-1/2,
as ``abcscale.optax`` draws it (``theory.groups.dense_input_std``; a lookup table, ``embedding``, takes the std
itself). Under Muon each hidden tensor is orthogonalised as abcscale.optax's Muon reads it (:func:`muon_dims`: a
conv kernel as one [taps x in, out] matrix). A bad reference or factory result is a ValueError starting ``model:``
and naming the field.

This module is the ``user`` kind of ``runner.train``'s model modules (``param_specs``, ``apply``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import math
import numbers
import operator
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from abcscale.runner import executables, reads, usercode
from abcscale.schemas.groups import SPEC_ROLES, Role

if TYPE_CHECKING:
    import jax

    from abcscale.runner.nn import Init, ModelConfig, ParamSpec, Probes

BUILTIN = ("transformer", "mlp")
INITS = ("normal", "ones", "zeros")


@dataclass(frozen=True)
class UserModel:
    """What a factory returns (module docstring); any object or dict with these fields will do."""

    shapes: dict[str, tuple[int, ...]]
    apply: Callable[..., Any]
    roles: dict[str, str] = field(default_factory=dict)
    init: dict[str, str] = field(default_factory=dict)
    fan_in: dict[str, tuple[int, ...]] = field(default_factory=dict)
    nested: bool = False  # 'shapes' was a nested dict (a flax or haiku tree): apply gets the tree back
    depth: int | None = None  # what the factory was called with: a leading axis of this size may be a stack
    paths: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # nested: each name's keys in the tree
    width: int | None = None  # what the factory was called with (a readout's fan-in grows with it)

    def stacked(self, shape: tuple[int, ...]) -> bool:
        """A stack of per-layer parameters for ``lax.scan``: its first axis is the depth."""
        return len(shape) >= 2 and shape[0] == self.depth

    def stacked_vector(self, name: str, shape: tuple[int, ...]) -> bool:
        """A stack of per-layer gains or biases (``[depth, D]``): a stack whose name is a norm's or a bias's, as the
        1-D parameter of one layer would be. Never a dense weight's leaf (``PreNorm_0/Dense_0/kernel`` [D, D] at a
        depth equal to the width is a matrix, a code review)."""
        from abcscale.theory.groups import DEFAULT_RULES, named_role

        leaf = name.replace("/", ".").rsplit(".", 1)[-1].lower()
        return self.stacked(shape) and leaf not in ("kernel", "w", "weight") \
            and named_role(name, shape[1:], DEFAULT_RULES) is Role.vector

    def tree(self, params: Mapping[str, Any]) -> Any:
        """The parameters as ``apply`` takes them: flat by name, or the factory's nested dicts (each name's keys
        in ``paths``; a haiku module's key holds ``/`` itself)."""
        if not self.nested:
            return params
        out: dict[str, Any] = {}
        for name, value in params.items():
            *path, last = self.paths[name]
            node = out
            for key in path:
                node = node.setdefault(key, {})
            node[last] = value
        return out


#: joins the keys of a nested 'shapes' (a flax/haiku parameter tree) into one name, as abcscale.optax names leaves
SEP = "/"


def is_reference(model: str) -> bool:
    """Whether a spec's ``model`` names a factory rather than a built-in model."""
    return model not in BUILTIN


def load_factory(ref: str) -> Callable[..., Any]:
    """The callable ``ref`` names (``pkg.module:attr`` or ``path/file.py:attr``, a path relative to the
    working directory). Loaded once per version of its code (``runner.usercode``: read again when a sweep, tune or
    check starts)."""
    with usercode.LOCK:
        stamp = usercode.stamp(ref)
        held = _FACTORIES.get(ref)
        if held is None or held[0] != stamp:  # another version, an earlier one included: its modules loaded again
            if held is not None:
                usercode.forget(held[0])  # the models and programs built from the version it replaces
            held = _FACTORIES[ref] = (stamp, _load_factory(ref, stamp))
            usercode.loaded(stamp)
        return held[1]


#: reference -> (the stamp it was last loaded at, its factory): one version at a time, as ``sys.modules`` holds one
#: (an edit undone went back to the first load's factory, whose body's imports then read the edit, a review)
_FACTORIES: dict[str, tuple[usercode.Stamp, Callable[..., Any]]] = {}


def _load_factory(ref: str, stamp: usercode.Stamp) -> Callable[..., Any]:
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"model: expected 'pkg.module:factory' or 'path/file.py:factory', got {ref!r}")
    is_file = target.endswith(".py") or "/" in target
    if len(stamp) == 3:
        usercode.before_load(target, stamp)
    elif not is_file and usercode.gone(target):
        del sys.modules[target]  # its file deleted: say so, as for a file reference, not train the copy in memory
    module = _load_file(target) if is_file else _import(target)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise ValueError(f"model: {target} has no attribute {attr!r}") from None
    if not callable(factory):
        raise ValueError(f"model: {ref} is not callable (a {type(factory).__name__})")
    return factory


def _on_path(folder: Path) -> None:
    """``folder`` first on the import path, as Python puts a script's folder (``python model.py``) or the working
    directory (``python -m``): a model file's ``from layers import Block`` finds its sibling, as it does when the
    user runs it. The console script ``abcscale`` has neither on the path. Moved to the front if already on it: a
    process that loaded another folder's model since has that folder ahead (its ``layers`` was imported instead)."""
    entry = str(folder.resolve())
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


def _import(name: str) -> Any:
    _on_path(Path.cwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"model: cannot import {name!r} ({exc}){_torch_hint(exc)}") from None
    except SystemExit as exc:
        raise ValueError(f"model: importing {name} {_exited(exc)}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ValueError(f"model: importing {name} failed: {type(exc).__name__}: {exc}{_torch_hint(exc)}") from None


def _torch_hint(exc: BaseException) -> str:
    """What to do where the model needs PyTorch (a review: a torch model given to coord-check read "No module named
    'torch'", as if abcscale lacked a dependency)."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in ("torch", "mup"):
        return ("; --model takes a JAX model (sweep, coord-check, tune train it with JAX): check a PyTorch model "
                "with microsoft/mup's coord check, and give it abcscale's numbers with abcscale.torch")
    return ""


def _exited(exc: SystemExit) -> str:
    """A model file's ``sys.exit`` (or a top-level argparse's) said as the failure it is: it ended the sweep or
    coord-check with its own code, 0 for coord-check's PASS, with nothing said (a review)."""
    return (f"called sys.exit({exc.code!r}) (a script's command line, argparse's included?): a model file must not "
            "exit; put its script part under `if __name__ == '__main__':`")


def _load_file(path: str) -> Any:
    p = Path(path).expanduser()
    if p.is_dir():  # "no such file" of a folder sent the user looking for a typo (a review)
        raise ValueError(f"model: {path} is a folder; give a Python file (FILE.py:FACTORY)")
    if not p.is_file():
        raise ValueError(f"model: no such file: {path}")
    name = f"abcscale_user_model_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ValueError(f"model: cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    _on_path(p.parent)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        del sys.modules[name]
        raise ValueError(f"model: importing {path} {_exited(exc)}") from None
    except Exception as exc:
        del sys.modules[name]
        raise ValueError(f"model: importing {path} failed: {type(exc).__name__}: {exc}{_torch_hint(exc)}") from None
    return module


def build(ref: str, width: int, depth: int, vocab: int, seq_len: int) -> UserModel:
    """Call the factory and check what it returned; every problem is a ValueError naming the field. Memoized
    per version of the factory's code (``runner.usercode``)."""
    with contextlib.suppress(Exception):  # a load that fails is said by _build, which loads it again
        load_factory(ref)  # its version's modules in sys.modules, for a factory or apply importing at call time
    return _build(ref, usercode.stamp(ref), width, depth, vocab, seq_len)


@usercode.by_version
def _build(ref: str, stamp: usercode.Stamp, width: int, depth: int, vocab: int, seq_len: int) -> UserModel:
    try:
        out = load_factory(ref)(width, depth, vocab=vocab, seq_len=seq_len)
    except ValueError as exc:
        if str(exc).startswith("model:"):
            raise
        raise ValueError(f"model: {ref}({width}, {depth}) raised ValueError: {exc}") from None
    except SystemExit as exc:
        raise ValueError(f"model: {ref}({width}, {depth}) called sys.exit({exc.code!r}): a factory must return the "
                         "model (raise an exception to refuse a width)") from None
    except Exception as exc:
        raise ValueError(f"model: {ref}({width}, {depth}) raised {type(exc).__name__}: {exc}") from None
    get = out.get if isinstance(out, Mapping) else lambda k, d=None: getattr(out, k, d)
    raw = get("shapes")
    nested = isinstance(raw, Mapping) and any(isinstance(v, Mapping) for v in raw.values())
    paths: dict[str, tuple[Any, ...]] = {}
    shapes = _shapes(_flat("shapes", raw, paths=paths) if nested else raw)
    apply = get("apply")
    if not callable(apply):
        raise ValueError("model: the factory's result has no callable 'apply(params, tokens, record)'")
    roles = _names("roles", _flat("roles", get("roles") or {}), shapes, lambda v: Role.parse(v).value,
                   "embedding, hidden, readout, vector or fixed")
    init = _names("init", _flat("init", get("init") or {}), shapes, _init_kind,
                  " | ".join(INITS) + ", or a positive number (a vector-like parameter's own std)")
    return UserModel(shapes=shapes, apply=apply, roles=roles, init=init,
                     fan_in=_fan_in(_flat("fan_in", get("fan_in")), shapes), nested=nested, depth=depth,
                     paths=paths, width=width)


def _flat(what: str, value: Any, path: tuple[Any, ...] = (), paths: dict[str, tuple[Any, ...]] | None = None) -> Any:
    """A nested dict's leaves under their keys joined by :data:`SEP` (``{"Dense_0": {"kernel": ...}}`` ->
    ``"Dense_0/kernel"``; haiku's ``"transformer/~/mlp"`` keys keep their own ``/``), each name's keys put in
    ``paths``; anything but a dict of dicts as it is (flat names may hold the ``/`` already). An int key (flax NNX's
    ``nnx.to_pure_dict`` of an ``nnx.List``: ``{"blocks": {0: ...}}``) is named by its str, as abcscale.optax names
    the leaf (``blocks/0/...``), and kept in ``paths``, so ``apply`` gets the tree back with its own keys (refused
    before: a review, session 67)."""
    if not isinstance(value, Mapping) or not any(isinstance(v, Mapping) for v in value.values()) and not path:
        return value
    out: dict[Any, Any] = {}
    for key, v in value.items():
        if not isinstance(key, str) and (isinstance(key, bool) or not isinstance(key, int)):
            raise ValueError(f"{what}: nested key {key!r} under {SEP.join(map(str, path)) or 'the top'} must be a "
                             "str (or an int, an nnx.List's index)")
        if isinstance(v, Mapping):
            if v:  # an empty sub-tree (a module without parameters) holds nothing
                out |= _flat(what, v, (*path, key), paths)
            continue
        name = SEP.join(map(str, (*path, key)))
        if paths is not None:
            if name in paths:  # {"a/b": {"c"}} and {"a": {"b/c"}}, {0: ...} and {"0": ...}: one name, two leaves
                raise ValueError(f"{what}: {name!r} names two leaves of the tree "
                                 f"({SEP.join(map(str, paths[name]))!r} ...)")
            paths[name] = (*path, key)
        out[name] = v
    return out


def _fan_in(value: Any, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"fan_in: expected a dict name -> axis or axes, got {type(value).__name__}")
    out = {}
    for name, axes in value.items():
        if name not in shapes:
            raise ValueError(f"fan_in: {name!r} is not a parameter in 'shapes'")
        items = [axes] if isinstance(axes, int) else axes
        n = len(shapes[name])
        try:
            picked = tuple(sorted({int(a) % n for a in items if isinstance(a, int) and not isinstance(a, bool)
                                   and -n <= a < n}))
            ok = len(picked) == len(list(items)) and 0 < len(picked) < n
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"fan_in: {name!r} {list(shapes[name])} has {axes!r}; expected an axis or distinct "
                             f"axes of it (from {-n} to {n - 1}), not all of them")
        out[name] = picked
    return out


def _dim(d: Any) -> int:
    """One axis's size: an integer (numpy's too) or a whole float (``width * 4.0``); not True, "7" or 2.5, which
    ``int`` made 1, 7 and 2 (a review), nor inf (a traceback)."""
    if isinstance(d, bool | str | bytes):
        raise TypeError(d)
    if isinstance(d, numbers.Real) and not isinstance(d, numbers.Integral):  # numpy's floats too
        if not (whole := float(d)).is_integer():
            raise ValueError(d)
        return int(whole)
    return operator.index(d)


def _shapes(value: Any) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError("model: the factory's result needs 'shapes', a non-empty dict name -> shape")
    out = {}
    for name, given in value.items():
        shape: Any = getattr(given, "shape", given)  # an array or jax.eval_shape's ShapeDtypeStruct: its shape
        try:
            dims: tuple[int, ...] | None = tuple(_dim(d) for d in shape)
        except (TypeError, ValueError, OverflowError):
            dims = None
        # () is a scalar (a logit scale, a gate: JAX's usual shape for one number), fixed as (1,) is; an empty
        # string or dict is no shape
        if not isinstance(name, str) or dims is None or any(d <= 0 for d in dims) \
                or not dims and not isinstance(shape, (tuple, list)):
            raise ValueError(f"shapes: {name!r} must map to a tuple of positive ints (or () for a scalar), "
                             f"got {shape!r}")
        out[name] = dims
    return out


def _names(what: str, value: Any, shapes: Mapping[str, Any], parse: Callable[[str], str],
           allowed: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a dict name -> value, got {type(value).__name__}")
    out = {}
    for name, v in value.items():
        if name not in shapes:
            raise ValueError(f"{what}: {name!r} is not a parameter in 'shapes'")
        try:
            out[name] = parse(str(v))
        except ValueError:
            raise ValueError(f"{what}: {name!r} has {v!r}; expected {allowed}") from None
    return out


def _init_kind(value: str) -> str:
    """``normal``, ``ones`` or ``zeros``, or a positive number: the std of the parameter's own normal draw, the same
    at every width (a vector-like parameter's, which abcscale.optax keeps as the model drew it: a depthwise conv's
    kernel at ConvNeXt's 0.02), kept as its repr."""
    if value in INITS:
        return value
    try:
        std = float(value)
    except ValueError:
        raise ValueError(value) from None
    if not math.isfinite(std) or std <= 0:
        raise ValueError(value)
    return repr(std)


def _number(init: str) -> float | None:
    """The std an ``init`` of a number gives (:func:`_init_kind`); None for ``normal``, ``ones``, ``zeros``."""
    return None if init in INITS else float(init)


def _reads(model: UserModel, width: int) -> dict[str, tuple[tuple[int, ...], int, str]]:
    """Each parameter as abcscale.optax reads it (``runner.export._read``: the matrix, the kernel's taps, "conv",
    "depthwise", "heads", "local" or ""), a conv kernel's stack axes by its bias (``export._bias_stacks``)."""
    from abcscale.runner import export

    stacks = export._bias_stacks(list(model.shapes.items()))
    return {name: export._read(name, shape, "jax", width, stacks.get(name)) for name, shape in model.shapes.items()}


def _depthwise(model: UserModel, width: int, reads: Mapping[str, tuple[tuple[int, ...], int, str]] | None = None
               ) -> dict[str, Role]:
    """The depthwise conv kernels (``[*kernel, 1, C]``, one input channel a filter) that neither the factory's
    ``roles`` nor its ``fan_in`` names, each with the role abcscale.optax gives it: vector-like where its channels
    are a multiple of the width, fixed otherwise (``export._leaves``)."""
    reads = _reads(model, width) if reads is None else reads
    return {name: Role.vector if view[-1] % width == 0 else Role.fixed for name, (view, _, kind) in reads.items()
            if kind == "depthwise" and name not in model.roles and name not in model.fan_in}


# bias, b, fc1_bias, attn_b, b1, bias2; a norm's shift under haiku's and Keras' names (offset, ln_offset, beta,
# norm_beta): zeros, as the model writes them (they started at ones, silently another model)
_BIAS_NAME = re.compile(r"(^|_)(bias|b|offset|beta)\d*$", re.IGNORECASE)


def _default_init(name: str, shape: tuple[int, ...], stacked_vector: bool = False) -> str:
    if len(shape) >= 2 and not stacked_vector:  # a vector-like stack ([depth, D] gains) starts as its rows do
        return "normal"
    last = name.replace("/", ".").rstrip(".").rsplit(".", 1)[-1]
    return "zeros" if _BIAS_NAME.search(last) else "ones"


def _in_factory_words(message: str, name: str) -> str:
    """An export's refusal said for a sweep: the fix is the factory's ``roles``, not a rule, and a recommendation at
    another width is no sweep's (a review: "add a rule (pattern, role) ... or, if the model is not 24 wide, recommend
    at its width" where ``roles={'params/Dense_out/kernel': 'readout'}`` was the answer)."""
    message = re.sub(r",? or, if the model is not \d+ wide, recommend at its width", "", message)
    message = re.sub(r"add a rule \(pattern, role\) for it", "give its role in the factory's 'roles'", message)
    # a linear over the tokens (theory.groups.assign): a rule for the module in the export is a role for each of its
    # leaves here, and a fixed matrix starts at the std the factory's 'init' gives (session 69)
    message = message.replace("add a rule for the module (its bias too), ",
                              "give the factory's 'roles' for it and its bias, each ")
    message = message.replace("(its LR and epsilon the base width's at every width)",
                              "(its LR and epsilon the base width's at every width; its init std the factory's "
                              "'init' gives, a number, the same at every width)")
    return re.sub(r"\(r'[^']*', '(\w+)'\)", lambda m: "{" + repr(name) + ": '" + m.group(1) + "'}", message)


def layout(model: UserModel, width: int, fan_in_exponent: float = 0.5, grown: UserModel | None = None,
           readout_fan_in_exponent: float | None = None) -> dict[str, ParamSpec]:
    """Each parameter's role index, init and width-independent init factor (fan-in r: r**-fan_in_exponent).
    ``grown``, the model at another width (:func:`grown_model`), tells a vector that grows with the width, which is
    never ``fixed``. A readout of fan-in r x the width starts at r**-``readout_fan_in_exponent`` (its role's init
    exponent), as abcscale.torch and abcscale.optax draw it (``spec.init_std("readout", r)``; a head on 2D
    features was drawn at the width's std here and r^-b of it by the exports, session 65); None: not read."""
    from abcscale.runner import export
    from abcscale.runner.nn import ParamSpec
    from abcscale.theory.groups import (
        DEFAULT_RULES,
        assign,
        dense_input_std,
        gain_or_bias,
        is_dense_leaf,
        named_role,
        settle_fixed,
    )

    # a conv kernel [*kernel, in, out] (flax's Conv_N, or any module with a bias [out]: an nn.scan stack's bias
    # [depth, out] keeps the depth out) as abcscale.optax reads it: its fan-in is in x the kernel's taps (the sweep
    # took `in` alone, an init std 1.7x the export's for a [3, C, C] kernel, and constants swept on one init were
    # exported onto another: a review, session 67)
    reads = _reads(model, width)
    stacks = export._bias_stacks(list(model.shapes.items()))
    taps = {name: kernel for name, (_, kernel, kind) in reads.items()
            if kind == "conv" and kernel > 1 and name not in model.fan_in}
    # a depthwise conv's kernel [*kernel, 1, C] (ConvNeXt's `dwconv` [7, 7, 1, C]: a filter per channel) as
    # abcscale.optax reads it: vector-like where its channels grow with the width, else fixed, drawn as the model
    # draws it (refused before, with the embedding's role advised: a review, session 68)
    depthwise = _depthwise(model, width, reads)
    placed: list[tuple[str, tuple[int, ...], Role, float]] = []
    for name, shape in model.shapes.items():
        if name in model.roles or name in model.fan_in:
            named = Role(model.roles[name]) if name in model.roles else named_role(name, shape, DEFAULT_RULES)
            if name in model.roles and named not in (Role.vector, Role.fixed) and len(shape) < 2:
                # the runner would train it with a matrix's LR but no matrix's decay, and the exports read a
                # one-axis parameter as vector or fixed whatever a rule says (theory.groups._matching_rule)
                raise ValueError(f"roles: {name!r} {list(shape)} has {'one axis' if shape else 'no axis'}: the "
                                 f"{model.roles[name]} role is a matrix's (its init by the fan-in, its LR and decay "
                                 "by the matrix's exponents), and abcscale.optax and abcscale.torch read such a "
                                 "parameter as vector or fixed: give it 'vector' or 'fixed' (a head x @ w with w "
                                 "[D]: make w [D, 1], a readout; a scalar input's x * w: [1, D], an embedding)")
            role = named or Role.hidden  # fan_in given: a contracted weight
            r = _fan_in_ratio(name, shape, width, model.fan_in.get(name)) if role is Role.hidden else 1.0
        elif model.stacked_vector(name, shape):
            role, r = Role.vector, 1.0
        elif model.depth is not None and shape == (model.depth,) and model.depth != width:
            role, r = Role.fixed, 1.0  # a stack of per-layer scalars (gates): one number a layer, as at depth 1
        elif name in depthwise:
            role, r = depthwise[name], 1.0
        else:
            try:
                role, r = assign(name, shape, width, DEFAULT_RULES, layout="jax")
            except ValueError as exc:
                if "a hidden tensor whose fan-in axis" in str(exc):
                    raise ValueError(f"fan_in: {exc} (here: the factory's 'fan_in': {{{name!r}: <the axes apply "
                                     "contracts>}})") from None
                if len(shape) >= 2 and shape[0] == model.depth and shape[0] != width:
                    # a lax.scan stack: "a hidden matrix's shape for width <depth>" misread it (a user review)
                    raise ValueError(f"roles: {name!r} {list(shape)}: its first axis ({shape[0]}) is the depth, a "
                                     "stack of per-layer parameters (for lax.scan)? A stack of gains or biases is "
                                     "read by its name (scale, bias, ln, norm) or given 'roles': {" + repr(name) +
                                     ": 'vector'}; a stack of matrices [depth, fan_in, fan_out] is hidden when both "
                                     "its last axes grow with the width, else give its role") from None
                if _gain_or_bias_leaf(name):  # never a matrix's role (the refusal's advice named one)
                    raise ValueError(f"roles: {name!r} {list(shape)}: named as a bias or a gain, vector-like, but an "
                                     "axis before its last is not under the width, so its shape does not say; give "
                                     "it a role: 'roles': {" + repr(name) + ": 'vector'} (it then starts at zeros, "
                                     "a scale at ones, by its name)") from None
                raise ValueError(f"roles: {_in_factory_words(str(exc), name)}") from None
        if role is Role.hidden and name in taps and len(shape) >= 5 and name not in stacks \
                and model.depth is not None and model.depth > 1 and shape[0] == model.depth:
            # a conv kernel of 5+ axes, no bias, its first axis the depth: one 3-D conv (abcscale.optax's reading, and
            # this one's before: fan-in depth x taps x in, one Muon matrix), or an nn.scan stack of 2-D convs (each
            # layer's taps x in, a matrix a layer), the std sqrt(depth) apart; the shape cannot say (a review, s. 68)
            layer = list(range(1, len(shape) - 1))
            raise ValueError(f"fan_in: {name!r} {list(shape)}: a convolution's kernel without a bias whose first axis "
                             f"({shape[0]}) is the depth: an nn.scan stack of convolutions, or one convolution of "
                             f"{len(shape) - 2} kernel axes? Give the axes apply contracts: 'fan_in': {{{name!r}: "
                             f"{layer}}} for a stack (abcscale.optax: fan_in={{{name!r}: "
                             f"{math.prod(shape[1:-1])}}}), {[0, *layer]} for one convolution (abcscale.optax reads it "
                             "so unless told)")
        placed.append((name, shape, role, r * taps.get(name, 1) if role is Role.hidden else r))
    # the readout's bias has no width-sized axis: fixed, unless the factory's 'roles' says otherwise; a stack over the
    # depth is read by one layer's slice (a [depth, V] bias beside a [depth, D, V] readout)
    settled = settle_fixed([(name, shape[1:] if model.stacked(shape) else shape, role)
                            for name, shape, role, _ in placed], DEFAULT_RULES, width)
    out = {}
    for (name, shape, role, r), fixed in zip(placed, settled, strict=True):
        # a vector read as the readout's bias by its length alone ([vocab]) that grows with the width is a hidden
        # layer's (an MLP bias [4D] at a vocabulary of 4D): vector-like at every width (it was fixed at that width
        # alone, its LR and epsilon the base width's, and show-roles and the export disagreed: a user review)
        grows = grown is not None and name in grown.shapes and grown.shapes[name] != shape
        role = role if name in model.roles or (fixed is Role.fixed and grows) else fixed
        # a vector-like stack or per-head bias ([heads, head_dim], read so by its name) starts as its rows do
        # (given the vector role too: its init by its name, zeros for a bias, as the factory's 'roles' advice says)
        rows = model.stacked(shape) or gain_or_bias(name, shape, width if name not in model.roles else None)
        # a depthwise kernel vector-like or fixed (by its shape, or the factory's 'roles'): drawn as the model draws it
        own_draw = reads[name][2] == "depthwise" and role in (Role.vector, Role.fixed)
        init = model.init.get(name) or ("normal" if own_draw else
                                        _default_init(name, shape, role in (Role.vector, Role.fixed) and rows))
        own = _number(init)  # the std of the model's own draw, the same at every width
        if own is not None and role not in (Role.vector, Role.fixed):
            article = "an" if role is Role.embedding else "a"
            raise ValueError(f"init: {name!r} has {init}, a std of its own, but it is {article} {role.value}, whose "
                             "init std is its role's (the swept constant, by its fan-in): give it 'normal', or a "
                             "number only for a vector-like or fixed parameter (a depthwise conv's)")
        if role in (Role.vector, Role.fixed) and init == "normal" and not own_draw:
            raise ValueError(f"init: {name!r} is {'vector-like' if role is Role.vector else 'fixed'} (no width-sized "
                             "fan-in), so it starts at ones or zeros; give it init 'ones'/'zeros' or another role (or "
                             "a number: the std of its own normal draw, the same at every width)")
        const = r ** -fan_in_exponent
        if role in (Role.vector, Role.fixed):
            # drawn as the model draws it (abcscale.optax keeps a vector-like leaf's own values): a depthwise kernel
            # normal(0, taps^-1/2), flax's and haiku's conv default (lecun normal: its fan-in, the taps of its one
            # input channel), or the std the factory's 'init' gives (ConvNeXt's 0.02); no role's std multiplies it
            const = own if own is not None else reads[name][1] ** -0.5 if init == "normal" else 1.0
            init = "normal" if own is not None else init
        if role is Role.readout and len(shape) >= 2 and readout_fan_in_exponent is not None:
            # what one logit sums over, as abcscale.optax reads it (export.readout_fan): a readout of 3 or more axes
            # no conv reads, every axis but its last (a DenseGeneral over [heads, head_dim, V] took head_dim alone here,
            # its std not shrinking with the width where the export's did: a review, session 68)
            view, kernel, kind = reads[name]
            fan = math.prod(shape[a] for a in model.fan_in[name]) if name in model.fan_in else \
                export.readout_fan(shape, view, kernel, kind, "jax")
            const = (fan / width) ** -readout_fan_in_exponent
        if name in model.fan_in and role in (Role.embedding, Role.readout) and grown is not None:
            _fixed_fan_in(name, shape, grown.shapes.get(name), model.fan_in[name], role, width, grown.width)
        if role is Role.embedding and len(shape) >= 2 and is_dense_leaf(name):
            # a dense input layer (flax's Dense `kernel`, haiku's `w`), drawn at the embedding's std x fan-in^-1/2 as
            # abcscale.optax draws it (theory.groups.dense_input_std): the sweep drew it at the lookup's std, 16x the
            # export's for a [256, D] kernel, and its constants were exported onto another init (a user review)
            const = dense_input_std(1.0, shape, "jax") if name not in model.fan_in else \
                math.prod(shape[a] for a in model.fan_in[name]) ** -0.5
        out[name] = ParamSpec(shape, SPEC_ROLES.index(role), init=cast("Init", init), std_const=const)
    return out


def _fixed_fan_in(name: str, shape: tuple[int, ...], grown: tuple[int, ...] | None, axes: tuple[int, ...],
                  role: Role, width: int, grown_width: int | None) -> None:
    """An embedding's ``fan_in`` axes must not grow with the width, and a readout's must grow as the width does:
    the factory's ``fan_in`` lists axes (the export's ``fan_in`` a size). ``{"Dense_0/kernel": 1}`` named an
    embedding's width axis, drawing it at width^-1/2, another parameterization, unsaid (a code review). A readout
    sums over the width (its ``[D, V]`` kernel's axis 0, a DenseGeneral's ``[D, a, V]`` axes 0 and 1): those axes
    were refused here as growing (session 68's note), while an axis that does not grow (the vocabulary's) would
    start it at (V / width)^-b, a std that changes with the width."""
    if grown is None or len(grown) != len(shape):
        return
    here, there = (math.prod(s[a] for a in axes) for s in (shape, grown))
    if role is Role.embedding and here != there:
        raise ValueError(f"fan_in: {name!r} {list(shape)} is an embedding, and its 'fan_in' axes {list(axes)} give "
                         f"{here} here but {there} at another width ({list(grown)}): the factory's 'fan_in' lists "
                         "axes, not a size (the export's fan_in= value is a size), so an axis that grows with the "
                         "width would scale its init with the width, another parameterization; an input layer's "
                         "fan-in is fixed by the data: drop it (a dense kernel is drawn at its fixed fan-in^-1/2) or "
                         "name only axes that do not grow")
    if role is Role.readout and grown_width is not None and grown_width != width \
            and here * grown_width != there * width:
        raise ValueError(f"fan_in: {name!r} {list(shape)} is a readout, and its 'fan_in' axes {list(axes)} give "
                         f"{here} at width {width} but {there} at width {grown_width} ({list(grown)}): a readout "
                         "sums over the width, so its fan-in grows as the width does (the axes its logits contract, "
                         "e.g. 0 of a [D, V] kernel); the factory's 'fan_in' lists axes, not a size (the export's "
                         "fan_in= value is a size), and axes that do not grow would start it at a std that changes "
                         "with the width")


def role_sources(model: UserModel) -> dict[str, str]:
    """How :func:`layout` decides each parameter's role: ``roles`` (the factory's), ``fan_in`` (given, so a
    contracted weight: hidden), ``name`` (a name rule) or ``shape`` (1-D: vector-like; a matrix whose axes both
    grow with the width: hidden)."""
    from abcscale.theory.groups import DEFAULT_RULES, gain_or_bias, named_role

    def source(name: str, shape: tuple[int, ...]) -> str:
        if name in model.roles:
            return "roles"
        named = named_role(name, shape, DEFAULT_RULES)
        return ("name" if named is not None or model.stacked_vector(name, shape)
                or name not in model.fan_in and gain_or_bias(name, shape) else
                "fan_in" if name in model.fan_in else "shape")

    return {name: source(name, shape) for name, shape in model.shapes.items()}


def _fan_in_ratio(name: str, shape: tuple[int, ...], width: int, axes: tuple[int, ...] | None) -> float:
    """A hidden weight's fan-in over the width: the product of ``axes`` (the model's ``fan_in``), else the
    second last axis, which a tensor of 3 or more axes must then have width-sized."""
    if len(shape) < 2:
        return 1.0
    if axes is not None:
        return math.prod(shape[a] for a in axes) / width
    if len(shape) >= 3 and shape[-2] % width:
        raise ValueError(f"fan_in: {name!r} {list(shape)} is a hidden tensor whose second last axis ({shape[-2]}) "
                         f"is no multiple of the width {width}, so its fan-in is not that axis alone: give "
                         f"'fan_in': {{{name!r}: <the axes apply contracts>}}")
    return shape[-2] / width


def check(ref: str, widths: list[int], depth: int, seq_len: int, vocab: int = 256, batch: int = 2) -> None:
    """Load, lay out and trace the model at every width before training: a bad reference or result, an
    ``apply`` that fails or returns other than float logits [batch, seq_len, vocab], or a matrix that no rule
    names whose axes do not both grow with the width (an embedding or a readout read as hidden) fails here.
    What the model's code escapes its cell keys by (a module imported by name, a file it reads) is said
    (:func:`_say_unkeyed`)."""
    executables.xla_options()  # what XLA reads as JAX starts, noted before the model's trace starts it
    held = set(sys.modules)  # what the load, the builds and the traces import beyond it
    started = usercode.refresh(ref)  # a sweep, tune or check starts: it trains the code the files hold now
    with reads.watch(skip=_not_users()) as read:
        _check(ref, widths, depth, seq_len, vocab, batch)
    _say_unkeyed(ref, started, set(sys.modules) - held, read)
    if edited := usercode.changed(started):  # the run's keys are read from the files next: they must be these
        raise ValueError(f"model: {', '.join(edited)} changed while the model was being checked; run again once "
                         "it is saved")


def _check(ref: str, widths: list[int], depth: int, seq_len: int, vocab: int, batch: int) -> None:
    from abcscale.theory.groups import DEFAULT_RULES, gain_or_bias, named_role

    sweep_widths(ref, widths, depth, vocab, seq_len)
    for w in widths:
        model = build(ref, w, depth, vocab, seq_len)
        laid = layout(model, w, grown=grown_model(ref, w, depth, vocab, seq_len, widths))
        roles = {SPEC_ROLES[spec.layer] for spec in laid.values()}
        if Role.embedding in roles and Role.readout not in roles:
            raise ValueError(f"roles: no parameter is a readout ({', '.join(sorted(model.shapes))}): a tied embedding "
                             "(the lookup's matrix also makes the logits)? Each role trains with its own init and LR, "
                             "so a tied matrix would train as an embedding (under muP its logits grow with the "
                             "width): untie it for the sweep (a readout matrix of its own), or give the readout its "
                             "role ('roles': {name: 'readout'})")
        _trace(model, w, seq_len, vocab, batch)
        if w == widths[0]:
            _say_readings(ref, model, w, laid)
        other = _another_width(ref, w, widths, depth, vocab, seq_len)
        if other is None:
            continue
        w2, other_model = other
        depthwise = _depthwise(model, w)
        for name, shape in model.shapes.items():
            if len(shape) == 1 and name not in model.roles and SPEC_ROLES[laid[name].layer] is Role.vector \
                    and other_model.shapes.get(name) == shape:
                # a vector-like parameter (a norm's gain, a layer's bias) is as long as a width-sized axis; one of the
                # same length at every width (a relative-position bias [2T-1]) has none, so its LR and epsilon must
                # not scale with the width as a vector's do (a review: it took the vector role by its shape alone)
                raise ValueError(f"roles: {name!r} {list(shape)} at width {w} ({list(shape)} at {w2}) has one axis, "
                                 "read as vector-like (a gain or a bias), but that axis does not grow with the "
                                 "width: give it 'roles': {" + repr(name) + ": 'fixed'} (no width-sized axis: the "
                                 "vector role's base-width LR and epsilon at every width), or 'vector' if it should "
                                 "scale as one")
            named = None if name in model.roles else named_role(name, shape, DEFAULT_RULES)
            # a name a rule reads as hidden (w1, fc_in, mlp_out) is checked too: `w1` [vocab, width] was trained
            # as a hidden matrix, its LR shrinking as 1/width, unsaid (a user review)
            # a per-head bias [heads, head_dim] (flax's attention; [depth, heads, head_dim] under nn.scan) is
            # vector-like by its leaf's name, as layout() and abcscale.optax read it (it was refused here, the advice
            # 'readout': a review, session 67)
            # a depthwise conv's kernel [*kernel, 1, C] is vector-like or fixed (layout(), as abcscale.optax reads it)
            if len(shape) < 2 or name in model.roles or name in model.fan_in or named not in (None, Role.hidden) \
                    or model.stacked_vector(name, shape) or gain_or_bias(name, shape, w) or name in depthwise:
                continue
            grown = other_model.shapes.get(name)
            if grown is None or len(grown) != len(shape) or any(a * w2 != b * w for a, b in zip(shape[-2:], grown[-2:],
                                                                                            strict=True)):
                who = "its name reads as a hidden matrix's" if named else "no rule names its role"
                guess = Role.vector if _gain_or_bias_leaf(name) else _fixed_axis_role(shape, grown)
                raise ValueError(f"roles: {name!r} {list(shape)} at width {w} ({list(grown) if grown else 'absent'} "
                                 f"at {w2}): {who}, but not both its axes grow with the width, so it is not a hidden "
                                 f"matrix (an embedding or a readout?); give it a role"
                                 + (f", e.g. 'roles': {{{name!r}: {guess.value!r}}}" if guess else ""))


def _origin(module: Any) -> str | None:
    """The source file a module was loaded from, as its spec says, read without the module's own attribute lookup
    (a lazily loaded module would load; another object in ``sys.modules`` may raise on any attribute: a review)."""
    import types

    try:
        if not isinstance(module, types.ModuleType):
            return None
        spec = object.__getattribute__(module, "__dict__").get("__spec__")
        origin = getattr(spec, "origin", None)
        return str(Path(origin).resolve()) if isinstance(origin, str) and getattr(spec, "has_location", False) \
            else None
    except Exception:  # noqa: BLE001 - an odd entry is no module of the user's
        return None


def _not_users() -> tuple[Path, ...]:
    """Folders whose files are not the user's: the libraries' and abcscale's own."""
    from abcscale.runner.spec import _library_roots

    ours = {Path(origin).parent for name, m in list(sys.modules.items())
            if name.partition(".")[0] == "abcscale" and (origin := _origin(m)) is not None}
    return (*_library_roots(), *sorted(ours))


def _say_unkeyed(ref: str, code: usercode.Stamp, new: set[str], read: reads.Reads) -> None:
    """What the model escapes its cell keys by, said once per version of its code (session 75's notes), and the
    files it read noted (``usercode.note_reads``: their digests join its stamp, and a Ray worker must read them
    alike):

    - a module of the user's that loading, building or tracing the model imported (``new``: names that were not in
      ``sys.modules`` before) but that no import statement of the model's files names (``importlib.import_module``,
      a ``sys.path`` change): its code is neither in the cell keys (``runner.spec.model_source`` reads the
      statements) nor in what a long-lived process reloads after an edit;
    - a file of the user's that the model read meanwhile (``read``: a config, a vocabulary, saved weights): the keys
      hold the model's code, not such a file's bytes.

    Either way a sweep rerun into the same folder after an edit to it would keep the runs trained before it."""
    import warnings

    from abcscale.runner.spec import _holds_code, _library_roots
    from abcscale.runner.store import SweepWarning

    if len(code) != 3:
        return
    known = {code[0], *(file for _, file in code[1])}  # the model's own file, its packages' and its imports'
    roots = _library_roots()
    unseen = {}
    for name in sorted(new):
        if name.partition(".")[0] == "abcscale" or (file := _origin(sys.modules.get(name))) is None \
                or usercode._in(file, roots) or file in known or not file.endswith(".py") \
                or not _holds_code(Path(file)):  # an empty __init__ runs nothing
            continue
        unseen[name] = file
    files = reads.user_files(read)  # under the folders the watch skipped (libraries, abcscale's, caches) left out
    usercode.note_reads(ref, files, under=code)  # the next check's stamp holds their digests: a new version
    if edited := reads.changed(read, files):
        # the builds may hold either version: not promoted, so the next check loads, imports and builds everything
        # again from the saved bytes (promoted before the files were noted, a rerun trained them: a review)
        named = ", ".join(edited[:3]) + (f" and {len(edited) - 3} more" if len(edited) > 3 else "")
        raise ValueError(f"model: {named} changed while the model was being checked; run again once it is saved")
    if files:  # their digests join the stamp; the factory loaded and the models built stay this version's
        with usercode.LOCK:
            promoted = usercode.promote(ref, code)
            if promoted != code and usercode.code_part(promoted) == usercode.code_part(code) \
                    and (held := _FACTORIES.get(ref)) is not None and held[0] == code:
                _FACTORIES[ref] = (promoted, held[1])
    notes = []
    if unseen:
        names = ", ".join(f"{name} ({file})" for name, file in list(unseen.items())[:3])
        names += " ..." if len(unseen) > 3 else ""
        notes.append(f"model: {ref} imports {names}, which is not read as the model's code: the sweep's cell keys "
                     "and a long-lived process's reloads follow the import statements of the model's files, as a "
                     "fresh import finds them from the model's folder, and this was found otherwise "
                     "(importlib.import_module, a sys.path change, a star import?), so a sweep rerun into the same "
                     "--out after an edit to it would keep the runs trained before the edit; import it with an "
                     "import statement that finds it without changing sys.path")
    if files:
        names = ", ".join(files[:3]) + (" ..." if len(files) > 3 else "")
        whose, which = ("that file's", "it") if len(files) == 1 else ("those files'", "one")
        notes.append(f"model: {ref} reads {names} as it loads, builds or traces: what abcscale keeps is keyed by "
                     f"the model's code, not {whose} bytes, so a sweep rerun into the same --out (or a tune "
                     f"resumed) after an edit to {which} would keep what was trained before (this process builds the "
                     "model again); keep such settings in the model's code, or sweep into a new --out after "
                     "changing a file")
    said = usercode.code_part(code)  # not again when only a file it reads changed
    for note in notes:
        if (said, note) not in _SAID:
            _SAID.add((said, note))
            warnings.warn(note, SweepWarning, stacklevel=3)


def _gain_or_bias_leaf(name: str) -> bool:
    """A leaf named as a gain or a bias is (flax's and haiku's ``bias``, ``scale``, ``offset``): vector-like whatever
    its shape, never an embedding or a readout (the role :func:`_fixed_axis_role` would offer)."""
    return name.replace("/", ".").rstrip(".").rsplit(".", 1)[-1] in ("bias", "scale", "offset")


def _fixed_axis_role(shape: tuple[int, ...], grown: tuple[int, ...] | None) -> Role | None:
    """The role a matrix's fixed axis suggests: a fixed fan-in (the first of the last two axes, [vocab, width]) is
    an embedding's, a fixed fan-out ([width, vocab]) a readout's; None when neither or both are fixed."""
    if grown is None or len(grown) != len(shape) or len(shape) < 2:
        return None
    fixed_in, fixed_out = shape[-2] == grown[-2], shape[-1] == grown[-1]
    return Role.embedding if fixed_in and not fixed_out else Role.readout if fixed_out and not fixed_in else None


_SWEEP_WIDTHS: dict[tuple[str, int, int, int], tuple[int, ...]] = {}


def sweep_widths(ref: str, widths: list[int] | tuple[int, ...], depth: int, vocab: int, seq_len: int) -> None:
    """Remember the widths a sweep of ``ref`` builds (``runner.sweep._program``, :func:`check`): :func:`grown_model`
    then compares with one of them rather than calling the factory at a width the sweep does not train."""
    _SWEEP_WIDTHS[(ref, depth, vocab, seq_len)] = tuple(sorted(set(widths)))


def grown_model(ref: str, width: int, depth: int, vocab: int, seq_len: int,
                widths: list[int] | tuple[int, ...] | None = None) -> UserModel | None:
    """The model at another width, so that :func:`layout` reads a parameter the same at every width of any sweep
    (whether a parameter grows does not depend on which other width shows it): the sweep's width nearest
    ``width`` (``widths``, default those :func:`sweep_widths` remembers), built anyway; for a sweep of one width,
    the model at twice ``width``, else at half of it (None if the factory refuses both). Memoized, None
    included: ``param_specs`` runs many times a cell, and a refused width called the factory again each time
    (a code review)."""
    if widths is None:
        widths = _SWEEP_WIDTHS.get((ref, depth, vocab, seq_len), ())
    with contextlib.suppress(Exception):
        load_factory(ref)  # its version's modules in sys.modules (build's note)
    return _grown(ref, usercode.stamp(ref), width, depth, vocab, seq_len, tuple(sorted(set(widths))))


@usercode.by_version
def _grown(ref: str, stamp: usercode.Stamp, width: int, depth: int, vocab: int, seq_len: int,
           widths: tuple[int, ...]) -> UserModel | None:
    others = sorted((w for w in widths if w != width), key=lambda w: (abs(w - width), w))
    for other in others or (2 * width, width // 2):
        if other < 1 or other == width:
            continue
        try:
            return build(ref, other, depth, vocab, seq_len)
        except ValueError:
            continue
    return None


#: (the factory's code, note) said in this process: the CLI checks a model before a sweep and the sweep checks it
#: again (by its code, not its reference: another folder's model.py, or the same file edited, is said to as well)
_SAID: set[tuple[Any, str]] = set()


def _say_readings(ref: str, model: UserModel, width: int, laid: Mapping[str, ParamSpec]) -> None:
    """The readings ``abcscale.optax`` warns about, said for the sweep too (a ``SweepWarning``, which the CLI prints
    as one line): one depthwise kernel of one input channel (or a stem on a one-channel input, the embedding), and
    kernels of 4+ axes that no conv name, bias or ``fan_in`` says, read as stacks of matrices by their last two
    (the export warned of both, the sweep trained them silently: session 68's note)."""
    import warnings

    from abcscale.runner import export
    from abcscale.runner.store import SweepWarning
    from abcscale.theory.groups import is_dense_leaf

    reads = _reads(model, width)
    notes = []
    if len(depthwise := _depthwise(model, width, reads)) == 1:
        name = next(iter(depthwise))
        notes.append(f"{name}: one input channel, read as a depthwise convolution (vector-like, drawn normal(0, "
                     "taps^-1/2) or at the factory's init); if it is a stem on a one-channel input, it is the "
                     f"embedding: 'roles': {{{name!r}: 'embedding'}}")
    stacks = export._bias_stacks(list(model.shapes.items()))
    unsaid = [(name, shape) for name, shape in model.shapes.items()
              if SPEC_ROLES[laid[name].layer] is Role.hidden and not reads[name][2] and name not in model.fan_in
              and name not in model.roles and name not in stacks and len(shape) >= 4 and is_dense_leaf(name)
              and max(shape[:-2]) < width]
    if unsaid:
        names = ", ".join(name for name, _ in unsaid[:3]) + (" ..." if len(unsaid) > 3 else "")
        shape = unsaid[0][1]
        axes = ", ".join(f"{name!r}: {list(range(len(s) - 1))}" for name, s in unsaid[:3])
        notes.append(f"{names}: {len(shape)} axes {list(shape)}, read as a stack of [in, out] matrices by the last "
                     f"two (fan-in {shape[-2]}); no conv module's name (Conv_0, conv1) or bias [out] says otherwise. "
                     "If it is a convolution's kernel [*kernel, in, out], its fan-in is the taps x in: give the "
                     f"factory's 'fan_in': {{{axes}}} (every axis but the last); if a stack of matrices, "
                     f"'fan_in': {{{unsaid[0][0]!r}: [{len(shape) - 2}]}} says so")
    code = usercode.code_part(usercode.stamp(ref))  # not again when only a file the model reads changed
    for note in notes:
        if (code, note) not in _SAID:
            _SAID.add((code, note))
            warnings.warn(note, SweepWarning, stacklevel=2)


def _another_width(ref: str, w: int, widths: list[int], depth: int, vocab: int, seq_len: int
                   ) -> tuple[int, UserModel] | None:
    """The model at another width of the sweep, else at twice ``w`` (None if the factory refuses it): what
    grows with the width."""
    for w2 in [x for x in widths if x != w] or [2 * w]:
        try:
            return w2, build(ref, w2, depth, vocab, seq_len)
        except ValueError:
            if w2 in widths:
                raise
    return None


def _trace(model: UserModel, width: int, seq_len: int, vocab: int, batch: int = 2) -> None:
    """``apply`` traced without running (``jax.eval_shape``) on the sweep's batch: errors inside it and logits of
    another shape or a non-float dtype are ValueErrors naming the width. So is a ``record`` name given twice in
    one forward (a loop's ``record("mlp", h)``: only its last call was kept, and the check passed on it) or the
    runner's own ``logits``, and a value recorded inside a ``lax.scan``/``while_loop``/``cond`` body, ``vmap``,
    ``checkpoint`` or a nested ``jit``: a tracer of that inner trace, which the run cannot carry out of it (it
    crashed at the first step with XLA's "compiled for 43 inputs but called with 15", a user review)."""
    import jax
    import jax.numpy as jnp

    seen: set[str] = set()
    outer: list[Any] = []  # the trace apply is called under (its tokens'), once apply runs

    def record(name: Any, x: Any) -> Any:
        if not isinstance(name, str):
            raise ValueError(f"record(name, x): name must be a str, got {type(name).__name__} {name!r}")
        if name in seen or name == "logits":
            raise ValueError(f"record(name, x): {name!r} " + ("is the runner's own record of the logits" if
                             name == "logits" else "is recorded twice in one forward (a loop's calls need a name "
                             "each, e.g. f'mlp{i}')") + ": only one value per name is kept")
        inner = getattr(x, "_trace", None) if isinstance(x, jax.core.Tracer) else None
        if outer and outer[0] is not None and inner is not None and inner is not outer[0]:
            raise ValueError(f"record({name!r}, x) was called inside a jax.lax.scan/while_loop/"
                             "fori_loop/cond body, a jax.vmap, jax.checkpoint or a nested jax.jit (a traced inner "
                             "function): its value cannot leave it, so it cannot be recorded; record outside the "
                             "loop, or on the loop's outputs (e.g. return each layer's activation as the scan's ys "
                             "and record ys[i] under f'blk{i}')")
        seen.add(name)
        return x

    def traced(p: Any, t: Any) -> Any:
        outer.append(getattr(t, "_trace", None))
        return model.apply(model.tree(p), t, record)

    params = {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in model.shapes.items()}
    tokens = jax.ShapeDtypeStruct((batch, seq_len), jnp.int32)
    try:
        out = jax.eval_shape(traced, params, tokens)
    except SystemExit as exc:
        raise ValueError(f"model: apply at width {width} called sys.exit({exc.code!r})") from None
    except Exception as exc:  # noqa: BLE001 - the user's code: any failure is theirs, said in one line
        raise ValueError(f"model: apply at width {width} failed: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    want = (batch, seq_len, vocab)
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != want or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        got = f"{type(out).__name__}" if shape is None else f"{dtype} {list(shape)}"
        raise ValueError(f"model: apply at width {width} must return float logits [batch, seq_len, vocab] = "
                         f"{list(want)} for tokens [{batch}, {seq_len}], got {got}")


# --- the runner's model-module interface (runner.train._module) ---------------------------------------


def param_specs(cfg: ModelConfig) -> dict[str, ParamSpec]:
    assert cfg.factory is not None
    return layout(build(cfg.factory, cfg.width, cfg.depth, cfg.vocab, cfg.seq_len), cfg.width, cfg.fan_in_exponent,
                  grown_model(cfg.factory, cfg.width, cfg.depth, cfg.vocab, cfg.seq_len), cfg.readout_fan_in_exponent)


def muon_dims(cfg: ModelConfig) -> dict[str, Any]:
    """How Muon orthogonalises each hidden parameter at ``cfg``'s width, as abcscale.optax's Muon reads the same tree
    (``runner.export._muon_dims``, given the factory's ``fan_in`` as the size its axes make): a conv kernel [*kernel,
    in, out] one [taps x in, out] matrix (Keller Jordan's Muon flattens a conv filter alike, and the theory's fan-in
    is taps x in), a ``lax.scan`` stack [depth, in, out] one matrix a layer, a flax attention's kernels [D, heads,
    head_dim] one [D, heads x head_dim] matrix; None (Adam's step) for one of fewer than two axes. Only the hidden
    role's: ``runner.optim.make_optimizer(muon_dims=)``. The sweep orthogonalised the 2-D matrices alone, and a
    conv kernel took Adam's step at Muon's hidden LR where the export orthogonalised it (constants tuned on one
    optimizer exported onto another: a review, session 68)."""
    from abcscale.runner import export
    from abcscale.runner.nn import HID

    assert cfg.factory is not None
    model = build(cfg.factory, cfg.width, cfg.depth, cfg.vocab, cfg.seq_len)
    stacks = export._bias_stacks(list(model.shapes.items()))
    out: dict[str, Any] = {}
    for name, spec in param_specs(cfg).items():
        if spec.layer != HID:
            continue
        axes = model.fan_in.get(name)
        out[name] = export._muon_dims(name, spec.shape, "jax", cfg.width,
                                      math.prod(spec.shape[a] for a in axes) if axes else None, stacks.get(name))
    return out


def layout_digest(cfg: ModelConfig, optimizer: str | None = None) -> str:
    """A digest of what :func:`param_specs` trains at ``cfg``'s width: each parameter's shape, role, init kind and
    std constant. A user model's cell key holds it (``runner.spec.Cell``), so a change of the layout rules (a
    dense-kernel embedding drawn at fan-in^-1/2, a growing vocab-long bias made vector, in session 63) is
    another cell, not a resumed folder's runs of two inits in one cell (a code review). Under Muon (``optimizer``
    the cell's, None for any) the matrices :func:`muon_dims` orthogonalises a hidden tensor of 3 or more axes as."""
    specs = param_specs(cfg)
    rows: list[Any] = sorted((name, list(s.shape), SPEC_ROLES[s.layer].value, s.init, float(s.std_const).hex())
                             for name, s in specs.items())
    # a hidden tensor of 3 or more axes took Adam's step under Muon before session 68, now Muon's as the export
    # reads it: its matrices enter a Muon cell's digest (``optimizer``, the cell's; None: any), only where there is
    # one, so the keys of other models' and other optimizers' cells stay
    if optimizer in (None, "muon"):
        rows += sorted(("muon", name, repr(dims)) for name, dims in muon_dims(cfg).items()
                       if dims is not None and len(specs[name].shape) >= 3)
    blob = repr(rows)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def apply(cfg: ModelConfig, params: dict[str, jax.Array], mult_3: jax.Array, tokens_BxT: jax.Array,
          probes: Probes) -> jax.Array:
    """The user's plain model: the multiplier-free form has every multiplier 1, so ``mult_3`` is unused."""
    del mult_3
    assert cfg.factory is not None
    model = build(cfg.factory, cfg.width, cfg.depth, cfg.vocab, cfg.seq_len)
    return probes.record("logits", model.apply(model.tree(params), tokens_BxT, probes.record))
