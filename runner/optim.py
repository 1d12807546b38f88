"""Optimizers as optax chains with per-layer-type learning rates and Adam epsilons given at run time.

One chain for the whole model, ``direction -> schedule -> per-leaf scale(-lr_l)``: learning rates and
epsilons are traced per-leaf values, so vmapping over them reuses one compiled program, and one shared
chain (rather than one per layer type) keeps that program, and its compile time, small.

Each variant the runner trains is one entry of ``OPTIMIZER_VARIANTS``: its chain, the optimizer family
whose exponents the theory engine uses, and whether the chain reads the epsilons.

Weight decay comes in two forms (docs/theory.md section 9). ``make_optimizer(weight_decay=...)`` is the
independent one, for every variant: each step subtracts wd * W, whatever the LR. The ``adamw`` variant adds the
coupled one, ``optax.adamw``'s chain with per-layer values: the step subtracts lr_l * wd_l * W, with wd_l from
``wd_3`` (or, with ``wd_mode="independent"``, wd_l * W after the LR, unscheduled); ``sgd`` takes the same values
as its L2 term, added to the gradient before the momentum, as ``torch.optim.SGD(weight_decay=)`` does. It decays only
matrices (``ndim >= 2``: embeddings, hidden and readout weights), not LayerNorm gains
or biases, as nanoGPT and most LLM recipes do: a gain's size is a scale, not a capacity to regularise.
``lion`` and ``muon`` take the same coupled decay (optax's ``lion`` and ``contrib.muon`` multiply it by the LR).

``lion`` is optax's own ``scale_by_lion`` (Chen et al. 2023): the sign of an interpolated momentum, so every
coordinate moves by exactly lr_l, like Adam's step at its largest. ``muon`` is the hybrid teams train with
(Jordan et al. 2024): optax's ``contrib.scale_by_muon`` (Nesterov momentum, orthogonalised by 5 quintic
Newton-Schulz iterations) times ``sqrt(max(1, fan_out / fan_in))`` (optax's ``scale_by_shape``, Keller Jordan's
convention) on the hidden matrices, and Adam with the per-layer epsilon on every other parameter (embeddings,
readout, gains). The built-in models' hidden matrices are 2-D; a user model's hidden tensors are orthogonalised as
abcscale.optax's Muon reads them (``make_optimizer(muon_dims=)``, ``runner.user.muon_dims``): a conv kernel [*kernel,
in, out] one [taps x in, out] matrix, a ``lax.scan`` stack [depth, in, out] one matrix a layer, a ``DenseGeneral``
kernel by its ``fan_in`` axes (they trained with Adam's step at Muon's LR before, where the export orthogonalised them:
a review, session 68). Without ``muon_dims`` a hidden tensor of another number of axes than two takes Adam's step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from abcscale.runner.nn import HID
from abcscale.schemas.enums import Optimizer


class ScaleByAdamMomentsState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # optax's name for the step count; shadows tuple.count
    mu: optax.Updates
    nu: optax.Updates


def _scale_by_adam_moments(direction, b1: float, b2: float, *extra: optax.Updates) -> optax.GradientTransformation:
    """Adam's bias-corrected moments, then ``direction(m_hat, v_hat, *extra_leaves)`` per leaf."""

    def init_fn(params: optax.Params) -> ScaleByAdamMomentsState:
        zeros = optax.tree_utils.tree_zeros_like(params)
        return ScaleByAdamMomentsState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        mu = optax.tree_utils.tree_update_moment(updates, state.mu, b1, 1)
        nu = optax.tree_utils.tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        mu_hat = optax.tree_utils.tree_bias_correction(mu, b1, count)
        nu_hat = optax.tree_utils.tree_bias_correction(nu, b2, count)
        return jax.tree.map(direction, mu_hat, nu_hat, *extra), ScaleByAdamMomentsState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_adam_atan2(b1: float = 0.9, b2: float = 0.999, a: float = 4 / math.pi,
                        b: float = 1.0) -> optax.GradientTransformation:
    r"""Adam-atan2 (Everett et al. 2024; docs/theory.md section 5): no epsilon, scale-invariant, bounded.

    .. math::

        u = a \, \mathrm{atan2}(\hat m, b \sqrt{\hat v})

    With ``a = 4/pi, b = 1`` it equals Adam where :math:`\hat m = \sqrt{\hat v}`; where
    :math:`|\hat m| \ll \sqrt{\hat v}` it is ``a`` times Adam without epsilon.
    """

    return _scale_by_adam_moments(lambda m, v: a * jnp.arctan2(m, b * jnp.sqrt(v)), b1, b2)


