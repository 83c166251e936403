"""Shared code of the benchmark, one room per kind; solvers, datasets, plots
and scripts import from here.

- ``solver``, ``oracles``, ``sampling``, ``metrics``, ``stopping``,
  ``device``, ``validation``, ``oracle_cost``: the machinery of a run (the
  solver base class, the counting oracles, the seeded minibatch sampler of
  stochastic solvers, the reference metrics, the stopping rule, device and
  timing, parameter checks, measured oracle costs).
- ``published_variants``: the baselines as the LancBiO authors' code runs
  them, behind each solver's ``variant='lancbio_code'``.
- ``problems``: the bilevel problem contract and every problem, with its
  closed-form products.
- ``linalg``: linear algebra on oracles: Krylov methods, Neumann series,
  finite differences, unrolled differentiation, inner loops.
- ``data``: loading the data sets from disk or the network.
- ``plotting``: the budget curves and tables behind ``plots/``.
- ``testing``: writers of tiny data files in the published layouts, for
  offline tests.
"""
