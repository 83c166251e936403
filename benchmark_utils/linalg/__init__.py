"""Linear algebra on the oracles: Krylov methods (conjugate gradient, the
Lanczos process, the tridiagonal solve), Neumann series, finite-difference
products, unrolled differentiation and the inner loops on the lower level.
A new routine that two solvers (or a solver and the metrics) use goes
here."""
