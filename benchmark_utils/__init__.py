"""Shared code of the benchmark, one room per kind; solvers, datasets, plots
and scripts import from here.

- ``solver``, ``oracles``, ``sampling``, ``metrics``, ``local_metrics``,
  ``stopping``, ``curve_status``, ``run_output``, ``device``,
  ``validation``, ``allocation``, ``oracle_cost``, ``memory``,
  ``tuning``, ``tuned_parameters``: the machinery of a run (the solver
  base class, the counting oracles, the seeded minibatch sampler of
  stochastic solvers, the reference metrics and those of a lower level
  that is not convex, the stopping rule, how a curve ended and what a run
  keeps in its output folder, device and timing, parameter checks, memory
  that a run cannot have, measured oracle costs, the memory a solver
  uses, the tuning protocol and the tuned values read back).
- ``published_variants``: the baselines as the LancBiO authors' code runs
  them, behind each solver's ``variant='lancbio_code'``.
- ``problems``: the bilevel problem contract and every problem, with its
  closed-form products.
- ``linalg``: linear algebra on oracles: Krylov methods, Neumann series,
  finite differences, unrolled differentiation, inner loops.
- ``data``: loading the data sets from disk or the network.
- ``plotting``: the report's curves, budget tables, labels, colours and
  performance profiles behind ``plots/``.
- ``testing``: writers of tiny data files in the published layouts, for
  offline tests.
"""
