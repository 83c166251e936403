"""What every bilevel solver shares: its start, its result, its step sizes.

A solver file subclasses :class:`BilevelSolver` and writes only its
parameters and its ``run(callback)`` loop, which reads like the paper's
pseudo-code.
"""
import torch
from benchopt import BaseSolver

from benchmark_utils.device import synchronized
from benchmark_utils.krylov import largest_eigenvalue
from benchmark_utils.validation import check_positive

#: Safety margin on the power-iteration estimate of the inner Lipschitz
#: constant: the estimate is a lower bound.
LIPSCHITZ_MARGIN = 1.1
#: Seed of the power iteration's start vector: the same step on every run.
POWER_ITERATION_SEED = 0


class BilevelSolver(BaseSolver):
    """Base class of the benchmark's solvers.

    ``set_objective`` receives the counting oracles and the starting point;
    ``get_result`` returns the current ``x``, ``y``, ``v`` (None for a method
    without a linear-system variable), the oracle counts and the number of
    outer iterations done. Counts start from zero in :meth:`start_run`.
    """

    sampling_strategy = "callback"

    def set_objective(self, oracles, x0, y0):
        self.oracles = oracles
        self.x0, self.y0 = x0, y0
        self._inner_lipschitz = None
        self.check_parameters()
        self.x, self.y, self.v = x0.clone(), y0.clone(), None
        self.n_outer = 0

    def check_parameters(self):
        """Validate the solver's parameters (a clear error for bad input)."""

    def start_run(self, callback):
        """Reset iterates and counters; return the callback to loop on,
        which synchronises the device before each timing point."""
        self.oracles.reset()
        self.x, self.y, self.v = self.x0.clone(), self.y0.clone(), None
        self.n_outer = 0
        return synchronized(callback, self.oracles.device)

    def get_result(self):
        return dict(x=self.x, y=self.y, v=self.v,
                    counts=self.oracles.counts(), n_outer=self.n_outer)

    def step_size(self, name, value):
        """A step size parameter: a positive number, or 'auto' for 1 / L with
        L the largest eigenvalue of d2_yy g at the starting point, estimated
        by power iteration at set-up (outside the timed run).

        ``step_size_outer`` is in units of the problem's ``outer_step_unit``
        (1 but for hyper-cleaning, where it is n_train / 10: the default 1
        then gives the paper's 500 for 5,000 training samples)."""
        if value == "auto":
            return 1.0 / (LIPSCHITZ_MARGIN * self.inner_lipschitz())
        check_positive(name, value)
        if name == "step_size_outer":
            return float(value) * self.oracles.problem.outer_step_unit
        return float(value)

    def inner_lipschitz(self):
        """Largest eigenvalue of d2_yy g at the starting point, by 30 power
        iterations, computed once per set-up.

        Power iteration starts from a fixed random vector: a structured one
        can be orthogonal to the top eigenvector (a constant vector shifts
        every logit of a sample equally, which a cross-entropy does not
        see, so it only finds the ridge's curvature)."""
        if self._inner_lipschitz is None:
            generator = torch.Generator().manual_seed(POWER_ITERATION_SEED)
            start = torch.randn(self.y0.shape, generator=generator,
                                dtype=self.y0.dtype).to(self.y0.device)
            self._inner_lipschitz = largest_eigenvalue(
                lambda u: self.oracles.hvp(self.x0, self.y0, u), start)
        return self._inner_lipschitz
