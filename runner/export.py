"""The parameter-group spec for any JAX parameter tree: role labels, an optax transformation, an init rescaler.

Public as :mod:`abcscale.optax`. A leaf's name is its key path joined with ``/`` (a flax tree's
``params/Dense_0/kernel``, an equinox module's ``layers/0/weight``, a flat dict's own keys), and
:func:`abcscale.theory.groups.assign` reads its role from the spec's rules and its shape. ``layout`` says which
axis is the fan-in: ``jax`` (flax kernels are [in, out]) or ``torch`` ([out, in], equinox's ``Linear``). An
embedding leaf named like a dense weight (flax's ``kernel``, haiku's ``w``) is a dense input layer, whose init std
takes its fan-in^-1/2 (:func:`abcscale.theory.groups.dense_input_std`).

The transformation is ``optax.multi_transform`` over the roles, each role the spec's optimizer built by optax
itself with that role's LR (times an optional schedule), Adam epsilon and weight decay: ``optax.lion`` for lion,
and for muon ``optax.contrib.muon`` on the hidden role and ``optax.adamw`` on the others (Muon's hybrid).
The spec's numbers are what the model must *apply*: a spec in the ``multiplier_free`` form suits a plain
model; in the ``abc`` or ``mup`` form the model's forward must also apply the multipliers.
"""

from __future__ import annotations

import math
import numbers
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from abcscale.schemas.enums import Optimizer, WeightDecayMode
from abcscale.schemas.groups import GroupRule, GroupSpec, Role, RoleSetting
from abcscale.theory.groups import (
    DEFAULT_RULES,
    PARAM_SCALE_FLOOR,
    _in_block,
    assign,
    check_width,
    dense_input_std,
    is_dense_leaf,
    named_role,
    readout_candidates,
    refusal,
    router_note,
    rule_for,
    settle_fixed,
    several_readouts_note,
    tied_readout_multiplier,
    unmatched_note,
)

Params = Any
Schedule = Callable[[Any], Any]
#: a convolution's kernel by its own module's name (flax ``Conv_0/kernel``, ``ConvLocal_0``; haiku ``conv2_d/w``): the
#: module the leaf sits in, not any on its path (a Dense under ``convnext_stage`` is no conv, a code review)
#: (``conv1``/``conv_2`` too: the names flax NNX's examples give conv attributes, read as dense before, an init std 3x
#: too large for a 3x3 kernel, unsaid: a review, session 53)
_CONV = re.compile(r"(^|/)(conv(local|_?transpose)?_?\d*|conv[123]_d(_\d+)?)/(kernel|w)$", re.IGNORECASE)


#: the modules between a user's call and a warning of this one's: ``abcscale.optax`` names these functions, and its
#: own helper calls them
_OWN_MODULES = frozenset({__name__, "abcscale.optax"})


