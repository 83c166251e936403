"""Shared code of the benchmark, one room per kind; solvers, datasets, plots
and scripts import from here.

- ``solver``, ``oracles``, ``sampling``, ``metrics``, ``stopping``,
  ``device``, ``validation``, ``oracle_cost``, ``memory``: the machinery of
  a run (the solver base class, the counting oracles, the seeded minibatch
  sampler of stochastic solvers, the reference metrics, the stopping rule,
  device and timing, parameter checks, measured oracle costs, the memory
  a solver uses).
- ``problems``: the bilevel problem contract and every problem, with its
  closed-form products.
- ``linalg``: linear algebra on oracles: Krylov methods, Neumann series,
  finite differences, unrolled differentiation, inner loops.
- ``data``: loading the data sets from disk or the network.
- ``plotting``: the budget curves and tables behind ``plots/``.
- ``testing``: writers of tiny data files in the published layouts, for
  offline tests.
"""
