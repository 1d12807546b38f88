"""Small-width JAX sweeps: loss against learning rate against width, under any abc-parameterization.

``runner.spec`` (the sweep spec) imports no JAX so the CLI can parse flags quickly; the training code
(``runner.train``, ``runner.sweep``, ``runner.coord``) imports JAX when it is first used.
"""
