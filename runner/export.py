"""The parameter-group spec for any JAX parameter tree: role labels, an optax transformation, an init rescaler.

Public as :mod:`abcscale.optax`. A leaf's name is its key path joined with ``/`` (a flax tree's
``params/Dense_0/kernel``, an equinox module's ``layers/0/weight``, a flat dict's own keys), and
:func:`abcscale.theory.groups.assign` reads its role from the spec's rules and its shape. ``layout`` says which
axis is the fan-in: ``jax`` (flax kernels are [in, out]) or ``torch`` ([out, in], equinox's ``Linear``).

The transformation is ``optax.multi_transform`` over the roles, each role the spec's optimizer built by optax
itself with that role's LR (times an optional schedule), Adam epsilon and weight decay. The spec's numbers are
what the model must *apply*: a spec in the ``multiplier_free`` form suits a plain model; in the ``abc`` or
``mup`` form the model's forward must also apply the multipliers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from abcscale.schemas.enums import Optimizer, WeightDecayMode
from abcscale.schemas.groups import GroupRule, GroupSpec, Role, RoleSetting
from abcscale.theory.groups import assign

Params = Any
Schedule = Callable[[Any], Any]


def _key(k: Any) -> str:
    for attr in ("key", "name", "idx"):  # DictKey / FlattenedIndexKey, GetAttrKey, SequenceKey
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _leaves(spec: GroupSpec, params: Params, rules: Sequence[GroupRule] | None, layout: str
            ) -> tuple[list[tuple[str, Any, Role, float | None]], Any]:
    """Each leaf's name, value, role and init std (fan-in aware), with the tree's structure."""
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    rules = spec.rules if rules is None else list(rules)
    out = []
    for path, leaf in with_path:
        name = "/".join(_key(k) for k in path)
        if not hasattr(leaf, "shape"):
            raise ValueError(f"parameter {name!r} is not an array ({type(leaf).__name__}); pass a tree of arrays "
                             "(for equinox: eqx.filter(model, eqx.is_array))")
        role, ratio = assign(name, leaf.shape, spec.width, rules, layout)
        out.append((name, leaf, role, spec.init_std(role, ratio)))
    return out, treedef


def labels(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
           layout: str = "jax") -> Params:
    """The tree of role names (``embedding``, ``hidden``, ``readout``, ``vector``), shaped like ``params``.

    A parameter that no rule names and whose shape does not say is a ValueError naming it: pass ``rules``
    (tried in order, e.g. ``[GroupRule(pattern=r"Dense_2", role="readout"), *spec.rules]``)."""
    leaves, treedef = _leaves(spec, params, rules, layout)
    return jax.tree_util.tree_unflatten(treedef, [role.value for _, _, role, _ in leaves])


def lr_tree(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
            layout: str = "jax") -> Params:
    """Each leaf's learning rate (before any schedule), for inspection."""
    leaves, treedef = _leaves(spec, params, rules, layout)
    return jax.tree_util.tree_unflatten(treedef, [spec[role].lr for _, _, role, _ in leaves])


def init_std_tree(spec: GroupSpec, params: Params, *, rules: Sequence[GroupRule] | None = None,
                  layout: str = "jax") -> Params:
    """Each leaf's init std (None for a vector-like leaf, which keeps its own init), for inspection."""
    leaves, treedef = _leaves(spec, params, rules, layout)
    return jax.tree_util.tree_unflatten(treedef, [std for _, _, _, std in leaves])


def _role_optimizer(spec: GroupSpec, s: RoleSetting, schedule: Schedule | None, b1: float, b2: float,
                    momentum: float) -> optax.GradientTransformation:
    """optax's own optimizer of ``spec.optimizer`` with the role's numbers."""
    lr: float | Schedule = s.lr if schedule is None else (lambda step: s.lr * schedule(step))
    if spec.optimizer is Optimizer.sgd:
        return optax.sgd(lr, momentum=momentum or None)
    if spec.optimizer is Optimizer.adafactor:
        return optax.adafactor(learning_rate=lr)
    eps = 1e-8 if s.epsilon is None else s.epsilon
    wd = s.weight_decay or 0.0
    if spec.optimizer is Optimizer.adam or wd == 0.0:
        return optax.adam(lr, b1=b1, b2=b2, eps=eps)
    if spec.weight_decay_mode is WeightDecayMode.independent:
        # W <- W - lr u - wd W: the decay is not scaled by the LR nor by the schedule (theory/weight_decay.py)
        return optax.chain(optax.adam(lr, b1=b1, b2=b2, eps=eps), optax.add_decayed_weights(-wd))
    return optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd)  # coupled: W <- W - lr (u + wd W)


def transform(spec: GroupSpec, params: Params, *, schedule: Schedule | None = None, b1: float = 0.9,
              b2: float = 0.999, momentum: float = 0.0, rules: Sequence[GroupRule] | None = None,
              layout: str = "jax") -> optax.GradientTransformation:
    """The spec's optimizer for ``params``: ``optax.multi_transform`` over the role labels.

    ``schedule(step)`` multiplies every role's LR (a warmup/cosine multiplier, 1 at its peak); ``b1``, ``b2``
    are Adam's, ``momentum`` SGD's. AdamW's decay is optax's coupled one (``optax.adamw``) or, when the spec's
    ``weight_decay_mode`` is ``independent``, ``optax.add_decayed_weights`` after the LR."""
    label_tree = labels(spec, params, rules=rules, layout=layout)
    used = set(jax.tree_util.tree_leaves(label_tree))
    transforms = {role.value: _role_optimizer(spec, spec[role], schedule, b1, b2, momentum)
                  for role in (s.role for s in spec.roles) if role.value in used}
    return optax.multi_transform(transforms, label_tree)


def init(spec: GroupSpec, params: Params, key: jax.Array, *, rules: Sequence[GroupRule] | None = None,
         layout: str = "jax") -> Params:
    """``params`` with every leaf that has an init std redrawn as normal(0, std) in its own dtype; vector-like
    leaves (biases, norm gains) are returned as they are."""
    leaves, treedef = _leaves(spec, params, rules, layout)
    keys = jax.random.split(key, len(leaves))
    new = [leaf if std is None else std * jax.random.normal(k, leaf.shape, leaf.dtype)
           for (_, leaf, _, std), k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, new)


__all__ = ["init", "init_std_tree", "labels", "lr_tree", "transform"]