def _warn(message: str) -> None:
    """``warnings.warn(message)`` at the line that called abcscale: the first frame outside this module and
    ``abcscale.optax``. A fixed stacklevel pointed at abcscale's own code (``abcscale/optax.py``'s ``_run``, or
    ``transform`` calling ``labels``), and every such warning shared that one location, so the default filter said
    a second tree's only where its text differed (a review, session 63). (Python 3.12's ``skip_file_prefixes``
    does this by file; 3.11 has none.)"""
    frame: FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and frame.f_globals.get("__name__") in _OWN_MODULES:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _key(k: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _leaf_names(paths: Sequence[tuple[Any, ...]]) -> list[str]:
    """Each leaf's name: its key path joined by ``/``, less the attribute a box holds its array in. flax NNX's
    ``Variable``/``VariableState`` (what ``nnx.state(model, nnx.Param)`` and ``nnx.Optimizer`` hand to optax) and
    linen's ``nn.Partitioned`` flatten to their ``.value`` alone: ``lm_head/kernel/value`` is the module ``lm_head``'s
    kernel. Kept, ``value`` (the hidden rule's name for attention's value projection) named every such leaf
    hidden, the embedding and readout too (LRs 8-32x off under muP + Adam, unsaid: a review, session 53). Only a
    box's only child is stripped: a module's own field ``value`` (an equinox attention's query, key and value
    arrays) keeps its name (a code review)."""
    def boxed(path: tuple[Any, ...]) -> bool:
        return len(path) > 1 and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name in ("value",
                                                                                                       "raw_value")

    siblings: dict[tuple[str, ...], int] = {}
    keys = [tuple(_key(k) for k in path) for path in paths]
    for key in keys:
        siblings[key[:-1]] = siblings.get(key[:-1], 0) + 1
    return ["/".join(key[:-1] if boxed(path) and siblings[key[:-1]] == 1 else key)
            for path, key in zip(paths, keys, strict=True)]


#: flax's MultiHeadDotProductAttention: its query, key and value kernels are [D, heads, head_dim], its out kernel
#: [heads, head_dim, D] (DenseGeneral): one [D, heads x head_dim] matrix each way
_HEADS_IN = re.compile(r"(^|/)(query|key|value)/kernel$", re.IGNORECASE)
_HEADS_OUT = re.compile(r"(^|/)out/kernel$", re.IGNORECASE)
#: Gemma's attention einsums (its flax linen and NNX code): q_einsum [heads, D, head_dim], kv_einsum [2, kv_heads,
#: D, head_dim], qkv_einsum [3, heads, D, head_dim], attn_vec_einsum [heads, head_dim, D]; read as [D, ...] and
#: [heads x head_dim, D] matrices (refused before, "the model is 16 wide" for head_dim 16: a review, session 53)
_EINSUM_IN = re.compile(r"(^|/)(q|kv|qkv)_einsum/w$", re.IGNORECASE)
_EINSUM_OUT = re.compile(r"(^|/)attn_vec_einsum/w$", re.IGNORECASE)
#: Gemma's MLP input, gate and up stacked: (2, D, F), or (2, F, D) where its config transposes it (Gemma 3's,
#: ``transpose_gating_einsum``): then the fan-in is the last axis (read as F, an init 2x too small: a code review)
_GATING = re.compile(r"(^|/)gating_einsum(/w)?$", re.IGNORECASE)
#: flax's ConvLocal kernel [*output positions, kernel x in, out]: its fan-in axis already holds the kernel (the
#: output positions taken as kernel axes gave an init 16x too small, a code review)
_CONV_LOCAL = re.compile(r"(^|/)convlocal(_\d+)?/kernel$", re.IGNORECASE)
#: haiku's transposed convolution (``conv2_d_transpose/w``): its kernel is [*kernel, out, in], the other way round
#: from flax's and haiku's own forward convs (it was read as a dense [in, out] leaf, a code review)
_HAIKU_TRANSPOSED = re.compile(r"(^|/)conv[123]_d_transpose(_\d+)?/w$", re.IGNORECASE)
#: a transposed convolution's kernel: each output takes ceil(k / stride) taps of each kernel axis, a stride the
#: tree does not hold
_TRANSPOSED = re.compile(r"(^|/)(conv_?transpose|conv[123]_d_transpose)(_\d+)?/(kernel|w)$", re.IGNORECASE)


def _bias_stacks(named: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, int]:
    """The dense leaves (flax ``kernel``, haiku ``w``) of 3 or more axes whose module's bias says which of their
    leading axes are a stack's: a bias [*stack, out] beside a kernel [*stack, *rest, in, out] (an ``nn.scan`` stack of
    convs: ``layers/Conv_0/kernel`` [depth, 3, 3, C, C] beside its bias [depth, C]), each with its number of stack
    axes. The kernel's axes between the stack's and its last two are contracted with its input (a conv's taps): a bias
    is added per output, never per contracted axis. None where the module has no bias of that form."""
    shapes = dict(named)
    out = {}
    for name, shape in named:
        parent, _, leaf = name.rpartition("/")
        if leaf not in ("kernel", "w") or len(shape) < 3:
            continue
        bias = shapes.get(f"{parent}/{'bias' if leaf == 'kernel' else 'b'}" if parent else
                          ("bias" if leaf == "kernel" else "b"))
        if bias is None or not bias or bias[-1] != shape[-1] or len(bias) - 1 > len(shape) - 2 \
                or tuple(bias[:-1]) != tuple(shape[:len(bias) - 1]):
            continue
        out[name] = len(bias) - 1
    return out


def _read(name: str, shape: tuple[int, ...], layout: str, width: int, stack: int | None = None
          ) -> tuple[tuple[int, ...], int, str]:
    """The matrix a leaf's role is read from ([in, out] in the jax layout, [out, in] in the torch one), what its
    fan-in takes beyond that matrix's input axis (a conv's kernel size), and what it was read as ("conv",
    "depthwise", "local", "heads", or "" for the leaf as it is).

    A flax conv kernel [*kernel, in, out] by its module's name; in the torch layout (equinox) a weight [out, in,
    *kernel] whose kernel axes are all under the width (a stack [depth, out, in] is not); a flax attention's
    [D, heads, head_dim] and [heads, head_dim, D] kernels by their modules' names, heads and head_dim under the
    width (an nn.scan stack of them too); a ConvLocal kernel [*positions, kernel x in, out] as its matrices.
    Each asked for a rule that could not be given before (session 52, a review: "a hidden matrix's shape for
    width 3" for an equinox conv, "for width 4" for flax's attention).

    ``stack`` (:func:`_bias_stacks`): the leaf's bias says its first ``stack`` axes are a stack's, the axes after
    them up to its last two contracted: a conv kernel whatever its module's name (``conv_a``, ``proj``, an NNX
    ``nn.List``'s ``layers/0``: read as a dense stack before, an init std 3x too large for a 3x3 kernel, a review,
    session 67), and an ``nn.scan`` stack of convs is read per layer (its depth was taken as a kernel axis, an init
    std 2x too small at depth 4)."""
    nd = len(shape)
    if layout == "jax":
        if nd >= 3 and _HAIKU_TRANSPOSED.search(name):  # haiku's [*kernel, out, in]
            return (shape[-1], shape[-2]), math.prod(shape[(stack or 0):-2]), "conv"
        if nd >= 3 and _CONV_LOCAL.search(name):  # [*out_positions, kernel x in, out]: each position's own matrix
            return shape[-2:], 1, "local"
        if nd >= 3 and _CONV.search(name):
            return shape[-2:], math.prod(shape[(stack or 0):-2]), "depthwise" if shape[-2] == 1 else "conv"
        # (a leading axis more: an nn.scan stack of them, read by its last two as any stack). One head of the width
        # (head_dim = D, a flax attention at its base width) is a head too: [D, 1, D], [1, D, D] (refused before,
        # "its fan-in axis (1) is no multiple of the width", a review, session 67); a stack [depth, D, D] is not
        if nd in (3, 4) and _HEADS_IN.search(name) and shape[-2] < width and shape[-1] <= width:
            return (*shape[:-2], shape[-2] * shape[-1]), 1, "heads"
        if nd in (3, 4) and _HEADS_OUT.search(name) and _heads_out(shape, width):
            return (*shape[:-3], shape[-3] * shape[-2], shape[-1]), 1, "heads"
        if (m := _EINSUM_IN.search(name)) and nd == (3 if m.group(2).lower() == "q" else 4) \
                and max(shape[-1], *shape[:-2]) < width:
            return (shape[-2], math.prod(shape) // shape[-2]), 1, "heads"
        if nd == 3 and _EINSUM_OUT.search(name) and max(shape[:2]) < width:
            return (shape[0] * shape[1], shape[2]), 1, "heads"
        if nd == 3 and _GATING.search(name) and shape[-1] == width != shape[-2]:  # (2, F, D): D in
            return (shape[-1], shape[0] * shape[-2]), 1, "heads"
        if _conv_by_bias(shape, width, stack):
            return shape[-2:], math.prod(shape[stack or 0:-2]), "depthwise" if shape[-2] == 1 else "conv"
        if stack is None and nd >= 3 and shape[-2] == 1 and max(shape[:-2]) < width \
                and re.search(r"(^|/)(kernel|w)$", name):
            # one input channel under 1+ kernel axes, no bias: a depthwise conv (ConvNeXt's `dwconv` [7, 7, 1, C],
            # offered the embedding's role before: a review, session 67; a 1-D one [k, 1, C], Mamba's and
            # ConvNeXt-1D's, the same until session 69), or a one-channel stem (warned below)
            return shape[-2:], math.prod(shape[:-2]), "depthwise"
    elif _torch_conv(name, shape, width):
        return shape[:2], math.prod(shape[2:]), "depthwise" if shape[1] == 1 else "conv"
    return shape, 1, ""


def readout_fan(shape: tuple[int, ...], view: tuple[int, ...], kernel: int, kind: str, layout: str) -> int:
    """What one output of a readout sums over, read from its shape (:func:`_read`'s ``view``, ``kernel`` and ``kind``):
    the read matrix's input axis times the kernel's size (a conv's taps); a readout of 3 or more axes that nothing
    else reads (``kind`` "", no conv by name or bias, no attention kernel) every axis but its output's: a conv
    readout no conv name reads (diffusers' `conv_out` [3, 3, C, 4], as abcscale.torch reads it by its class: 9x its
    std before, a review) and an einsum over all but its last axis (flax's ``DenseGeneral(axis=(-2, -1))``, [heads,
    head_dim, V]). A readout's outputs never grow with the width, so an axis read into the fan-in that the model does
    not contract (``DenseGeneral(features=(a, V))``'s [D, a, V]) is a fixed size: its init std off by a constant
    factor, the same in the sweep (``runner.user.layout`` reads it here) and in this export, never another width
    exponent; ``fan_in=`` (the factory's ``fan_in`` axes) says the contraction. (The runner took the second last
    axis alone, [heads, head_dim, V] at head_dim: a readout std that did not shrink with the width where this export's
    did, a review, session 68.)"""
    if kind == "" and len(shape) > 2:
        return math.prod(shape[:-1]) if layout == "jax" else math.prod(shape[1:])
    return (view[-2] if layout == "jax" else view[-1]) * kernel


def _heads_out(shape: tuple[int, ...], width: int) -> bool:
    """A flax attention's out kernel [(depth,) heads, head_dim, D]: heads and head_dim under the width, or one head
    of the width's head_dim ([1, D, D]); a stack of the model's matrices [depth, D, D] is none."""
    return max(shape[-3:-1]) < width or (shape[-3] == 1 and shape[-2] <= width)


def _conv_by_bias(shape: tuple[int, ...], width: int, stack: int | None) -> bool:
    """A dense leaf whose bias (:func:`_bias_stacks`) leaves axes of it before its last two, each under the width: a
    conv kernel [(*stack,) *kernel, in, out] (a 1-D one [k, C, C] only where its inputs grow with the width or are
    one, a depthwise's: a DenseGeneral out projection [heads, head_dim, D] with a bias [D] is no conv)."""
    if stack is None:
        return False
    taps = shape[stack:-2]
    return bool(taps) and max(taps) < width and (len(taps) >= 2 or shape[-2] == 1 or shape[-2] % width == 0)


def _torch_conv(name: str, shape: tuple[int, ...], width: int) -> bool:
    """An equinox (torch-layout) conv weight [out, in, *kernel]: 3 to 5 axes, every kernel axis under the width, a
    weight's leaf name."""
    return 3 <= len(shape) <= 5 and max(shape[2:]) < width and bool(re.search(r"(^|/)(weight|w|kernel)$", name))


def _leaves(spec: GroupSpec, params: Params, rules: Sequence[GroupRule] | None, layout: str,
            fan_in: Mapping[str, int] | None = None) -> tuple[list[tuple[str, Any, Role, float | None]], Any]:
    """Each leaf's name, value, role and init std (fan-in aware), with the tree's structure."""
    if layout not in ("torch", "jax"):  # once, not once per leaf
        raise ValueError(f"layout: must be 'jax' (flax, haiku: kernels [in, out]) or 'torch' (equinox: weights "
                         f"[out, in]), got {layout!r}")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    written = [] if rules is None else list(rules)  # the caller's: a depthwise conv's role only they can change
    written += [r for r in spec.rules if r not in DEFAULT_RULES]
    names = _leaf_names([path for path, _ in with_path])
    if rules and (note := unmatched_note(names, rules, "leaf")):  # a typo leaves the leaf to its shape, unsaid
        _warn(note)
    rules = spec.rules if rules is None else [*rules, *spec.rules]  # before the spec's, as recommend(rules=)
    if fan_in is not None and not isinstance(fan_in, Mapping):  # a list or a number: dict()'s own TypeError
        raise ValueError(f"fan_in: expected a mapping {{leaf name: fan-in}}, got {type(fan_in).__name__}")
    fan_in = dict(fan_in or {})
    if unknown := sorted(set(fan_in) - set(names)):
        leaves = f"its leaves are named by key paths joined by '/': {names[0]!r}, ..." if names else "it has none"
        raise ValueError(f"fan_in: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} no leaf "
                         f"of the tree ({leaves})")
    for k, v in fan_in.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"fan_in: {k!r}: a positive integer (what one output sums over), got {v!r}")
    fan_in = {k: int(v) for k, v in fan_in.items()}  # numpy's integers as Python's (np.int64(64): a review)
    out, refused, views, transposed, depthwise, convs = [], [], [], [], [], []
    volumes: list[tuple[str, tuple[int, ...]]] = []  # conv kernels of 5+ axes, no bias: a 3-D conv, or a stack?
    unsaid: list[tuple[str, tuple[int, ...]]] = []  # kernels of 4+ axes read by their last two, no bias to tell
    stacks = _bias_stacks([(name, tuple(int(d) for d in leaf.shape)) for name, (_, leaf) in zip(names, with_path,
                                                                                               strict=True)
                           if hasattr(leaf, "shape")]) if layout == "jax" else {}
    if not names:  # None, {} or []: every export answered for no parameter, unsaid (a review, session 81)
        raise ValueError(f"params: {'None' if params is None else f'an empty {type(params).__name__}'}, no tree of "
                         "arrays; pass the model's parameters (for equinox: eqx.filter(model, eqx.is_array))")
    for name, (_, leaf) in zip(names, with_path, strict=True):
        if not name and getattr(leaf, "ndim", None) == 0:  # np.float64(1.0): a number, as 1.0 is
            raise ValueError(f"params: one bare {type(leaf).__name__} ({str(leaf)[:20]}), not a tree of arrays; pass "
                             "the model's parameters (for equinox: eqx.filter(model, eqx.is_array))")
        if not hasattr(leaf, "shape") and not name:  # the tree is the leaf: "parameter ''" named nothing
            raise ValueError(f"params: one bare {type(leaf).__name__} ({str(leaf)[:20]}), not a tree of arrays; pass "
                             "the model's parameters (for equinox: eqx.filter(model, eqx.is_array))")
        if not hasattr(leaf, "shape"):
            raise ValueError(f"parameter {name!r} is not an array ({type(leaf).__name__}); pass a tree of arrays "
                             "(for equinox: eqx.filter(model, eqx.is_array))")
        if (dtype := getattr(leaf, "dtype", None)) is not None and not jnp.issubdtype(dtype, jnp.inexact):
            # an unfiltered flax NNX state holds its RNG streams' keys and counts: labelled `fixed` and given an LR
            # before, unsaid (a review, session 53)
            raise ValueError(f"parameter {name!r} is an array of {dtype}, which no gradient trains: pass the trained "
                             "parameters alone (flax NNX: nnx.state(model, nnx.Param), not nnx.state(model); linen: "
                             "variables['params'])")
        if 0 in leaf.shape:  # no fan-in to scale an init by (it divided by zero)
            raise ValueError(f"parameter {name!r} has no entries (shape {tuple(leaf.shape)}); leave it out of the tree")
        shape = tuple(int(d) for d in leaf.shape)
        view, kernel, kind = _read(name, shape, layout, spec.width, stacks.get(name))
        try:
            if name in fan_in:  # said to be a contracted weight: hidden unless a rule names it (as a user model's)
                role, ratio = named_role(name, view, rules) or Role.hidden, 1.0
            elif kind == "depthwise" and named_role(name, view, written) is None:
                # a per-channel filter ([*kernel, 1, C], groups = channels): vector-like where its channels grow
                # with the width, fixed on a fixed number, as the torch export reads [C, 1, k, k] (microsoft/mup too)
                out_ch = view[-1] if layout == "jax" else view[0]
                role, ratio = (Role.vector if out_ch % spec.width == 0 else Role.fixed), 1.0
                depthwise.append(name)
            else:
                role, ratio = assign(name, view, spec.width, rules, layout)
        except ValueError as exc:  # every leaf that asks for a role, at once
            said = str(exc).replace(f"{name!r} {list(view)}", f"{name!r} {list(shape)} (read as the matrix "
                                    f"{list(view)})", 1) if view != shape else str(exc)
            refused.append((name, list(shape), said))
            continue
        # what one output sums over: the read matrix's input axis x the kernel's size (a conv's), or `fan_in`'s
        fan = fan_in[name] if name in fan_in else \
            (view[-2] if layout == "jax" else view[-1]) * kernel if len(view) >= 2 else 1
        if role is Role.hidden:
            # a conv's fan-in is its inputs x the kernel's size (flax's [*kernel, in, out] took in alone, an init 3x
            # too large for a 3x3 conv, a user review); `fan_in` says what the shape cannot (a strided transposed
            # conv, a conv module named otherwise, an nn.scan stack of convs, whose depth reads as a kernel axis)
            ratio = fan_in[name] / spec.width if name in fan_in else ratio * kernel
            if name not in fan_in and layout == "jax" and _TRANSPOSED.search(name):
                transposed.append(name)
        elif role is Role.readout and len(view) >= 2:
            # a readout's init std scales with its fan-in as a hidden one's does (spec.init_std("readout", r)), as
            # abcscale.torch places it: a head on 2D features (a [CLS] token and a mean pool) took the std of a
            # fan-in of D, 2x the torch export's (a review, session 65)
            if name not in fan_in:
                fan = readout_fan(shape, view, kernel, kind, layout)
            ratio = fan / spec.width
        std = spec.init_std(role, ratio)
        if std is not None and role is Role.embedding and len(shape) >= 2 and is_dense_leaf(name):
            # flax's Dense `kernel`, not Embed's `embedding`; its fan-in as read (a flax attention's key kernel [768,
            # heads, head_dim] on a context of 768 features, given the embedding's role, sums over 768, not 768 x
            # heads: a review, session 65)
            std = std * fan ** -0.5 if kind in ("heads", "local") or name in fan_in else \
                dense_input_std(std, shape, layout)
        if role is Role.hidden and not kind and name not in fan_in and name not in stacks and layout == "jax" \
                and len(shape) >= 4 and is_dense_leaf(name) and max(shape[:-2]) < spec.width:
            unsaid.append((name, shape))
        if role is Role.hidden and kind == "conv" and name not in fan_in and name not in stacks and layout == "jax" \
                and len(shape) >= 5 and not _HAIKU_TRANSPOSED.search(name):
            volumes.append((name, shape))
        out.append((name, leaf, role, std))
        views.append(view)
        if kind in ("conv", "depthwise", "local"):
            convs.append(name)
    if refused:  # every leaf that asks for a role, at once
        raise ValueError(refusal(refused))
    if len(depthwise) == 1:
        # one kernel of one input channel: a depthwise conv, or a stem on a one-channel (grayscale) input, which is
        # the embedding; a network has one stem, so several are depthwise (a code review: a stem read so, unsaid)
        _warn(f"{depthwise[0]}: one input channel, read as a depthwise convolution (vector-like, its own "
                      "init kept); if it is a stem on a one-channel input, it is the embedding: "
                      f"rules=[({depthwise[0]!r}, 'embedding')]")
    if unsaid:
        _warn(_unsaid_conv_note(unsaid))
    if volumes:
        said = ", ".join(f"{name!r}: {math.prod(shape[1:-1])}" for name, shape in volumes[:3])
        _warn(f"{', '.join(name for name, _ in volumes[:3])}{' ...' if len(volumes) > 3 else ''}: {len(volumes[0][1])} "
              f"axes {list(volumes[0][1])} under a conv module's name and no bias, read as one convolution's kernel of "
              f"{len(volumes[0][1]) - 2} kernel axes (fan-in {math.prod(volumes[0][1][:-1])}, one Muon matrix); if "
              "its first axis is an nn.scan stack's (the depth) of convolutions of one axis fewer, each layer's "
              f"fan-in is its own taps x in: fan_in={{{said}{', ...' if len(volumes) > 3 else ''}}} (abcscale sweep "
              "--model asks where that axis is the depth)")
    if transposed:
        _warn(f"{', '.join(transposed)}: a transposed convolution's init std takes its whole kernel as the "
                      "fan-in; with a stride each output takes ceil(k / stride) taps of each kernel axis (k = 2, "
                      "stride 2: one): give it as fan_in={name: in_channels x taps}")
    # the readout's bias has no width-sized axis: fixed, not vector (its LR grew with the width under SGD)
    settled = settle_fixed([(name, view, role) for (name, _, role, _), view in zip(out, views, strict=True)],
                           rules, spec.width, layout=layout)
    out = [(name, leaf, role, std) for (name, leaf, _, std), role in zip(out, settled, strict=True)]
    read = [(name, view, role) for (name, _, role, _), view in zip(out, views, strict=True)]
    shapes = {name: tuple(int(d) for d in leaf.shape) for name, leaf, _, _ in out}
    try:
        # (a convolution's fan-in is its kernel's too: a ConvLocal's [kernel x in, out], a lone axis, is no input)
        check_width(read, spec.width, layout, rules, said=[*fan_in, *convs])
    except ValueError as exc:  # the leaves as stored, with the matrix each was read as (a flax attention's key)
        raise ValueError(_as_stored(str(exc), read, shapes)) from None
    if note := router_note(read, rules, spec.width, fan_in):
        _warn(note)
    if note := several_readouts_note(read):
        _warn(note)
    _check_headless(spec, read, shapes, rules, layout, fan_in)
    if note := _inputless_note(read, rules, spec.width, layout, [*fan_in, *convs]):
        _warn(note)
    return out, treedef


def _unsaid_conv_note(unsaid: Sequence[tuple[str, tuple[int, ...]]]) -> str:
    """The warning for kernels of 4 or more axes, under no conv module's name and with no bias to say which axes they
    contract, read as stacks of [in, out] matrices by their last two axes (fan-in ``in``): a conv module named
    otherwise (``conv_a``, ``proj``, an NNX ``nn.List``'s ``layers/0`` with ``use_bias=False``) contracts its taps too,
    its init std then (taps)^1/2 too large and Muon orthogonalising each tap alone (unsaid before: a review, session
    67)."""
    names = [name for name, _ in unsaid]
    said = ", ".join(f"{name!r}: {math.prod(shape[:-1])}" for name, shape in unsaid[:3])
    shape = unsaid[0][1]
    which = f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
    conv = "it is a convolution's" if len(names) == 1 else "they are convolutions'"
    return (f"{which}: {len(shape)} axes {list(shape)}, read as a stack of [in, out] matrices by the last two "
            f"(fan-in {shape[-2]}); no conv module's name (Conv_0, conv1) or bias [out] says otherwise. If {conv} "
            "kernel [*kernel, in, out], its fan-in is the taps x in: give it, "
            f"fan_in={{{said}{', ...' if len(names) > 3 else ''}}} (an nn.scan stack of convs: one layer's taps x "
            "in); if a stack of matrices, fan_in={name: in} says so")


def _inputless_note(read: Sequence[tuple[str, tuple[int, ...], Role]], rules: Sequence[GroupRule], width: int,
                    layout: str, said: Sequence[str]) -> str | None:
    """A tree with no embedding or input layer whose top-level matrix maps another multiple of the width to the width,
    hidden by its shape alone (no rule, outside numbered blocks): an MLP's input layer on 512 features at width 256
    (`input_proj` [512, 256]) has a hidden matrix's shape where the blocks' MLP ratio is 2 (it trained at the hidden
    LR, 32x too small under muP + Adam, unsaid: a review, session 67). Said, not changed: a backbone's projection
    reads alike. ``said``: the leaves whose fan-in is known (given, or a convolution's kernel), left alone."""
    if any(role is Role.embedding for _, _, role in read):
        return None
    hits = [name for name, view, role in read
            if role is Role.hidden and len(view) == 2 and name not in said and not _in_block(name)
            and (view[-1] if layout == "jax" else view[0]) == width
            and (view[0] if layout == "jax" else view[-1]) != width
            and named_role(name, view, rules, width, layout) is None]
    if not hits:
        return None
    return (f"no embedding or input layer among the parameters: {', '.join(map(repr, hits[:3]))}"
            f"{' ...' if len(hits) > 3 else ''} (outside the blocks, its shape a hidden matrix's) maps "
            f"{'its inputs' if len(hits) == 1 else 'their inputs'} to the width; if it is the model's input layer "
            f"(a fixed number of features), it is the embedding: rules=[({rule_for(hits[0])}, 'embedding')]; if the "
            f"inputs grow with the width, rules=[({rule_for(hits[0])}, 'hidden')] says so")


def _as_stored(message: str, read: Sequence[tuple[str, tuple[int, ...], Role]],
               shapes: Mapping[str, tuple[int, ...]]) -> str:
    """``message`` with each leaf that was read as another matrix than its shape (a flax attention kernel [D, heads,
    head_dim] as [D, D]) said as stored, with what it was read as."""
    for name, view, _ in read:
        if list(view) != list(shapes[name]):
            message = message.replace(f"{name!r} {list(view)}", f"{name!r} {list(shapes[name])} (read as the matrix "
                                      f"{list(view)})")
    return message


def _check_headless(spec: GroupSpec, read: Sequence[tuple[str, tuple[int, ...], Role]],
                    shapes: Mapping[str, tuple[int, ...]], rules: Sequence[GroupRule], layout: str,
                    fan_in: Mapping[str, int]) -> None:
    """A tree with an embedding or input layer and no readout (none named): a matrix that may be its output layer,
    unpaired (hidden by its shape, no rule naming it, outside numbered blocks, of fan-in the width, with no
    transposed twin as an MLP's up and down projections have: :func:`abcscale.theory.groups.readout_candidates`), is
    a ValueError asking for its role, as abcscale.torch asks; otherwise a warning says no readout was found, naming
    the top-level matrices that could be it, and where the embedding is a table the logits can use (a 2-D leaf,
    not a conv's kernel) the multiplier tied logits need. A ViT's classifier `Dense_0` [512, 2048] (classes = its
    MLP's width) trained as a hidden matrix, and the one warning spoke of a tied embedding its conv patches could
    not be (a review, session 65)."""
    roles = {role for _, _, role in read}
    if Role.embedding not in roles or Role.readout in roles:
        return
    candidates = [(name, alone) for name, alone in readout_candidates(read, rules, spec.width, layout)
                  if name not in fan_in]  # said to be a contracted (hidden) weight
    views = {name: view for name, view, _ in read}
    embedding = next((name for name, view, role in read if role is Role.embedding and len(view) >= 2),
                     next(name for name, _, role in read if role is Role.embedding))
    if unpaired := [name for name, alone in candidates if alone]:
        name, dims = unpaired[0], views[unpaired[0]]
        more = f" (and the same for {', '.join(map(repr, unpaired[1:3]))})" if len(unpaired) > 1 else ""
        raise ValueError(_as_stored(
            f"parameter {name!r} {list(dims)}: no rule names its role, and the model has an embedding or input "
            f"layer ({embedding!r}) but no readout: its shape reads as a hidden matrix's, with no transposed twin (an "
            f"MLP's up and down projections pair), as a classifier's of {dims[-1] if layout == 'jax' else dims[0]} "
            f"classes at width {spec.width} does; add a rule (pattern, role) for it: ({rule_for(name)}, 'readout') "
            f"for the output layer, ({rule_for(name)}, 'hidden') for a projection{more}", read, shapes))
    # tied logits (flax's Embed.attend, h @ E.T) read a 2-D table: a conv's kernel or a position table [1, L, D] is none
    tied = any(role is Role.embedding and len(shapes[name]) == 2 and not is_dense_leaf(name)
               for name, _, role in read)
    try:
        t = f"multiply them by {tied_readout_multiplier(spec):.6g} (theory.groups.tied_readout_multiplier(spec))"
    except ValueError:  # a spec without init stds
        t = "give them the readout's forward scale over the embedding's init std"
    if tied and not candidates:
        # the torch export warns for a tied pair alike (a review: a plain-form tied model started at loss 215, ln V 6.9)
        _warn("no readout among the parameters: if the logits use the embedding's matrix (tied, flax's "
              f"Embed.attend), {t}; the matrix trains as the embedding")
        return
    named = [name for name, _ in candidates]
    which = (f"if its output layer is {' or '.join(map(repr, named[:3]))}{' ...' if len(named) > 3 else ''} (a "
             f"hidden matrix by its shape), add a rule: ({rule_for(named[0])}, 'readout')" if named else
             "if it has an output layer, add a rule (pattern, 'readout') for it")
    _warn(f"no readout among the parameters: the tree has an embedding or input layer ({embedding!r}) and no leaf "
          f"that a name or a rule makes the readout (a backbone or feature extractor has none); {which}"
          + (f"; if the logits use the embedding's matrix (tied, flax's Embed.attend), {t}" if tied else ""))


def labels(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
           layout: str = "jax", fan_in: Mapping[str, int] | None = None) -> Params:
    """The tree of role names (``embedding``, ``hidden``, ``readout``, ``vector``, ``fixed``), shaped like ``params``.

    A parameter that no rule names and whose shape does not say is a ValueError naming it: pass ``rules``
    (tried in order before the spec's, e.g. ``[GroupRule(pattern=r"Dense_2", role="readout")]``)."""
    leaves, treedef = _leaves(spec, params, rules, layout, fan_in)
    return jax.tree_util.tree_unflatten(treedef, [role.value for _, _, role, _ in leaves])


def lr_tree(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
            layout: str = "jax", fan_in: Mapping[str, int] | None = None) -> Params:
    """Each leaf's learning rate (before any schedule), for inspection."""
    leaves, treedef = _leaves(spec, params, rules, layout, fan_in)
    return jax.tree_util.tree_unflatten(treedef, [spec[role].lr for _, _, role, _ in leaves])


def init_std_tree(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
                  layout: str = "jax", fan_in: Mapping[str, int] | None = None) -> Params:
    """Each leaf's init std (None for a vector-like or fixed leaf, which keeps its own init), for inspection."""
    leaves, treedef = _leaves(spec, params, rules, layout, fan_in)
    return jax.tree_util.tree_unflatten(treedef, [std for _, _, _, std in leaves])


def multiplier_tree(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
                    layout: str = "jax", fan_in: Mapping[str, int] | None = None) -> Params:
    """Each leaf's forward multiplier: what the forward multiplies that layer's output by (1.0 where none; the
    abc form's embedding and readout, the mup form's readout), as ``abcscale.torch.multipliers`` gives it per
    name. A readout tied to the embedding leaf (logits ``h @ E.T``) takes
    ``theory.groups.tied_readout_multiplier(spec)`` on those logits instead: a tree holds the tensor once."""
    leaves, treedef = _leaves(spec, params, rules, layout, fan_in)
    return jax.tree_util.tree_unflatten(treedef, [spec[role].multiplier or 1.0 for _, _, role, _ in leaves])


def _role_optimizer(spec: GroupSpec, s: RoleSetting, lr: float | Schedule, betas: tuple[float, float],
                    momentum: float, muon: tuple[Any, ...]) -> optax.GradientTransformation:
    """optax's own optimizer of ``spec.optimizer`` with the role's numbers (``muon``: its beta, the layout, the
    width, the fan-ins the call was given and the conv kernels' stack axes, :func:`_bias_stacks`)."""
    if spec.optimizer is Optimizer.sgd:
        wd = s.weight_decay or 0.0
        if not wd:
            return optax.sgd(lr, momentum=momentum or None)
        if spec.weight_decay_mode is WeightDecayMode.independent:  # W <- W - lr u - wd W, unscheduled
            return optax.chain(optax.sgd(lr, momentum=momentum or None), optax.add_decayed_weights(-wd))
        # coupled: torch.optim.SGD's L2 term, wd W added to the gradient before the momentum and the LR
        return optax.chain(optax.add_decayed_weights(wd), optax.sgd(lr, momentum=momentum or None))
    if spec.optimizer is Optimizer.adafactor:
        return _adafactor(lr, s.param_scale_floor)
    b1, b2 = betas
    eps = 1e-8 if s.epsilon is None else s.epsilon
    wd = s.weight_decay or 0.0
    # independent: W <- W - lr u - wd W, the decay not scaled by the LR nor the schedule (theory/weight_decay.py)
    independent = spec.weight_decay_mode is WeightDecayMode.independent and wd > 0.0
    coupled = 0.0 if independent else wd  # coupled: W <- W - lr (u + wd W)
    if spec.optimizer is Optimizer.lion:
        core = optax.lion(lr, b1=b1, b2=b2, weight_decay=coupled)
    elif spec.optimizer is Optimizer.muon and s.role is Role.hidden:
        core = _muon(lr, betas, eps, coupled, *muon)
    elif spec.optimizer is Optimizer.adam or wd == 0.0:
        return optax.adam(lr, b1=b1, b2=b2, eps=eps)
    else:  # adamw, and muon's AdamW on the embedding, readout and vector-like roles
        core = optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=coupled)
    return optax.chain(core, optax.add_decayed_weights(-wd)) if independent else core