def schedule(kind: str, steps: int, warmup: float):
    """Multiplier on the LR at each step: ``n = round(warmup * steps)`` steps of linear warmup from 1 / (n + 1),
    then cosine to zero over ``steps - n`` or constant. Public as ``abcscale.optax.schedule``; with a warmup it is
    ``optax.warmup_cosine_decay_schedule(1 / (n + 1), 1.0, n, steps)`` (tests/test_optax_schedule_s63.py)."""
    n_warm = int(round(warmup * steps))
    if kind == "constant":
        decay = optax.constant_schedule(1.0)
    else:
        decay = optax.cosine_decay_schedule(1.0, max(steps - n_warm, 1))
    if n_warm == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(1.0 / (n_warm + 1), 1.0, n_warm), decay], [n_warm])


def scale_by_layer_adam(eps: optax.Updates, b1: float = 0.9, b2: float = 0.999) -> optax.GradientTransformation:
    r"""Adam's direction :math:`\hat m / (\sqrt{\hat v} + \epsilon_l)` with a per-leaf epsilon tree
    (docs/theory.md section 5: epsilon scaled per layer with the layer's gradient size)."""

    return _scale_by_adam_moments(lambda m, v, e: m / (jnp.sqrt(v) + e), b1, b2, eps)


def add_decayed_matrices(weight_decay: optax.Updates) -> optax.GradientTransformation:
    """``optax.add_decayed_weights`` with a per-leaf (traced) decay, on matrices only: u + wd_l * W where
    ``W.ndim >= 2``, u elsewhere (the module docstring's mask)."""

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_matrices needs the parameters: pass them to update()")
        return jax.tree.map(lambda u, p, w: u + w * p if p.ndim >= 2 else u, updates, params, weight_decay), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def scale_by_tree(factors: optax.Updates) -> optax.GradientTransformation:
    """Multiply each leaf's update by its own (traced) factor: the per-layer learning rates."""

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, f: u * f, updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def split_leaves(select: Callable[[str, jax.Array], bool], inside: optax.GradientTransformation,
                 outside: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inside`` on the leaves of a flat ``{name: array}`` tree where ``select(name, leaf)``, ``outside`` on the
    rest; each sees only its own sub-dict. (``optax.partition`` would hand the per-leaf epsilon tree of
    ``outside`` a masked structure it does not match.) The choice depends on names and shapes only, so it is
    static under jit and vmap."""

    def parts(tree: dict) -> tuple[dict, dict]:
        ins = {k: v for k, v in tree.items() if select(k, v)}
        return ins, {k: v for k, v in tree.items() if k not in ins}

    def init_fn(params):
        ins, outs = parts(params)
        return inside.init(ins), outside.init(outs)

    def update_fn(updates, state, params=None):
        ins, outs = parts(updates)
        p_in, p_out = parts(params) if params is not None else (None, None)
        u_in, s_in = inside.update(ins, state[0], p_in)
        u_out, s_out = outside.update(outs, state[1], p_out)
        return {k: (u_in[k] if k in u_in else u_out[k]) for k in updates}, (s_in, s_out)

    return optax.GradientTransformation(init_fn, update_fn)


def _axes(axes: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    return tuple(a % ndim for a in ((axes,) if isinstance(axes, int) else axes))


def shape_factor(shape: Sequence[int], dims: contrib.MuonDimensionNumbers) -> float:
    """Keller Jordan's shape factor ``sqrt(max(1, fan_out / fan_in))`` of a tensor orthogonalised as ``dims`` (its
    reduction axes the fan-in, its output axes the fan-out; optax's ``contrib.muon`` scales by the same)."""
    fan_in = math.prod(shape[a] for a in _axes(dims.reduction_axis, len(shape)))
    fan_out = math.prod(shape[a] for a in _axes(dims.output_axis, len(shape)))
    return max(1.0, fan_out / fan_in) ** 0.5


def scale_by_muon_hybrid(layers: dict[str, int], eps: optax.Updates, beta: float = 0.95,
                         muon_dims: Mapping[str, contrib.MuonDimensionNumbers | None] | None = None
                         ) -> optax.GradientTransformation:
    """Muon's direction on the hidden matrices, Adam's with the per-leaf epsilon elsewhere (the module docstring).
    ``muon_dims``: the leaves to orthogonalise, each with the axes it reduces over (its fan-in) and into (its
    fan-out), the others a stack's (``runner.user.muon_dims``: as abcscale.optax reads them); None, a leaf's entry
    or the whole map: Adam's. Without the map, the hidden 2-D matrices (``layers[name] == HID``, ``W.ndim == 2``,
    ``x @ W``: rows are fan-in)."""
    plain = contrib.MuonDimensionNumbers(0, 1)  # a 2-D x @ W matrix: rows reduce (fan-in), columns are outputs

    def is_muon(name: str, leaf: jax.Array) -> bool:
        if muon_dims is not None:
            return muon_dims.get(name) is not None
        return layers[name] == HID and leaf.ndim == 2

    def dim(name: str) -> contrib.MuonDimensionNumbers:
        return plain if muon_dims is None else cast(contrib.MuonDimensionNumbers, muon_dims[name])

    # Keller Jordan's shape factor (optax's private contrib._muon.scale_by_shape, not exported): a wide
    # matrix's orthogonal update has entries ~ 1/sqrt(fan_out); this restores ~ 1/sqrt(fan_in)
    shape = optax.stateless(lambda u, p=None: {k: x * shape_factor(x.shape, dim(k)) for k, x in u.items()})
    dims = lambda tree: {k: dim(k) for k in tree}  # noqa: E731
    muon = optax.chain(contrib.scale_by_muon(beta=beta, weight_dimension_numbers=dims), shape)

    def build(tree: dict) -> optax.GradientTransformation:
        # scale_by_layer_adam maps over its epsilon tree too: give it the non-Muon leaves' epsilons only
        rest = {k: e for k, e in eps.items() if not is_muon(k, tree[k])}
        return split_leaves(is_muon, muon, scale_by_layer_adam(rest))

    def update_fn(updates, state, params=None):
        return build(updates).update(updates, state, params)

    return optax.GradientTransformation(lambda params: build(params).init(params), update_fn)


class ChainInputs(NamedTuple):
    """What a variant's chain is built from: per-leaf epsilons, learning rates and coupled weight decays,
    the LR multiplier schedule, SGD's momentum, and each leaf's layer type (Muon picks its matrices by it)."""

    eps: optax.Updates
    lr: optax.Updates
    sched: optax.Schedule
    momentum: float
    wd: optax.Updates | None  # None: no per-layer decay in the program (sgd's L2 term is optional)
    layers: dict[str, int]
    # Muon's matrices (scale_by_muon_hybrid): name -> the axes each reduces over and into; None: the hidden 2-D ones
    muon_dims: Mapping[str, contrib.MuonDimensionNumbers | None] | None = None


Chain = Callable[[ChainInputs], list[optax.GradientTransformation]]


@dataclass(frozen=True)
class Variant:
    """One optimizer the runner trains."""

    family: Optimizer  # whose exponents the theory engine uses
    uses_epsilon: bool  # the chain reads the per-layer epsilons, so the rows record them
    chain: Chain
    decays: bool = False  # the chain applies the per-layer decay (wd_3), so the rows record it (sgd's: one given)


def _descend(direction: Chain) -> Chain:
    """``direction``, then the schedule and minus each leaf's learning rate."""
    return lambda x: [*direction(x), optax.scale_by_schedule(x.sched),
                      scale_by_tree({k: -v for k, v in x.lr.items()})]


def _adafactor(x: ChainInputs) -> list[optax.GradientTransformation]:
    # Adafactor's own chain (factored second moments, parameter scaling, update clipping); it negates.
    return [optax.adafactor(learning_rate=x.sched, multiply_by_parameter_scale=True, factored=True),
            scale_by_tree(x.lr)]


#: optimizer variants the runner trains (runner.spec.OPTIMIZER_FAMILY lists the same names, without JAX)
OPTIMIZER_VARIANTS: dict[str, Variant] = {
    # torch.optim.SGD's order: the L2 term joins the gradient before the momentum (W -= lr_l (g + wd_l W) without
    # momentum); without a decay (wd None: wd_mode "none") the chain is as it was, so its runs keep their bits
    "sgd": Variant(Optimizer.sgd, uses_epsilon=False, decays=True, chain=_descend(
        lambda x: [*([] if x.wd is None else [add_decayed_matrices(x.wd)]),
                   *([optax.trace(decay=x.momentum)] if x.momentum else [])])),
    "adam": Variant(Optimizer.adam, uses_epsilon=True, chain=_descend(lambda x: [scale_by_layer_adam(x.eps)])),
    # optax.adamw's order (Adam, + wd * W, then the LR): the decay is scaled by lr_l and the schedule
    "adamw": Variant(Optimizer.adamw, uses_epsilon=True, decays=True, chain=_descend(
        lambda x: [scale_by_layer_adam(x.eps), add_decayed_matrices(x.wd)])),
    # scale-invariant Adam: Adam's update scale, no epsilon
    "adam_atan2": Variant(Optimizer.adam, uses_epsilon=False, chain=_descend(lambda x: [scale_by_adam_atan2()])),
    # Adam with parameter scaling: Adafactor's exponents (docs/theory.md section 2)
    "adam_scaled": Variant(Optimizer.adafactor, uses_epsilon=True, chain=_descend(
        lambda x: [scale_by_layer_adam(x.eps), optax.scale_by_param_block_rms()])),
    "adafactor": Variant(Optimizer.adafactor, uses_epsilon=False, chain=_adafactor),
    # sign of an interpolated momentum (optax's own), then adamw's coupled decay on the matrices
    "lion": Variant(Optimizer.lion, uses_epsilon=False, decays=True, chain=_descend(
        lambda x: [optax.scale_by_lion(b1=0.9, b2=0.99), add_decayed_matrices(x.wd)])),
    # orthogonalised momentum on hidden matrices, Adam (per-layer epsilon) elsewhere; coupled decay as adamw's
    "muon": Variant(Optimizer.muon, uses_epsilon=True, decays=True, chain=_descend(
        lambda x: [scale_by_muon_hybrid(x.layers, x.eps, muon_dims=x.muon_dims), add_decayed_matrices(x.wd)])),
}


def variant(name: str) -> Variant:
    """The registered variant ``name``; an unknown name is a ValueError listing ``OPTIMIZER_VARIANTS``."""
    try:
        return OPTIMIZER_VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer variant {name!r}; OPTIMIZER_VARIANTS has "
                         f"{', '.join(OPTIMIZER_VARIANTS)}") from None


