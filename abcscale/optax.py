"""The parameter-group spec as optax code for any JAX parameter tree (needs the ``runner`` extra: JAX, optax).

::

    from abcscale import optax as abcoptax
    params = abcoptax.init(spec, params, jax.random.key(0))     # init stds of the spec, gains/biases kept
    tx = abcoptax.transform(spec, params)                        # optax.GradientTransformation, LR per role
    abcoptax.labels(spec, params)                                # the role of each leaf, to check the rules

The code lives in :mod:`abcscale.runner.export` (JAX is confined to the runner layer); this module only names it.
"""

from __future__ import annotations

from abcscale.runner.export import init, init_std_tree, labels, lr_tree, transform

__all__ = ["init", "init_std_tree", "labels", "lr_tree", "transform"]