def _adafactor(lr: float | Schedule, floor: float | None) -> optax.GradientTransformation:
    """``optax.adafactor(learning_rate=lr)`` with the role's floor on rms(W) in its parameter scaling (optax fixes
    it at 1e-3, the abc form's; a form whose init std is smaller maps it down with the parameter)."""
    if floor is None or floor == PARAM_SCALE_FLOOR:
        return optax.adafactor(learning_rate=lr)
    # optax.adafactor's own chain at its defaults, with min_scale given
    return optax.chain(optax.scale_by_factored_rms(), optax.clip_by_block_rms(1.0),
                       optax.scale_by_learning_rate(lr, flip_sign=False), optax.scale_by_param_block_rms(floor),
                       optax.scale(-1.0))


def _muon(lr: float | Schedule, betas: tuple[float, float], eps: float, wd: float, beta: float,
          layout: str, width: int, fan_in: Mapping[str, int] | None = None,
          stacks: Mapping[str, int] | None = None) -> optax.GradientTransformation:
    """optax's ``contrib.muon`` on the hidden role: orthogonalised Nesterov momentum times the spectral shape
    factor sqrt(max(1, fan_out / fan_in)) (optax's default, the runner's and Keller Jordan's) on every hidden
    tensor of two or more axes (:func:`_muon_dims`, with the ``fan_in`` given), as theory's hidden exponent for
    Muon assumes."""
    def dims(params: Params) -> Params:
        with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
        names = _leaf_names([path for path, _ in with_path])  # as _leaves names them (a box's value left out)
        shapes = [tuple(int(d) for d in x.shape) for _, x in with_path]
        # the whole tree's (optax masks the other roles' leaves, the conv's bias among them, out of this one's)
        return jax.tree_util.tree_unflatten(treedef, [_muon_dims(name, shape, layout, width,
                                                                 (fan_in or {}).get(name), (stacks or {}).get(name))
                                                      for name, shape in zip(names, shapes, strict=True)])

    tx = contrib.muon(lr, beta=beta, eps=eps, weight_decay=wd, adam_b1=betas[0], adam_b2=betas[1],
                      adam_weight_decay=wd, muon_weight_dimension_numbers=dims)
    # optax's Newton-Schulz runs a lax.scan over a closure it makes anew each call, so an update called eagerly
    # (a training loop without jax.jit) traced and compiled its scans again every step: 1.3-1.4 s a step for a
    # width-64 model. Jitted here, the first update compiles and later ones reuse it; inside a user's jitted step
    # the inner jit is inlined, the same program as before.
    return optax.GradientTransformationExtraArgs(tx.init, jax.jit(tx.update))


