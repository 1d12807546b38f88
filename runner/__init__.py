"""Small-width JAX sweeps: loss against learning rate against width, under any abc-parameterization.

Public API (``runner.spec`` imports no JAX, so the CLI parses flags fast; the rest imports JAX on use):

- ``runner.spec.SweepSpec``: the sweep spec (pydantic, defaults embedded, base-width constants in
  ``spec.constants``), ``SweepSpec.from_toml(path)``, ``spec.corpus()``;
- ``runner.sweep.run_sweep(spec, out_dir, *, progress=True, executor="local", address=None)``
  -> ``pandas.DataFrame`` of ``results.parquet`` (resumable: finished cells are skipped);
- ``runner.sweep.run_cell(spec, cell, *, compiler=None)``: one (config, width) without writing anything;
- ``runner.store``: the output folder (its lock, ``SweepBusy``, ``SweepWarning``, the committed cell files);
- ``runner.optim.OPTIMIZER_VARIANTS``: the optimizer variants (chain, theory family, ``uses_epsilon``);
  ``runner.optim.variant(name)`` looks one up, naming the registry when ``name`` is unknown;
- ``runner.train.Compiler``: the compiled programs of one sweep and the thread that compiles ahead;
- ``runner.user``: your own JAX model (``model = "pkg.module:factory"``): the factory contract, ``UserModel``;
- ``runner.coord.coord_check(spec, log2_lr=..., steps=5, max_slope=0.25)`` -> ``CoordCheck`` (its ``verdict``:
  pass, fail, or unclear where the seeds' noise could explain a slope; ``runner.coord.judge`` on your own table).
"""