def make_optimizer(optimizer: str, lr_3: jax.Array, eps_3: jax.Array, param_layers: dict[str, int], *,
                   steps: int, schedule_kind: str = "cosine", warmup: float = 0.0, momentum: float = 0.0,
                   weight_decay: float = 0.0, wd_3: jax.Array | None = None,
                   wd_mode: str | None = None,
                   muon_dims: Mapping[str, contrib.MuonDimensionNumbers | None] | None = None
                   ) -> optax.GradientTransformation:
    """The chain of variant ``optimizer``; ``lr_3``, ``eps_3`` and ``wd_3`` are indexed embedding, hidden,
    readout (and vector-like, ``runner.nn.VEC``, when a parameter has that type) and ``param_layers`` maps each
    parameter name to its layer-type index.

    ``weight_decay``: the plain independent decay, every variant, every parameter; ``wd_3``: the per-layer
    decay that ``adamw`` (``lion``, ``muon``, and ``sgd`` as its L2 term) applies to its matrices (default none),
    ``coupled`` (scaled by lr_l and the schedule) or ``independent`` (``wd_mode``: subtracted as it is, after the
    LR); ``wd_mode="none"`` leaves the per-layer decay out of the program (``sgd`` without one: its chain as before
    the L2 term came, bit for bit). ``wd_mode`` None: ``sgd`` "none" unless ``wd_3`` is given, "coupled" otherwise.

    ``muon_dims`` (``muon`` only): the parameters Muon orthogonalises, each with the axes it reduces over and into
    (:func:`scale_by_muon_hybrid`; a user model's, ``runner.user.muon_dims``); default the hidden 2-D matrices."""
    if muon_dims is not None and (unknown := sorted(set(muon_dims) - set(param_layers))):
        raise ValueError(f"muon_dims: {', '.join(map(repr, unknown))} not among the parameters")
    var = variant(optimizer)
    if wd_mode is None:
        wd_mode = "none" if var.family is Optimizer.sgd and wd_3 is None else "coupled"
    if wd_mode not in ("coupled", "independent", "none"):
        raise ValueError(f"wd_mode must be 'coupled', 'independent' or 'none', got {wd_mode!r}")
    if wd_mode == "none" and var.decays and var.family is not Optimizer.sgd:
        raise ValueError(f"wd_mode 'none': {optimizer}'s decay is part of its chain (give zeros for none)")
    wd_3 = jnp.zeros(5) if wd_3 is None else wd_3
    per_leaf = {k: wd_3[i] for k, i in param_layers.items()}
    independent = wd_mode == "independent" and var.decays
    parts = var.chain(ChainInputs(eps={k: eps_3[i] for k, i in param_layers.items()},
                                  lr={k: lr_3[i] for k, i in param_layers.items()},
                                  sched=schedule(schedule_kind, steps, warmup), momentum=momentum,
                                  wd=None if wd_mode == "none" else
                                  {k: 0.0 * v for k, v in per_leaf.items()} if independent else per_leaf,
                                  layers=dict(param_layers), muon_dims=muon_dims))
    if independent:
        parts.append(add_decayed_matrices({k: -v for k, v in per_leaf.items()}))
    if weight_decay:
        parts.append(optax.add_decayed_weights(-weight_decay))  # independent of the LR
    return optax.chain(*parts)