def _muon_dims(name: str, shape: tuple[int, ...], layout: str, width: int = 0, fan_in: int | None = None,
               stack: int | None = None) -> contrib.MuonDimensionNumbers | None:
    """Which axes Muon orthogonalises over (the fan-in, reduced) and into (the fan-out); the rest are a stack's
    own matrices, each orthogonalised alone. A flax conv kernel [*kernel, in, out] is one [kernel x in, out]
    matrix (Keller Jordan's Muon flattens conv filters alike), a ``lax.scan`` stack [depth, in, out] depth
    matrices, and in the torch layout a stack [depth, out, in] depth [out, in] matrices and an equinox conv
    weight [out, in, *kernel] (kernel axes under the width) one [out, in x kernel] matrix. Muon's hidden LR
    (c = 0 under muP) is derived for that orthogonalised step: these tensors trained with AdamW's at Muon's LR,
    16x too large at 16x the base width under muP (a review, session 51). Where the name says no layout of these
    (in the torch layout, before its shape's guess of a conv), a ``fan_in`` given for the leaf (an einsum kernel [D,
    heads, head_dim] named ``wq``) is reduced over the axes whose product it is (:func:`_fan_in_dims`): read by its
    last two axes it was D separate [heads, head_dim] matrices, each step's largest singular value 15x its matrix's
    (a review, session 65). A conv kernel is read as :func:`_read` reads it (``stack``: its bias's stack axes, each
    layer's kernel a matrix of its own; a conv module named otherwise, by its bias); a ``fan_in`` given first."""
    nd = len(shape)
    if nd < 2:
        return None
    if layout == "jax":
        first = stack or 0
        if nd >= 3 and _HAIKU_TRANSPOSED.search(name):  # [*kernel, out, in]: one [kernel x in, out] matrix
            return contrib.MuonDimensionNumbers((*range(nd - 2), nd - 1), nd - 2)
        if nd >= 3 and _CONV.search(name) and not _CONV_LOCAL.search(name) and fan_in is None:
            return contrib.MuonDimensionNumbers(tuple(range(first, nd - 1)), nd - 1)
        # flax's attention kernels as the [D, heads x head_dim] matrices _read takes them for (Muon orthogonalised
        # D separate [heads, head_dim] slices, a code review)
        if nd in (3, 4) and _HEADS_IN.search(name) and shape[-2] < width and shape[-1] <= width:
            return contrib.MuonDimensionNumbers(nd - 3, (nd - 2, nd - 1))
        if nd in (3, 4) and _HEADS_OUT.search(name) and _heads_out(shape, width):
            return contrib.MuonDimensionNumbers((nd - 3, nd - 2), nd - 1)
        if (m := _EINSUM_IN.search(name)) and nd == (3 if m.group(2).lower() == "q" else 4) \
                and max(shape[-1], *shape[:-2]) < width:
            # [(2|3,) heads, D, head_dim]: D in, heads x head_dim out; k, v (and q) each a matrix of their own, as
            # separate projections are (one matrix over both was orthogonalised before: a code review)
            return contrib.MuonDimensionNumbers(nd - 2, (nd - 3, nd - 1))
        if nd == 3 and _GATING.search(name) and shape[-1] == width != shape[-2]:  # (2, F, D): gate, up each [D, F]
            return contrib.MuonDimensionNumbers(2, 1)
        if nd == 3 and _EINSUM_OUT.search(name) and max(shape[:2]) < width:
            return contrib.MuonDimensionNumbers((0, 1), 2)
        if fan_in is None and _conv_by_bias(shape, width, stack):
            return contrib.MuonDimensionNumbers(tuple(range(first, nd - 1)), nd - 1)
        return _fan_in_dims(shape, layout, fan_in) or contrib.MuonDimensionNumbers(nd - 2, nd - 1)
    if given := _fan_in_dims(shape, layout, fan_in):  # before the shape's guess of a conv
        return given
    if _torch_conv(name, shape, width):  # equinox's [out, in, *kernel]: one [out, in x kernel] matrix
        return contrib.MuonDimensionNumbers(tuple(range(1, nd)), 0)
    return contrib.MuonDimensionNumbers(nd - 1, nd - 2)


def _fan_in_dims(shape: tuple[int, ...], layout: str, fan_in: int | None) -> contrib.MuonDimensionNumbers | None:
    """The axes Muon reduces over for a leaf whose fan-in was given: in the jax layout the first run of axes whose
    sizes multiply to it, every axis after it the output, any before it a stack's ([depth, D, heads, head_dim] with
    D: depth matrices [D, heads x head_dim]); in the torch layout the last axes that multiply to it, the axis before
    them the output. None where no run of axes multiplies to it (a strided transposed conv's taps: the layout's own
    reading then) or where it leaves no output axis."""
    nd = len(shape)
    if fan_in is None:
        return None
    if layout == "jax":
        for start in range(nd - 1):
            for end in range(start + 1, nd):
                if math.prod(shape[start:end]) == fan_in:
                    return contrib.MuonDimensionNumbers(tuple(range(start, end)), tuple(range(end, nd)))
        return None
    for start in range(nd - 1, 0, -1):
        if math.prod(shape[start:]) == fan_in:
            return contrib.MuonDimensionNumbers(tuple(range(start, nd)), start - 1)
    return None


def transform(spec: GroupSpec, params: Params, *, schedule: Schedule | None = None, b1: float | None = None,
              b2: float | None = None, momentum: float = 0.0, muon_beta: float = 0.95,
              rules: Sequence[GroupRule] | None = None, layout: str = "jax",
              fan_in: Mapping[str, int] | None = None) -> optax.GradientTransformation:
    """The spec's optimizer for ``params``: ``optax.multi_transform`` over the role labels.

    ``schedule(step)`` multiplies every role's LR (a warmup/cosine multiplier, 1 at its peak); ``b1``, ``b2``
    are Adam's (default 0.9, 0.999) or Lion's (default 0.9, 0.99: the Lion paper's), ``momentum`` SGD's,
    ``muon_beta`` Muon's momentum. AdamW's, Lion's and Muon's decay is optax's coupled one or, when the spec's
    ``weight_decay_mode`` is ``independent``, ``optax.add_decayed_weights`` after the LR.

    ``lion`` is ``optax.lion`` on every role. ``muon`` is ``optax.contrib.muon`` on the hidden role (Muon on its
    matrices, ``layout`` saying which axis is the fan-in; a conv kernel flattened, a scan stack per layer) and
    ``optax.adamw`` with the role's epsilon on the embedding, readout and vector-like roles: the hybrid the
    runner trains (``abcscale sweep -o muon``) and docs/theory.md section 11 derives."""
    label_tree = labels(spec, params, rules=rules, layout=layout, fan_in=fan_in)
    used = set(jax.tree_util.tree_leaves(label_tree))
    lion = spec.optimizer is Optimizer.lion
    betas = (0.9 if b1 is None else b1, (0.99 if lion else 0.999) if b2 is None else b2)
    for name, value in (("b1", betas[0]), ("b2", betas[1]), ("momentum", momentum), ("muon_beta", muon_beta)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise ValueError(f"{name}: must be a number in [0, 1), got {value!r}")  # NaN updates, else
    # numpy's numbers as Python's (np.float32(0.9) was refused: a review, session 80)
    betas, momentum, muon_beta = (float(betas[0]), float(betas[1])), float(momentum), float(muon_beta)
    if schedule is not None and not callable(schedule):
        raise ValueError(f"schedule: must be a function of the step, got {type(schedule).__name__}")
    # an argument the spec's optimizer has no use for is a mistake, not a no-op (Adam has no `momentum`)
    takes = {"b1": spec.optimizer in (Optimizer.adam, Optimizer.adamw, Optimizer.lion, Optimizer.muon),
             "momentum": spec.optimizer is Optimizer.sgd}
    takes["b2"] = takes["b1"]
    given = {"b1": b1 is not None, "b2": b2 is not None, "momentum": momentum != 0.0}
    for name in ("b1", "b2", "momentum"):
        if given[name] and not takes[name]:
            raise ValueError(f"{name}: {spec.optimizer.value} has no {name}; leave it out")

    def role_lr(s: RoleSetting) -> float | Schedule:
        return s.lr if schedule is None else (lambda step: s.lr * schedule(step))

    with_path = jax.tree_util.tree_flatten_with_path(params)[0]
    stacks = _bias_stacks(list(zip(_leaf_names([path for path, _ in with_path]),
                                   [tuple(int(d) for d in x.shape) for _, x in with_path], strict=True))) \
        if layout == "jax" else {}
    muon = (muon_beta, layout, spec.width, dict(fan_in or {}), stacks)
    transforms = {s.role.value: _role_optimizer(spec, s, role_lr(s), betas, momentum, muon)
                  for s in spec.roles if s.role.value in used}
    names = _leaf_names([path for path, _ in with_path])
    return optax.multi_transform(transforms, _label_fn(dict(zip(names, jax.tree_util.tree_leaves(label_tree),
                                                                strict=True))))


def _label_fn(by_name: Mapping[str, str]) -> Callable[[Params], Params]:
    """The role labels as a function of the tree optax is given, each leaf's by its name (:func:`_leaf_names`, a
    box's ``value`` left out): the boxed tree the transform was built from (``nnx.state(model, nnx.Param)``) and
    the bare arrays ``nnx.Optimizer.update`` hands ``tx.update`` (flax 0.12) name their leaves alike. A label tree
    of the boxed one was a pytree structure error there (a review, session 67)."""
    def label(tree: Params) -> Params:
        with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
        names = _leaf_names([path for path, _ in with_path])
        if missing := [name for name in names if name not in by_name]:
            raise ValueError(f"abcscale.optax.transform: {', '.join(map(repr, missing[:3]))}"
                             f"{' ...' if len(missing) > 3 else ''} {'is' if len(missing) == 1 else 'are'} no leaf "
                             f"of the tree the transform was built for (its leaves: {', '.join(list(by_name)[:3])} "
                             "...): build it from the parameters it trains")
        return jax.tree_util.tree_unflatten(treedef, [by_name[name] for name in names])

    return label


def init(spec: GroupSpec, params: Params, key: jax.Array, *, rules: Sequence[GroupRule] | None = None,
         layout: str = "jax", fan_in: Mapping[str, int] | None = None) -> Params:
    """``params`` with every leaf that has an init std redrawn as normal(0, std) in its own dtype; vector-like
    and fixed leaves (biases, norm gains) are returned as they are."""
    typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not isinstance(key, jax.Array) or (typed and key.shape != ()) or (
            not typed and (key.dtype != jnp.uint32 or key.shape != (2,))):
        # an int seed, a float array or a batch of keys: JAX's own "invalid PRNG key data" or "split accepts a
        # single key" from deep inside (a review, session 80)
        what = f"{type(key).__name__} {key!r}" if not isinstance(key, jax.Array) else \
            f"an array of {key.dtype} {list(key.shape)}"
        raise ValueError(f"key: expected one JAX PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got "
                         f"{what}")
    leaves, treedef = _leaves(spec, params, rules, layout, fan_in)
    keys = jax.random.split(key, len(leaves))
    new = [leaf if std is None else std * jax.random.normal(k, leaf.shape, leaf.dtype)
           for (_, leaf, _, std), k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, new)


__all__ = ["init", "init_std_tree", "labels", "lr_tree", "multiplier_tree", "transform"]
